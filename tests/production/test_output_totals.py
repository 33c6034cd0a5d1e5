"""Belt-scale output over MQTT through the safety gateway into readings; the production API's
daily, monthly and yearly totals equal the simulator's tonnage exactly, across a counter wrap
and a counter reset, and are compared with the approved capacity."""

from __future__ import annotations

import datetime as dt
import itertools

import httpx
import pytest

from minewatch.simulators.output import BeltScale, publish_output
from minewatch.simulators.personnel import CST
from tests.helpers import eventually, running_gateway, scalar
from tests.personnel.stack import running_feed_api

pytestmark = pytest.mark.anyio

DAYS = 3


async def test_daily_totals_equal_the_simulated_tonnage_across_wrap_and_reset(
    database_url: str, mqtt_url: str, unique_id: str
) -> None:
    today = dt.datetime.now(CST).date()
    first = today - dt.timedelta(days=DAYS)
    start = dt.datetime(first.year, first.month, first.day, tzinfo=CST)
    end = start + dt.timedelta(days=DAYS)
    scale = BeltScale(
        mine_code="141024019901", start_counter_t=99_500.0, wrap_at_t=100_000.0,
        reset_at=start + dt.timedelta(days=1, hours=12),
    )  # fmt: skip
    code = scale.mine_code
    topics = [f"minewatch/v1/{code}/meta", f"minewatch/v1/{code}/safety/+"]
    async with (
        running_gateway(database_url, mqtt_url, f"gw-{unique_id}", topics=topics),
        running_feed_api(database_url) as base,
    ):
        truth = await publish_output(scale, mqtt_url, start, end, client_id=f"sim-{unique_id}")
        expected_readings = len(scale.readings)
        await eventually(
            lambda: scalar(database_url, "SELECT count(*) FROM readings") == expected_readings
        )
        window = {"start": start.isoformat(), "end": end.isoformat()}
        async with httpx.AsyncClient(base_url=f"{base}/api/v1/production/mines/{code}") as api:
            days = (await api.get("/output", params={**window, "period": "day"})).json()
            months = (await api.get("/output", params={**window, "period": "month"})).json()
            years = (await api.get("/output", params={**window, "period": "year"})).json()
            # A range that starts mid-series uses the reading before it as the baseline.
            second = {"start": (start + dt.timedelta(days=1)).isoformat(), "end": end.isoformat()}
            later = (await api.get("/output", params={**second, "period": "day"})).json()

    values = [v for _, v in scale.readings]
    assert any(b < a for a, b in itertools.pairwise(values)), "no restart simulated"
    got = {dt.datetime.fromisoformat(d["period_start"]).astimezone(CST).date(): d["output_t"]
           for d in days}  # fmt: skip
    assert got == truth
    assert sum(d["restarts"] for d in days) == 2  # one wrap, one reset
    assert {dt.datetime.fromisoformat(d["period_start"]).astimezone(CST).date(): d["output_t"]
            for d in later} == {day: t for day, t in truth.items() if day > first}  # fmt: skip
    total = round(sum(truth.values()), 3)
    assert round(sum(m["output_t"] for m in months), 3) == total
    per_year: dict[int, float] = {}
    for day, tonnes in truth.items():
        per_year[day.year] = per_year.get(day.year, 0.0) + tonnes
    assert [round(y["output_t"], 3) for y in years] == [
        round(t, 3) for _, t in sorted(per_year.items())
    ]
    for day in days:
        assert day["approved_capacity_t"] == scale.approved_capacity_t
        assert day["limit_t"] is None and day["exceeds_limit"] is None
    for month in months:
        assert month["limit_t"] == pytest.approx(0.10 * scale.approved_capacity_t)
        assert month["exceeds_limit"] is False

"""Simulated positioning over MQTT -> feed pipeline -> TimescaleDB -> API, for real: the
head-counts per area equal the simulator's ground truth at every minute, people who leave are
no longer underground, and each shift's leader is found."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from minewatch.simulators.personnel import (
    CST,
    US,
    PersonnelSimConfig,
    PersonnelSimulator,
    publish_personnel,
)
from tests.helpers import eventually, scalar
from tests.personnel.stack import running_feed_api, running_feeds, watermark

pytestmark = pytest.mark.anyio


def _window() -> tuple[dt.datetime, dt.datetime]:
    """07:00-09:00 local time yesterday: the 0点班 comes up, the 8点班 goes down."""
    day = dt.datetime.now(CST).date() - dt.timedelta(days=1)
    start = dt.datetime(day.year, day.month, day.day, 7, 0, tzinfo=CST)
    return start, start + dt.timedelta(hours=2)


async def test_headcounts_equal_the_ground_truth_at_every_minute(
    database_url: str, mqtt_url: str, unique_id: str
) -> None:
    sim = PersonnelSimulator(PersonnelSimConfig(cycle_s=30, workers_per_shift=10))
    mine = sim.config.mine_code
    start, end = _window()
    async with (
        running_feeds(database_url, mqtt_url, f"feeds-{unique_id}"),
        running_feed_api(database_url) as base,
    ):
        report = await publish_personnel(
            sim, mqtt_url, start, end, client_id=f"sim-{unique_id}", boot=1
        )
        await eventually(
            lambda: watermark(database_url, f"{mine}/personnel/rydw") == report.messages
        )
        window = {"start": start.isoformat(), "end": end.isoformat(), "step": "PT1M"}
        async with httpx.AsyncClient(base_url=f"{base}/api/v1/personnel/mines/{mine}") as api:
            series = (await api.get("/headcount/series", params=window)).json()
            now = (await api.get("/underground")).json()
            headcount = (await api.get("/headcount")).json()
            coverage = (await api.get("/leader-coverage", params=window)).json()
            day_worker = next(p for p in sim.people if p.shift == 1 and not p.leader)
            trajectory = (await api.get(f"/people/{day_worker.card}/trajectory",
                                        params=window)).json()  # fmt: skip
            spent = (await api.get("/time-underground", params={**window,
                                   "card": day_worker.card})).json()  # fmt: skip

    assert scalar(database_url, "SELECT count(*) FROM quarantine") == 0
    # Every minute of the run: per area and for the mine, exactly the simulator's truth.
    assert len(series) == 120
    for point in series:
        t = int(dt.datetime.fromisoformat(point["time"]).timestamp() * US)
        assert point["areas"] == sim.headcounts(t), point["time"]
        assert point["total"] == len(sim.places(t)), point["time"]

    # Underground now = the last cycle's people: the 0点班 who came up are gone.
    last = report.cycles[-1]
    assert {p["card_code"] for p in now} == set(sim.places(last))
    night = {p.card for p in sim.people if p.shift == 0}
    assert not night & {p["card_code"] for p in now}
    assert headcount["total"] == len(now)
    counts = {a["area_code"]: a["count"] for a in headcount["areas"]}
    assert {k: v for k, v in counts.items() if v} == sim.headcounts(last)
    assert all(not a["over_quota"] and not a["restricted_occupied"] for a in headcount["areas"])

    # The 0点班 shift (entered yesterday evening) and the 8点班 both had their leader.
    by_start = {dt.datetime.fromisoformat(s["shift_start"]): s for s in coverage}
    assert set(by_start) == {start - dt.timedelta(hours=7), start + dt.timedelta(hours=1)}
    for shift in by_start.values():
        assert shift["covered"] and shift["workers"] == sim.config.workers_per_shift
    night_shift, day_shift = by_start.values()
    assert night_shift["leaders_underground_now"] == 0
    assert night_shift["last_worker_left_at"] is not None
    assert day_shift["leaders_underground_now"] == 1

    # A day-shift worker: down at the shaft, then along the roadway; time underground so far.
    assert trajectory[0]["area_code"] == sim.area_codes[0] and trajectory[0]["in_mine"] == 1
    assert len({p["station_code"] for p in trajectory}) >= 3
    entered = next(plan.entry for p, plan in sim.plans_around(last) if p == day_worker)
    assert spent == [{"card_code": day_worker.card, "name": day_worker.name, "is_leader": False,
                      "trips": 1, "underground_s": (end.timestamp() - entered / US),
                      "underground_now": True}]  # fmt: skip

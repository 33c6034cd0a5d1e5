"""Personnel alarms through the whole feed path (simulator -> Mosquitto -> feed pipeline ->
TimescaleDB -> API): every labelled SOS of the simulator is one episode with its exact start and
end (recall and precision 1.0), and the pipeline's periodic task raises overtime by the clock
alone."""

from __future__ import annotations

import dataclasses
import datetime as dt

import aiomqtt
import httpx
import orjson
import pytest

from minewatch.alarms.rules.personnel import OVERTIME, SOS
from minewatch.feeds import broker_address, personnel_meta_topic, personnel_topic
from minewatch.simulators.personnel import (
    CST,
    US,
    PersonnelSimConfig,
    PersonnelSimulator,
    publish_personnel,
)
from minewatch.timeutil import datetime_to_us
from tests.helpers import eventually, scalar
from tests.personnel.scenario import FACE, HOUR, MINE, card, day0, episodes, iso
from tests.personnel.stack import running_feed_api, running_feeds, watermark

pytestmark = pytest.mark.anyio


async def test_every_simulated_sos_is_one_episode_with_its_exact_times(
    database_url: str, mqtt_url: str, unique_id: str
) -> None:
    day = dt.datetime.now(CST).date() - dt.timedelta(days=1)
    start = dt.datetime(day.year, day.month, day.day, 7, 0, tzinfo=CST)
    end = start + dt.timedelta(hours=2)
    # The shared example mine: its definition is retained on the broker, like other tests do.
    plain = PersonnelSimulator(PersonnelSimConfig(cycle_s=60))
    calls = plain.random_sos(start, end - dt.timedelta(minutes=25), n=8)  # all end inside
    sim = PersonnelSimulator(dataclasses.replace(plain.config, sos=calls))
    truth = sim.sos_truth()
    assert len(truth) == 8
    mine = sim.config.mine_code
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
        async with httpx.AsyncClient(base_url=base) as api:
            listed = (await api.get("/api/v1/alarms", params={"mine": mine, "limit": 100})).json()

    found = sorted(
        (a["subject_code"], datetime_to_us(dt.datetime.fromisoformat(a["started_at"])),
         datetime_to_us(dt.datetime.fromisoformat(a["ended_at"])))
        for a in listed if a["rule"] == SOS
    )  # fmt: skip
    assert found == truth  # recall 1.0, precision 1.0, exact times
    assert {a["rule"] for a in listed} == {SOS}  # the baseline simulation raises nothing else
    worker = next(a for a in listed if a["rule"] == SOS)
    assert worker["subject_kind"] == "person" and worker["point_id"] is None
    assert worker["subject_name"].startswith(("工人", "矿领导")) and worker["state"] == "cleared"
    assert scalar(database_url, "SELECT count(*) FROM quarantine") == 0


async def test_the_periodic_task_raises_overtime_without_any_new_message(
    database_url: str, mqtt_url: str, unique_id: str
) -> None:
    t0 = day0()
    clock = [t0 + HOUR]
    host, port = broker_address(mqtt_url)
    meta = {
        "v": 1, "mine": MINE, "ts": iso(t0 - HOUR), "limits": {"max_underground_h": 8},
        "people": [{"card": card(1), "name": "工人1"}],
        "areas": [{"code": FACE, "type": "key", "approved": 5}],
    }  # fmt: skip
    seen = {
        "v": 1, "mine": MINE, "system": "rydw", "boot": 1, "seq": 1, "kind": "positions",
        "ts": iso(t0 + HOUR), "cards": [card(1)], "areas": [FACE],
        "stations": [f"{FACE}000001"], "in_mine": [1], "mine_entered_at": [iso(t0)],
    }  # fmt: skip
    async with (
        running_feeds(database_url, mqtt_url, f"feeds-{unique_id}", lambda: clock[0],
                      watchdog_interval_s=0.05) as feeds,
        aiomqtt.Client(host, port, identifier=f"pub-{unique_id}") as client,
    ):  # fmt: skip
        await client.publish(personnel_meta_topic(MINE), orjson.dumps(meta), qos=1)
        await client.publish(personnel_topic(MINE), orjson.dumps(seen), qos=1)
        await eventually(lambda: watermark(database_url, f"{MINE}/personnel/rydw") == 1)
        ticks = feeds.ticks
        clock[0] = t0 + 8 * HOUR  # exactly at the limit
        await eventually(lambda: feeds.ticks >= ticks + 2)
        assert episodes(database_url) == []
        clock[0] = t0 + 8 * HOUR + US
        await eventually(lambda: bool(episodes(database_url)))
        ticks = feeds.ticks
        await eventually(lambda: feeds.ticks >= ticks + 3)
    assert watermark(database_url, f"{MINE}/personnel/rydw") == 1  # no message since
    assert episodes(database_url) == [("person", card(1), OVERTIME, t0 + 8 * HOUR, None)]
    assert scalar(database_url, "SELECT raised_at FROM alarms") == dt.datetime.fromtimestamp(
        (t0 + 8 * HOUR + US) / US, dt.UTC
    )

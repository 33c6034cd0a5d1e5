"""Simulator -> Mosquitto -> gateway -> TimescaleDB -> alarm engine -> API (+ SSE), for real."""

from __future__ import annotations

import asyncio
import datetime as dt

import aiomqtt
import httpx
import orjson
import psycopg
import pytest

from minewatch.feeds import alarm_topic, broker_address, safety_subscriptions
from minewatch.metadata import upsert_mine
from minewatch.simulators.config import example_mine_path, load_mine_config
from minewatch.simulators.model import SimulatedMine
from minewatch.simulators.mqtt_publisher import publish_mine
from tests.helpers import eventually, running_api, running_gateway, scalar

pytestmark = pytest.mark.anyio

CYCLES = 70


async def _collect_sse(url: str, events: list[dict[str, object]], connected: asyncio.Event) -> None:
    async with httpx.AsyncClient(timeout=None) as client, client.stream("GET", url) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith(": connected"):
                connected.set()
            if line.startswith("data: "):
                events.append(orjson.loads(line.removeprefix("data: ")))


async def _collect_mqtt(
    mqtt_url: str, topic: str, events: list[dict[str, object]], subscribed: asyncio.Event
) -> None:
    host, port = broker_address(mqtt_url)
    async with aiomqtt.Client(host, port) as client:
        await client.subscribe(topic, qos=1)
        subscribed.set()
        async for message in client.messages:
            events.append(orjson.loads(message.payload))  # type: ignore[arg-type]


async def test_injected_methane_exceedance_reaches_the_api_and_the_stream(
    database_url: str, mqtt_url: str, unique_id: str
) -> None:
    mine = SimulatedMine(load_mine_config(example_mine_path("small")))
    code = mine.definition.mine.code
    truth = mine.ground_truth[0]
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=CYCLES)
    events: list[dict[str, object]] = []
    connected = asyncio.Event()
    topics = safety_subscriptions(code)
    # The control room's screen subscribes to a mine the installation knows (an unknown mine
    # answers 404, like a mine outside the caller's scope).
    with psycopg.connect(database_url) as conn:
        upsert_mine(conn, mine.definition)
    async with (
        running_gateway(database_url, mqtt_url, f"gw-{unique_id}", topics=topics),
        running_api(database_url) as base,
    ):
        stream = asyncio.create_task(
            _collect_sse(f"{base}/api/v1/dispatch/alarms/stream?mine={code}", events, connected)
        )
        screen_events: list[dict[str, object]] = []
        subscribed = asyncio.Event()
        screen = asyncio.create_task(
            _collect_mqtt(mqtt_url, alarm_topic(code), screen_events, subscribed)
        )
        await asyncio.wait_for(connected.wait(), 10)
        await asyncio.wait_for(subscribed.wait(), 10)
        report = await publish_mine(
            mine, mqtt_url, cycles=CYCLES, realtime=False, start=start, client_id=f"sim-{unique_id}"
        )
        assert report.readings == CYCLES * len(mine.codes)

        def all_stored() -> bool:
            return scalar(database_url, "SELECT count(*) FROM readings") == report.readings

        await eventually(all_stored)
        await eventually(lambda: sum("rule" in e for e in events) >= 4, limit_s=10)
        await eventually(
            lambda: sum(e.get("kind") != "incident" for e in screen_events) >= 4, limit_s=10
        )
        stream.cancel()
        screen.cancel()

        async with httpx.AsyncClient(base_url=base) as client:
            alarms = (await client.get("/api/v1/alarms", params={"mine": code})).json()
            mines = (await client.get("/api/v1/mines")).json()
            points = (await client.get(f"/api/v1/mines/{code}/points")).json()
            point_id = next(p["id"] for p in points if p["code"] == truth.point)
            end = start + dt.timedelta(seconds=CYCLES)
            window = {"start": start.isoformat(), "end": end.isoformat(), "bucket": "PT10S"}
            response = await client.get(f"/api/v1/points/{point_id}/readings", params=window)
            buckets = response.json()

    # Exactly the published readings, none lost, none twice, none quarantined.
    assert scalar(database_url, "SELECT count(*) FROM quarantine") == 0
    assert scalar(database_url, "SELECT count(DISTINCT (point_id, time)) FROM readings") == (
        report.readings
    )
    assert mines == [
        {"code": code, "name": mine.definition.mine.name, "gas_class": "high",
         "approved_capacity_t": 1200000.0, "points": len(mine.codes)}
    ]  # fmt: skip
    assert isinstance(buckets, list), buckets
    assert sum(b["count"] for b in buckets) == CYCLES
    assert max(b["max"] for b in buckets) >= 1.5

    # One episode per rule on the injected point, inside the labelled window, ended.
    assert sorted(a["rule"] for a in alarms) == ["power_off", "upper_alarm"]
    truth_start = start + dt.timedelta(seconds=truth.start_s)
    truth_end = start + dt.timedelta(seconds=truth.end_s)
    for alarm in alarms:
        assert alarm["point_code"] == truth.point
        started = dt.datetime.fromisoformat(alarm["started_at"])
        ended = dt.datetime.fromisoformat(alarm["ended_at"])
        assert truth_start <= started < ended <= truth_end + dt.timedelta(seconds=1)
        assert alarm["max_value"] >= 1.5
        assert alarm["state"] == "cleared"
        assert alarm["start_value"] >= alarm["threshold"]

    # The stream pushed each raise and clear as it was committed.
    stream_alarms = [e for e in events if "rule" in e]  # `event: alarm`
    seen = sorted((e["rule"], e["event"]) for e in stream_alarms)
    assert seen == [
        ("power_off", "cleared"), ("power_off", "raised"),
        ("upper_alarm", "cleared"), ("upper_alarm", "raised"),
    ]  # fmt: skip
    assert all(e["point"] == truth.point and e["mine"] == code for e in stream_alarms)
    # The stream also carries the incident that groups them (`event: incident`, issue 13).
    stream_incidents = [e for e in events if "root_rule" in e]
    assert stream_incidents and stream_incidents[0]["event"] == "opened", events
    assert all(e["root_point"] == truth.point for e in stream_incidents)
    ids = {e["id"] for e in stream_alarms}
    assert ids <= {m for e in stream_incidents for m in e["members"]}  # type: ignore[attr-defined]
    # ... and control-room screens got the same events on MQTT.
    # The screens' MQTT topic carries the same changes, and the incident that groups them.
    alarm_events = [e for e in screen_events if e.get("kind") != "incident"]
    assert sorted((e["rule"], e["event"]) for e in alarm_events) == seen
    incidents = [e for e in screen_events if e.get("kind") == "incident"]
    assert {e["event"] for e in incidents} >= {"opened"}, incidents

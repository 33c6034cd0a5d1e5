"""Late readings re-evaluate 馈电 and data interruption, correct stored episodes with an audit
trail, reach the live event streams and join incidents (issue 15; docs/alarms.md "Batching
and late data"), through the gateway's writer and a real database."""

from __future__ import annotations

import asyncio
import datetime as dt

import aiomqtt
import httpx
import orjson
import psycopg
import pytest

from minewatch.alarms.live import AlarmBroadcaster
from minewatch.alarms.mqtt_publisher import publish_alarms
from minewatch.feeds import alarm_topic, broker_address, safety_topic
from minewatch.ingest.contract import SafetyMessage, parse_message
from minewatch.ingest.metrics import GatewayMetrics
from minewatch.ingest.time_limits import TimeLimits
from minewatch.ingest.writer import BatchWriter, PendingWrite
from minewatch.metadata import MineDefinition, upsert_mine
from minewatch.simulators.config import example_mine_path, load_mine_config
from minewatch.simulators.model import SimulatedMine
from tests.helpers import eventually, running_api

pytestmark = pytest.mark.anyio

METHANE = "14102401000101001A02"  # alarm 1.0, power-off 1.5, restore 1.0; D relation to FEED
FEED = "14102401000101001D01"  # 馈电 of METHANE's breaker: control time 2 s, poll cycle 1 s
T0 = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
EXCEEDANCE = {s: 1.84 for s in range(30, 60)}


@pytest.fixture
def definition(database_url: str) -> MineDefinition:
    definition = SimulatedMine(load_mine_config(example_mine_path("small"))).definition
    with psycopg.connect(database_url) as conn:
        upsert_mine(conn, definition)
    return definition


def _at(seconds: int) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


class Substation:
    """Substation 001's messages, numbered in send order, stamped with any event time."""

    def __init__(self, definition: MineDefinition) -> None:
        self.mine = definition.mine.code
        self.points = [p.code for p in definition.points if p.substation == "001"]
        self.seq = 0

    def messages(
        self, seconds: range, values: dict[str, dict[int, float]], only: list[str] | None = None
    ) -> list[SafetyMessage]:
        """A message per second; each point reads ``values[point][s]`` (default: methane
        0.3, the feed 1 = 有电, others 0.3); ``only``: these points alone."""
        points = only or self.points
        out = []
        for s in seconds:
            self.seq += 1
            row = [values.get(c, {}).get(s, 1.0 if c == FEED else 0.3) for c in points]
            payload = {
                "v": 1, "mine": self.mine, "substation": "001", "boot": 1, "seq": self.seq,
                "ts": _at(s).isoformat(), "points": points, "values": row,
                "status": [0] * len(points),
            }  # fmt: skip
            message = parse_message(safety_topic(self.mine, "001"), orjson.dumps(payload), 1 << 20)
            assert isinstance(message, SafetyMessage)
            out.append(message)
        return out


async def _write(writer: BatchWriter, messages: list[SafetyMessage], chunk: int = 50) -> None:
    for a in range(0, len(messages), chunk):
        part = messages[a : a + chunk]
        pending = PendingWrite(messages=part, acks=[lambda: None], readings=0)
        assert all(writer.accepts(pending, m) for m in part)
        await writer.flush(pending)


def _writer(database_url: str) -> BatchWriter:
    return BatchWriter(
        database_url, GatewayMetrics(), 30.0, TimeLimits(300_000_000, 7 * 86_400_000_000)
    )


def _alarms(database_url: str, point: str, *rules: str) -> list[tuple[object, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT a.rule, a.classification, a.started_at, a.ended_at, a.value_count, "
            "a.computed_late, a.corrected_at IS NOT NULL FROM alarms a "
            "JOIN points p ON p.id = a.point_id WHERE p.code = %s AND a.rule = ANY(%s) "
            "ORDER BY a.rule, a.started_at",
            (point, list(rules)),
        ).fetchall()


def _corrections(database_url: str, point: str, rule: str) -> list[tuple[object, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT c.reason, c.previous, c.corrected FROM alarm_corrections c "
            "JOIN alarms a ON a.id = c.alarm_id JOIN points p ON p.id = a.point_id "
            "WHERE p.code = %s AND a.rule = %s ORDER BY c.id",
            (point, rule),
        ).fetchall()


async def test_a_backlog_of_methane_and_feed_raises_the_feed_abnormal_alarm_computed_late(
    database_url: str, definition: MineDefinition
) -> None:
    station = Substation(definition)
    async with _writer(database_url) as writer:
        await _write(writer, station.messages(range(10), {}))
        await _write(writer, station.messages(range(600, 601), {}))  # the link is back
        # what the mine buffered: the cut commanded at 30 (1.84 >= 1.5), the feed kept power
        await _write(writer, station.messages(range(10, 100), {METHANE: EXCEEDANCE}), 100)
    assert _alarms(database_url, METHANE, "feed_abnormal", "power_off") == [
        ("feed_abnormal", "power_off_failure", _at(32), _at(60), 28, True, False),
        ("power_off", "exceedance", _at(30), _at(60), 30, True, False),
    ]


async def test_late_readings_of_the_feed_sensor_alone_reveal_a_feed_abnormal_alarm(
    database_url: str, definition: MineDefinition
) -> None:
    station = Substation(definition)
    methane_only = [c for c in station.points if c != FEED]
    async with _writer(database_url) as writer:
        await _write(writer, station.messages(range(10), {FEED: dict.fromkeys(range(10), 0.0)}))
        # live: the methane point cuts at 30; the feed's last word was 0 (no power): no alarm
        await _write(writer, station.messages(range(10, 100), {METHANE: EXCEEDANCE}, methane_only))
        await _write(writer, station.messages(range(600, 601), {}, [FEED]))
        assert _alarms(database_url, METHANE, "feed_abnormal") == []
        # the feed's substation uploads its buffer: it had power all along
        await _write(writer, station.messages(range(10, 100), {}, [FEED]), 100)
    assert _alarms(database_url, METHANE, "feed_abnormal") == [
        ("feed_abnormal", "power_off_failure", _at(32), _at(60), 28, True, False),
    ]


async def test_late_readings_correct_the_end_of_a_live_alarm_and_keep_the_previous_values(
    database_url: str, definition: MineDefinition
) -> None:
    station = Substation(definition)
    async with _writer(database_url) as writer:
        await _write(writer, station.messages(range(41), {METHANE: EXCEEDANCE}))
        await _write(writer, station.messages(range(100, 101), {}))  # live: clear at 100
        assert _alarms(database_url, METHANE, "upper_alarm") == [
            ("upper_alarm", "exceedance", _at(30), _at(100), 11, False, False),
        ]
        await _write(writer, station.messages(range(41, 100), {METHANE: EXCEEDANCE}), 100)
    assert _alarms(database_url, METHANE, "upper_alarm") == [
        ("upper_alarm", "exceedance", _at(30), _at(60), 30, False, True),
    ]
    [(reason, previous, corrected)] = _corrections(database_url, METHANE, "upper_alarm")
    assert reason == "late_readings"
    assert previous["ended_at"] == _at(100).isoformat() and previous["value_count"] == 11
    assert corrected["ended_at"] == _at(60).isoformat() and corrected["value_count"] == 30
    async with running_api(database_url) as base, httpx.AsyncClient(base_url=base) as client:
        [alarm] = (await client.get("/api/v1/alarms", params={
            "mine": definition.mine.code, "rule": "upper_alarm"})).json()  # fmt: skip
    assert alarm["corrected_at"] is not None and alarm["computed_late"] is False
    [shown] = alarm["corrections"]
    assert (shown["reason"], shown["previous"]["value_count"]) == ("late_readings", 11)


async def test_an_interruption_that_late_readings_fill_is_corrected_to_a_delivery_delay(
    database_url: str, definition: MineDefinition
) -> None:
    station = Substation(definition)
    async with _writer(database_url) as writer:
        await _write(writer, station.messages(range(10), {}))
        await writer.tick()  # the clock: every point silent since 9 (an hour ago)
        await _write(writer, station.messages(range(600, 601), {}))
        assert _alarms(database_url, METHANE, "data_interruption") == [
            ("data_interruption", "data_interruption", _at(10), _at(600), 1, False, False),
        ]
        await _write(writer, station.messages(range(10, 300), {}), chunk=100)
        # a silence of 300..600 is left: the interruption is that silence
        assert _alarms(database_url, METHANE, "data_interruption") == [
            ("data_interruption", "data_interruption", _at(300), _at(600), 1, False, True),
        ]
        await _write(writer, station.messages(range(300, 600), {}), chunk=100)
    # every reading was there: the record tells of their delivery from where the silence began,
    # not of a silence (each step is in alarm_corrections)
    assert _alarms(database_url, METHANE, "data_interruption") == [
        ("data_interruption", "delivery_delay", _at(10), _at(600), 1, False, True),
    ]
    reasons = [r[0] for r in _corrections(database_url, METHANE, "data_interruption")]
    assert reasons[-1] == "late_readings_filled_interruption"
    assert reasons[:-1] == ["late_readings"] * (len(reasons) - 1) and len(reasons) >= 2


async def test_late_episodes_open_an_incident_of_their_own_marked_computed_late(
    database_url: str, definition: MineDefinition
) -> None:
    station = Substation(definition)
    async with _writer(database_url) as writer:
        await _write(writer, station.messages(range(10), {}))
        await _write(writer, station.messages(range(600, 601), {}))
        await _write(writer, station.messages(range(10, 100), {METHANE: EXCEEDANCE}), 100)
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT i.root_rule, i.grade, i.started_at, i.ended_at, i.computed_late, "
            "array_agg(a.rule ORDER BY a.rule) FROM incidents i "
            "JOIN incident_members m ON m.incident_id = i.id JOIN alarms a ON a.id = m.alarm_id "
            "JOIN points p ON p.id = i.root_point_id WHERE p.code = %s "
            "GROUP BY i.id ORDER BY i.started_at",
            (METHANE,),
        ).fetchall()
    assert rows == [
        ("power_off", "red", _at(30), _at(60), True,
         ["feed_abnormal", "power_off", "upper_alarm"]),
    ]  # fmt: skip


async def test_late_episodes_join_the_live_incident_open_at_their_raise(
    database_url: str, definition: MineDefinition
) -> None:
    station = Substation(definition)
    methane_only = [c for c in station.points if c != FEED]
    async with _writer(database_url) as writer:
        # live: the methane point at 1.84 from 30 on (HI, power-off): an incident still open
        await _write(writer, station.messages(range(60), {METHANE: EXCEEDANCE}, methane_only))
        # the feed's substation: no power (0) at its last word before its link went down
        await _write(writer, station.messages(range(0, 10), {FEED: dict.fromkeys(range(10), 0)},
                                              [FEED]))  # fmt: skip
        await _write(writer, station.messages(range(60, 61), {}, [FEED]))
        assert _alarms(database_url, METHANE, "feed_abnormal") == []
        # its buffer: it had power through the cut, a 馈电 failure of that incident
        await _write(writer, station.messages(range(10, 60), {}, [FEED]), 100)
        held = [sorted(m.rule for m in i.members) for i in writer.engine.incidents.open]
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT i.root_rule, i.computed_late, array_agg(a.rule ORDER BY a.rule), "
            "bool_or(a.computed_late) FROM incidents i "
            "JOIN incident_members m ON m.incident_id = i.id JOIN alarms a ON a.id = m.alarm_id "
            "JOIN points p ON p.id = i.root_point_id WHERE p.code = %s GROUP BY i.id",
            (METHANE,),
        ).fetchall()
    assert rows == [("power_off", False, ["feed_abnormal", "power_off", "upper_alarm"], True)]
    # the live tracker holds it, with its late member
    assert ["feed_abnormal", "power_off", "upper_alarm"] in held


async def _screen(mqtt_url: str, topic: str, heard: list[dict], ready: asyncio.Event) -> None:  # type: ignore[type-arg]
    host, port = broker_address(mqtt_url)
    async with aiomqtt.Client(host, port) as client:
        await client.subscribe(topic, qos=1)
        ready.set()
        async for message in client.messages:
            heard.append(orjson.loads(message.payload))  # type: ignore[arg-type]


async def test_late_episodes_and_corrections_reach_the_sse_stream_and_the_mqtt_alarm_topic(
    database_url: str, mqtt_url: str, unique_id: str, definition: MineDefinition
) -> None:
    station = Substation(definition)
    mine = definition.mine.code
    connected, subscribed = asyncio.Event(), asyncio.Event()
    seen: list[tuple[str, dict]] = []  # type: ignore[type-arg]

    async def read(client: httpx.AsyncClient) -> None:
        async with client.stream("GET", f"/api/v1/dispatch/alarms/stream?mine={mine}") as r:
            name = ""
            async for line in r.aiter_lines():
                if line.startswith(": connected"):
                    connected.set()
                if line.startswith("event: "):
                    name = line[7:]
                if line.startswith("data: "):
                    seen.append((name, orjson.loads(line[6:])))

    heard: list[dict] = []  # type: ignore[type-arg]
    async with (
        running_api(database_url) as base,
        httpx.AsyncClient(base_url=base, timeout=60) as client,
        AlarmBroadcaster(database_url) as broadcaster,
    ):
        screen = asyncio.create_task(_screen(mqtt_url, alarm_topic(mine), heard, subscribed))
        publisher = asyncio.create_task(
            publish_alarms(database_url, broadcaster, mqtt_url, f"pub-{unique_id}")
        )
        live = asyncio.create_task(read(client))
        await asyncio.wait_for(connected.wait(), 20)
        await asyncio.wait_for(broadcaster.listening.wait(), 20)
        await asyncio.wait_for(subscribed.wait(), 20)
        async with _writer(database_url) as writer:
            await _write(writer, station.messages(range(41), {METHANE: EXCEEDANCE}))
            await _write(writer, station.messages(range(100, 101), {}))
            await _write(writer, station.messages(range(41, 100), {METHANE: EXCEEDANCE}))
            await _write(writer, station.messages(range(600, 601), {}))
            await _write(writer, station.messages(range(120, 150), {METHANE: {140: 1.84}}))

        def late_events(events: list[dict]) -> list[tuple[str, str]]:  # type: ignore[type-arg]
            return sorted(
                (e["event"], e["rule"]) for e in events
                if e.get("point") == METHANE
                and (e.get("computed_late") or e["event"] == "corrected")
                and e["rule"] in ("upper_alarm", "interference")
            )  # fmt: skip

        expected = {("corrected", "upper_alarm"), ("raised", "interference")}
        # MQTT and SSE both carry the numbered changes: the late interference, stored ended,
        # is one event whose record has its end
        await eventually(lambda: set(late_events(heard)) == expected)
        await eventually(lambda: set(late_events([e for n, e in seen if n == "alarm"])) == expected)
        for task in (screen, publisher, live):
            task.cancel()
        await asyncio.gather(screen, publisher, live, return_exceptions=True)
    mqtt_corrected = next(
        e for e in heard if e["event"] == "corrected" and e["rule"] == "upper_alarm"
    )
    assert mqtt_corrected["previous"]["ended_at"] == _at(100).isoformat()
    assert mqtt_corrected["corrected"]["ended_at"] == _at(60).isoformat()
    late_raised = next(e for e in heard if e.get("computed_late") and e["event"] == "raised")
    assert late_raised["ended_at"] is not None

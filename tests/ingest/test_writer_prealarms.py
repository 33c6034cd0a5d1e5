"""Pre-alarms through the write path (issue 17): the mine's settings read from the database,
a pre-alarm written in the batch's transaction, restored by the next writer, and pushed to the
dispatcher's stream as ``prealarm`` events."""

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
from minewatch.metadata import upsert_mine
from minewatch.simulators.config import example_mine_path, load_mine_config
from minewatch.simulators.model import SimulatedMine
from tests.helpers import eventually, running_api, scalar

pytestmark = pytest.mark.anyio
SETTINGS = '{"horizon_s": 600, "tau_s": 60, "slow_tau_s": 0, "confirm": 5, "min_weight": 30}'


async def test_a_rising_face_sensor_gets_a_pre_alarm_stored_and_restored(
    database_url: str,
) -> None:
    definition = SimulatedMine(load_mine_config(example_mine_path("small"))).definition
    with psycopg.connect(database_url) as conn:
        upsert_mine(conn, definition)
        conn.execute("UPDATE mines SET prealarm = %s::jsonb", (SETTINGS,))
    mine = definition.mine.code
    points = [p.code for p in definition.points if p.substation == "001"]
    face = next(i for i, p in enumerate(points) if p.endswith("A02"))  # CH4_T1, alarm 1.0
    start = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=700)
    messages = []
    for k in range(600):  # flat for 5 minutes, then +0.12 %/min (0.9 % at the end: no alarm)
        values = [0.3] * len(points)
        values[face] = 0.3 + 0.002 * max(0, k - 300)
        payload = {
            "v": 1, "mine": mine, "substation": "001", "boot": 1, "seq": k + 1,
            "ts": (start + dt.timedelta(seconds=k)).isoformat(), "points": points,
            "values": values, "status": [0] * len(points),
        }  # fmt: skip
        message = parse_message(safety_topic(mine, "001"), orjson.dumps(payload), 1 << 20)
        assert isinstance(message, SafetyMessage)
        messages.append(message)
    limits = TimeLimits(300_000_000, 86_400_000_000)
    acked: list[int] = []
    async with BatchWriter(database_url, GatewayMetrics(), 30.0, limits) as writer:
        assert writer.engine.prealarm_params[mine].horizon_s == 600
        for a in range(0, len(messages), 20):
            chunk = messages[a : a + 20]
            pending = PendingWrite(
                messages=chunk, acks=[lambda: acked.append(1)], readings=len(points) * len(chunk)
            )
            assert all(writer.accepts(pending, message) for message in chunk)
            await writer.flush(pending)
        face_id = int(writer.registry.lookup(mine, [points[face]])[0])
        assert len(acked) == len(range(0, len(messages), 20))
        assert writer.engine.prealarms.active[face_id]
    assert scalar(database_url, "SELECT count(*) FROM alarms WHERE rule = 'upper_alarm'") == 0
    row = scalar(
        database_url,
        "SELECT EXTRACT(EPOCH FROM raised_at - %s::timestamptz) FROM prealarms "
        "WHERE point_id = %s AND cleared_at IS NULL",
        (start, face_id),
    )
    assert row is not None and 300 < float(str(row)) < 600  # raised on the rise
    async with BatchWriter(database_url, GatewayMetrics(), 30.0, limits) as restarted:
        assert restarted.engine.prealarms.active[face_id]


async def _screen(mqtt_url: str, topic: str, got: list[dict], ready: asyncio.Event) -> None:  # type: ignore[type-arg]
    """A control-room screen on the MQTT alarm topic: the pre-alarm events it hears."""
    host, port = broker_address(mqtt_url)
    async with aiomqtt.Client(host, port) as client:
        await client.subscribe(topic, qos=1)
        ready.set()
        async for message in client.messages:
            event = orjson.loads(message.payload)  # type: ignore[arg-type]
            if event.get("kind") == "prealarm":
                got.append(event)


async def test_a_raised_and_cleared_pre_alarm_reaches_the_stream_and_resumes(
    database_url: str, mqtt_url: str, unique_id: str
) -> None:
    """Migration 0022: the raise and the clear are numbered ``prealarm`` events on the SSE
    stream, live and again after ``Last-Event-ID``, and reach MQTT screens."""
    definition = SimulatedMine(load_mine_config(example_mine_path("small"))).definition
    with psycopg.connect(database_url) as conn:
        upsert_mine(conn, definition)
        conn.execute("UPDATE mines SET prealarm = %s::jsonb", (SETTINGS,))
    mine = definition.mine.code
    points = [p.code for p in definition.points if p.substation == "001"]
    face = next(i for i, p in enumerate(points) if p.endswith("A02"))
    start = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=900)
    messages = []
    for k in range(840):  # flat, rising for 5 minutes (raised), flat again (cleared)
        values = [0.3] * len(points)
        values[face] = 0.3 + 0.002 * (k - 300) if 300 <= k < 600 else 0.3
        payload = {
            "v": 1, "mine": mine, "substation": "001", "boot": 1, "seq": k + 1,
            "ts": (start + dt.timedelta(seconds=k)).isoformat(), "points": points,
            "values": values, "status": [0] * len(points),
        }  # fmt: skip
        message = parse_message(safety_topic(mine, "001"), orjson.dumps(payload), 1 << 20)
        assert isinstance(message, SafetyMessage)
        messages.append(message)
    limits = TimeLimits(300_000_000, 86_400_000_000)
    connected = asyncio.Event()

    async def read(client: httpx.AsyncClient, headers: dict[str, str]) -> list[tuple[int, dict]]:  # type: ignore[type-arg]
        """The ``prealarm`` events up to the first ``cleared`` one, with their ids."""
        got: list[tuple[int, dict]] = []  # type: ignore[type-arg]
        stream = f"/api/v1/dispatch/alarms/stream?mine={mine}"
        async with client.stream("GET", stream, headers=headers) as response:
            seq, name = 0, ""
            async for line in response.aiter_lines():
                if line.startswith(": connected"):
                    connected.set()
                if line.startswith("id: "):
                    seq = int(line[4:])
                if line.startswith("event: "):
                    name = line[7:]
                if line.startswith("data: ") and name == "prealarm":
                    got.append((seq, orjson.loads(line[6:])))
                    if got[-1][1]["event"] == "cleared":
                        return got
        raise AssertionError("the stream ended")

    heard: list[dict] = []  # type: ignore[type-arg]
    subscribed = asyncio.Event()
    async with (
        running_api(database_url) as base,
        httpx.AsyncClient(base_url=base, timeout=60) as client,
        AlarmBroadcaster(database_url) as broadcaster,
    ):
        screen = asyncio.create_task(_screen(mqtt_url, alarm_topic(mine), heard, subscribed))
        with psycopg.connect(database_url) as conn:  # the publisher starts before the writes
            conn.execute(
                "INSERT INTO outbox_positions (name, position) SELECT %s, coalesce(max(seq), 0) "
                "FROM alarm_changes", (f"alarms:pub-{unique_id}",),
            )  # fmt: skip
        publisher = asyncio.create_task(
            publish_alarms(database_url, broadcaster, mqtt_url, f"pub-{unique_id}")
        )
        live = asyncio.create_task(read(client, {}))
        await asyncio.wait_for(connected.wait(), 20)
        await asyncio.wait_for(broadcaster.listening.wait(), 20)
        await asyncio.wait_for(subscribed.wait(), 20)
        async with BatchWriter(database_url, GatewayMetrics(), 30.0, limits) as writer:
            for a in range(0, len(messages), 20):
                chunk = messages[a : a + 20]
                pending = PendingWrite(
                    messages=chunk, acks=[lambda: None], readings=len(points) * len(chunk)
                )
                assert all(writer.accepts(pending, message) for message in chunk)
                await writer.flush(pending)
            face_id = int(writer.registry.lookup(mine, [points[face]])[0])
        events = await asyncio.wait_for(live, 30)
        (raised_seq, raised), (cleared_seq, cleared) = events
        resumed = await asyncio.wait_for(read(client, {"Last-Event-ID": str(raised_seq)}), 20)
        await eventually(lambda: len(heard) >= 2)
        for task in (screen, publisher):
            task.cancel()
        await asyncio.gather(screen, publisher, return_exceptions=True)
    row = scalar(
        database_url, "SELECT id FROM prealarms WHERE point_id = %s AND cleared_at IS NOT NULL",
        (face_id,),
    )  # fmt: skip
    assert raised["event"] == "raised" and cleared["event"] == "cleared"
    assert raised["id"] == cleared["id"] == row and raised["point"] == points[face]
    assert raised["point_id"] == face_id and raised["mine"] == mine
    assert raised["cleared_at"] is None and cleared["cleared_at"] is not None
    assert raised["level"] == 1.0 and raised["forecast"] >= 1.0 and raised["lead_s"] > 0
    assert raised_seq < cleared_seq and resumed == [(cleared_seq, cleared)]
    assert [(e["event"], e["id"], e["point"], e["level"]) for e in heard] == [
        ("raised", row, points[face], 1.0), ("cleared", row, points[face], 1.0)
    ]  # fmt: skip

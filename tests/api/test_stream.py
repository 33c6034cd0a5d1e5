"""The alarm stream: numbered events, resuming after Last-Event-ID, and no change lost when
two writers commit out of number order."""

from __future__ import annotations

import asyncio

import httpx
import orjson
import psycopg
import pytest

from minewatch.api.accounts import Role
from tests.api.two_mines import World, bearer, build_world
from tests.helpers import running_api

pytestmark = pytest.mark.anyio


async def _first_event(
    client: httpx.AsyncClient,
    world: World,
    headers: dict[str, str],
    on_connect=None,  # type: ignore[no-untyped-def]
) -> tuple[int, dict]:  # type: ignore[type-arg]
    stream = f"/api/v1/dispatch/alarms/stream?mine={world.a.code}"
    headers = bearer(world.keys[Role.DISPATCHER]) | headers
    async with client.stream("GET", stream, headers=headers) as response:
        event_id = None
        async for line in response.aiter_lines():
            if line.startswith(": connected") and on_connect is not None:
                on_connect()
            if line.startswith("id: "):
                event_id = int(line[4:])
            if line.startswith("data: "):
                assert event_id is not None
                return event_id, orjson.loads(line[6:])
    raise AssertionError("no event")


async def test_the_stream_numbers_events_and_resumes_after_last_event_id(
    database_url: str,
) -> None:
    world = await build_world(database_url)

    def clear() -> None:  # a change after connecting
        with psycopg.connect(database_url) as conn:
            conn.execute("UPDATE alarms SET ended_at = now() WHERE id = %s", (world.a.alarm_id,))

    async with (
        running_api(database_url, signed_in=False) as base,
        httpx.AsyncClient(base_url=base, timeout=20) as client,
    ):
        seen, event = await asyncio.wait_for(_first_event(client, world, {}, clear), 20)
        assert event["event"] == "cleared" and event["id"] == world.a.alarm_id
        with psycopg.connect(database_url) as conn:  # while the screen was away
            conn.execute("UPDATE alarms SET acknowledged_at = now() WHERE id = %s",
                         (world.a.alarm_id,))  # fmt: skip
        resumed, missed = await asyncio.wait_for(
            _first_event(client, world, {"Last-Event-ID": str(seen)}), 20
        )
    assert resumed > seen and missed["event"] == "acknowledged"


async def test_a_change_committed_after_a_later_numbered_one_is_not_skipped(
    database_url: str,
) -> None:
    world = await build_world(database_url)
    with psycopg.connect(database_url) as conn:
        before = conn.execute("SELECT max(seq) FROM alarm_changes").fetchone()[0]  # type: ignore[index]
    slow = psycopg.connect(database_url)  # takes number before+1 and commits last
    try:
        slow.execute("UPDATE alarms SET ended_at = now() WHERE id = %s", (world.a.alarm_id,))
        with psycopg.connect(database_url) as fast:  # takes number before+2, commits first
            fast.execute("UPDATE alarms SET acknowledged_at = now() WHERE id = %s",
                         (world.b.alarm_id,))  # fmt: skip
        async with (
            running_api(database_url, signed_in=False) as base,
            httpx.AsyncClient(base_url=base, timeout=20) as client,
        ):
            resume = {"Last-Event-ID": str(before)}
            reader = asyncio.create_task(_first_event(client, world, resume))
            await asyncio.sleep(1.0)  # the stream waits at the gap ...
            assert not reader.done()
            slow.commit()  # ... until the earlier number commits
            seq, event = await asyncio.wait_for(reader, 20)
    finally:
        slow.close()
    assert seq == before + 1 and event["event"] == "cleared"


async def test_the_stream_carries_incident_events_with_their_members(database_url: str) -> None:
    """Issue 13: an incident opened (as the gateway stores it, with its members in the same
    transaction) and then acknowledged reaches the stream as ``incident`` events."""
    world = await build_world(database_url)
    incident: list[int] = []

    def open_incident() -> None:
        with psycopg.connect(database_url) as conn:
            row = conn.execute(
                "INSERT INTO incidents (mine_code, root_point_id, root_rule, category, grade, "
                "started_at, raised_at) SELECT mine_code, point_id, rule, 'gas', 'red', "
                "started_at, started_at FROM alarms WHERE id = %s RETURNING id",
                (world.a.alarm_id,),
            ).fetchone()
            assert row is not None
            incident.append(int(row[0]))
            conn.execute("INSERT INTO incident_members (incident_id, alarm_id) VALUES (%s, %s)",
                         (row[0], world.a.alarm_id))  # fmt: skip

    async def next_event(headers: dict[str, str], on_connect=None) -> tuple[int, str, dict]:  # type: ignore[no-untyped-def,type-arg]
        stream = f"/api/v1/dispatch/alarms/stream?mine={world.a.code}"
        headers = bearer(world.keys[Role.DISPATCHER]) | headers
        async with client.stream("GET", stream, headers=headers) as response:
            seq, name = None, None
            async for line in response.aiter_lines():
                if line.startswith(": connected") and on_connect is not None:
                    on_connect()
                if line.startswith("id: "):
                    seq = int(line[4:])
                if line.startswith("event: "):
                    name = line[7:]
                if line.startswith("data: "):
                    assert seq is not None and name is not None
                    return seq, name, orjson.loads(line[6:])
        raise AssertionError("no event")

    async with (
        running_api(database_url, signed_in=False) as base,
        httpx.AsyncClient(base_url=base, timeout=20) as client,
    ):
        seq, name, event = await asyncio.wait_for(next_event({}, open_incident), 20)
        assert name == "incident" and event["event"] == "opened" and event["id"] == incident[0]
        assert event["members"] == [world.a.alarm_id] and event["grade"] == "red"
        with psycopg.connect(database_url) as conn:
            conn.execute("UPDATE incidents SET acknowledged_at = now(), state = 'acknowledged' "
                         "WHERE id = %s", (incident[0],))  # fmt: skip
        later, name, event = await asyncio.wait_for(next_event({"Last-Event-ID": str(seq)}), 20)
    assert later > seq and name == "incident" and event["event"] == "acknowledged"
    assert event["state"] == "acknowledged"

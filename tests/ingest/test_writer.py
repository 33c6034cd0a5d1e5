"""The write path's own guarantees, without a broker."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt

import orjson
import psycopg
import pytest

from minewatch.feeds import safety_topic
from minewatch.ingest.contract import SafetyMessage, parse_message
from minewatch.ingest.metrics import GatewayMetrics
from minewatch.ingest.time_limits import TimeLimits
from minewatch.ingest.writer import BatchWriter, PendingWrite
from minewatch.metadata import upsert_mine
from minewatch.simulators.config import example_mine_path, load_mine_config
from minewatch.simulators.model import SimulatedMine
from tests.helpers import scalar

pytestmark = pytest.mark.anyio


async def test_retrying_a_write_whose_commit_did_go_through_stores_nothing_twice(
    database_url: str,
) -> None:
    """A connection lost during COMMIT leaves the outcome unknown: the retry must find out."""
    definition = SimulatedMine(load_mine_config(example_mine_path("small"))).definition
    with psycopg.connect(database_url) as conn:
        upsert_mine(conn, definition)
    mine = definition.mine.code
    points = [p.code for p in definition.points if p.substation == "001"]
    payload = {
        "v": 1, "mine": mine, "substation": "001", "boot": 1, "seq": 1,
        "ts": dt.datetime.now(dt.UTC).isoformat(), "points": points,
        "values": [0.3] * len(points), "status": [0] * len(points),
    }  # fmt: skip
    message = parse_message(safety_topic(mine, "001"), orjson.dumps(payload), 1 << 20)
    assert isinstance(message, SafetyMessage)
    limits = TimeLimits(300_000_000, 86_400_000_000)
    async with BatchWriter(database_url, GatewayMetrics(), 30.0, limits) as writer:
        pending = PendingWrite(messages=[message], acks=[lambda: None], readings=len(points))
        assert writer.accepts(PendingWrite(), message)
        pending.watermarks[message.source] = (1, 1)
        await writer.flush(pending)
        # The same write again, as a retry after an ambiguous COMMIT would send it:
        prepared = writer._prepare(pending, None, 0.0)
        await writer._retrying(lambda conn: writer._write(conn, prepared))
    assert scalar(database_url, "SELECT count(*) FROM readings") == len(points)


async def test_a_pending_write_is_acknowledged_once_even_if_flushed_twice(
    database_url: str,
) -> None:
    """A caller cancelled while it held a pending write already flushed hands it in again on its
    way out; a second acknowledgement would move a drop-folder file that is gone already."""
    acks: list[int] = []
    limits = TimeLimits(300_000_000, 86_400_000_000)
    async with BatchWriter(database_url, GatewayMetrics(), 30.0, limits) as writer:
        pending = PendingWrite(acks=[lambda: acks.append(1)])
        await writer.flush(pending)
        await writer.flush(pending)
    assert acks == [1]


async def test_a_cancellation_that_the_driver_turns_into_an_error_still_cancels(
    database_url: str,
) -> None:
    """psycopg can raise from its clean-up after a cancellation (an AssertionError leaving the
    pipeline of an executemany). A caller that sets errors aside (a refused definition) would
    swallow it, and a gateway asked to stop would run on: the writer re-raises a cancellation."""
    started = asyncio.Event()

    async def attempt(conn: psycopg.AsyncConnection) -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            raise AssertionError from None  # what psycopg's pipeline clean-up raised

    async def caller(writer: BatchWriter) -> None:
        with contextlib.suppress(Exception):  # like the gateway's handling of a definition
            await writer._retrying(attempt)
        await asyncio.sleep(60)  # a lost cancellation would leave the task running here

    limits = TimeLimits(300_000_000, 86_400_000_000)
    async with BatchWriter(database_url, GatewayMetrics(), 30.0, limits) as writer:
        task = asyncio.create_task(caller(writer))
        await started.wait()
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=5)
    assert done and task.cancelled()

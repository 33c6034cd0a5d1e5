"""A publisher that restarts very often (a new boot each time) and a bridge that delivers a
boot's tail after many newer boots (Mosquitto resending its queue after a link outage): the
source's mark remembers only :data:`MAX_EARLIER` boots, and what it no longer remembers is
never lost as "delivered" (issue 16): the writer asks the database."""

from __future__ import annotations

import datetime as dt

import orjson
import psycopg
import pytest

from minewatch.feeds import safety_topic
from minewatch.ingest.contract import SafetyMessage, parse_message
from minewatch.ingest.metrics import GatewayMetrics
from minewatch.ingest.sequence import MAX_EARLIER
from minewatch.ingest.time_limits import TimeLimits
from minewatch.ingest.writer import BatchWriter, PendingWrite
from minewatch.metadata import MineDefinition, upsert_mine
from minewatch.simulators.config import example_mine_path, load_mine_config
from minewatch.simulators.model import SimulatedMine
from tests.federation.stacks import duplicates
from tests.helpers import scalar

pytestmark = pytest.mark.anyio

SEQS = 3  # messages per boot
BOOTS = MAX_EARLIER + 20


def _message(definition: MineDefinition, boot: int, seq: int, at: dt.datetime) -> SafetyMessage:
    mine = definition.mine.code
    points = [p.code for p in definition.points if p.substation == "001"]
    payload = {
        "v": 1, "mine": mine, "substation": "001", "boot": boot, "seq": seq,
        "ts": at.isoformat(), "points": points,
        "values": [0.3] * len(points), "status": [0] * len(points),
    }  # fmt: skip
    message = parse_message(safety_topic(mine, "001"), orjson.dumps(payload), 1 << 20)
    assert isinstance(message, SafetyMessage)
    return message


async def _deliver(writer: BatchWriter, messages: list[SafetyMessage], per_batch: int) -> None:
    """Through the writer as the gateway hands them over: accepted one by one, flushed in
    write batches of ``per_batch`` deliveries."""
    for at in range(0, len(messages), per_batch):
        pending = PendingWrite()
        for message in messages[at : at + per_batch]:
            if writer.accepts(pending, message):
                pending.messages.append(message)
                pending.readings += len(message)
            pending.acks.append(lambda: None)
        await writer.flush(pending)


async def test_a_boots_tail_after_more_boots_than_remembered_is_stored_once(
    database_url: str,
) -> None:
    definition = SimulatedMine(load_mine_config(example_mine_path("small"))).definition
    with psycopg.connect(database_url) as conn:
        upsert_mine(conn, definition)
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
    sent = [
        _message(definition, 1_000 + b, s, start + dt.timedelta(seconds=SEQS * b + s))
        for b in range(BOOTS)
        for s in range(1, SEQS + 1)
    ]
    late = {(1_003, 2), (1_003, 3), (1_005, 3)}  # overtaken by more than MAX_EARLIER boots
    arrived = [m for m in sent if (m.boot, m.seq) not in late]
    tail = [m for m in sent if (m.boot, m.seq) in late]
    again = [m for m in sent if (m.boot, m.seq) in {(1_003, 1), (1_005, 2)}]  # stored long ago
    limits = TimeLimits(300_000_000, 86_400_000_000)
    async with BatchWriter(database_url, GatewayMetrics(), 30.0, limits) as writer:
        await _deliver(writer, arrived, per_batch=7)
        # the tail, one of its messages twice in one write batch, and redeliveries of messages
        # stored before: each stored once
        await _deliver(writer, [*tail, tail[0], *again], per_batch=10)
        await _deliver(writer, [*tail, *again], per_batch=2)  # all redeliveries now
    points = len(sent[0])
    assert scalar(database_url, "SELECT count(*) FROM readings") == len(sent) * points
    assert duplicates(database_url) == 0

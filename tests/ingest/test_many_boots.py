"""A publisher that restarts very often (a new boot each time) and a bridge that delivers a
boot's tail after many newer boots (Mosquitto resending its queue after a link outage): the
source's mark remembers only :data:`MAX_EARLIER` boots, and what it no longer remembers is
never lost as "delivered" (issue 16): the writer asks the database. The same for the holes it
no longer keeps (more than :data:`MAX_MISSING` seqs skipped at once)."""

from __future__ import annotations

import datetime as dt

import orjson
import psycopg
import pytest

from minewatch.feeds import safety_topic
from minewatch.ingest.contract import SafetyMessage, parse_message
from minewatch.ingest.metrics import GatewayMetrics
from minewatch.ingest.sequence import MAX_EARLIER, MAX_MISSING
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


def _message(
    definition: MineDefinition, boot: int, seq: int, at: dt.datetime, substation: str = "001"
) -> SafetyMessage:
    mine = definition.mine.code
    points = [p.code for p in definition.points if p.substation == substation]
    payload = {
        "v": 1, "mine": mine, "substation": substation, "boot": boot, "seq": seq,
        "ts": at.isoformat(), "points": points,
        "values": [0.3] * len(points), "status": [0] * len(points),
    }  # fmt: skip
    message = parse_message(safety_topic(mine, substation), orjson.dumps(payload), 1 << 20)
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


async def test_messages_skipped_by_a_jump_longer_than_the_holes_kept_are_stored_once(
    database_url: str,
) -> None:
    """seq jumps by more than :data:`MAX_MISSING` (the mark keeps only the newest holes), then
    the skipped messages arrive late, and some of them again; and the first messages of a
    source's boot arrive after a later one of it (before the source's first mark)."""
    definition = SimulatedMine(load_mine_config(example_mine_path("small"))).definition
    with psycopg.connect(database_url) as conn:
        upsert_mine(conn, definition)
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
    jump = 2 * MAX_MISSING

    def message(boot: int, seq: int, substation: str = "001") -> SafetyMessage:
        at = start + dt.timedelta(seconds=boot * 100, milliseconds=seq)
        return _message(definition, boot, seq, at, substation)

    first = [message(7, s) for s in (1, 2, 3, jump)]  # 4 .. jump - 1 skipped
    late = [message(7, s) for s in (5, 6, MAX_MISSING // 2, jump - 1)]  # the last: a hole kept
    again = [message(7, s) for s in (2, 3, jump)]  # stored before the late ones came
    limits = TimeLimits(300_000_000, 86_400_000_000)
    async with BatchWriter(database_url, GatewayMetrics(), 30.0, limits) as writer:
        await _deliver(writer, first, per_batch=2)
        await _deliver(writer, [*late, late[0], *again], per_batch=4)
        await _deliver(writer, [*late, *again], per_batch=3)  # all redeliveries now
        # a source whose first message the gateway sees is not its boot's first one
        other = [message(8, s, "002") for s in (40, 41, 39, 1, 39, 40)]
        await _deliver(writer, other[:2], per_batch=2)
        await _deliver(writer, other[2:], per_batch=3)
    stored = 8 * len(first[0]) + 4 * len(other[0])  # each message once
    assert scalar(database_url, "SELECT count(*) FROM readings") == stored
    assert duplicates(database_url) == 0

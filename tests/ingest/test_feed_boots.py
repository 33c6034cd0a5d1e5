"""The personnel, video and comms feeds when a source's mark cannot tell whether a message is
stored (ingest/sequence.py: UNKNOWN): a late message of a boot pushed out of the mark's
memory (more than :data:`MAX_EARLIER` newer boots), or of a seq older than the holes it keeps
(a jump of more than :data:`MAX_MISSING`). The feed writer asks the database, as the safety
writer does: the message is stored, its redeliveries are not. Over a real broker and database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import aiomqtt
import orjson
import pytest

from minewatch.feeds import broker_address, comms_topic, personnel_topic, video_topic
from minewatch.ingest.feeds.contract import FeedBatch
from minewatch.ingest.feeds.parsing import parse_feed_message
from minewatch.ingest.feeds.writer import FeedPending, FeedWriter
from minewatch.ingest.sequence import MAX_EARLIER, MAX_MISSING
from minewatch.timeutil import datetime_to_us
from tests.helpers import eventually, scalar
from tests.personnel.stack import running_feeds

pytestmark = pytest.mark.anyio

MINE = "141024017701"
AREA = f"{MINE}0003"
STATION = f"{AREA}000001"
CARD = f"{MINE}00017"
BOOTS = MAX_EARLIER + 20  # a source that restarted more often than its mark remembers
SEQS = 2  # messages per boot
MINUTE = dt.timedelta(minutes=1)

Doc = dict[str, object]


def _positions(t: dt.datetime) -> Doc:
    return {"kind": "positions", "ts": t.isoformat(), "cards": [CARD], "areas": [AREA],
            "stations": [STATION], "in_mine": [1]}  # fmt: skip


def _heartbeats(t: dt.datetime) -> Doc:
    return {"kind": "heartbeats", "ts": t.isoformat(), "cameras": ["V-FACE"], "online": [True]}


def _device_status(t: dt.datetime) -> Doc:
    return {"kind": "device_status", "ts": t.isoformat(), "devices": ["C1"], "online": [True]}


#: kind -> (topic, the table its rows go to, the message's body at a time)
KINDS: dict[str, tuple[str, str, Callable[[dt.datetime], Doc]]] = {
    "positions": (personnel_topic(MINE), "personnel_positions", _positions),
    "heartbeats": (video_topic(MINE), "video_heartbeats", _heartbeats),
    "device_status": (comms_topic(MINE), "comms_status_reports", _device_status),
}


class Publisher:
    """One system of the mine: messages numbered (boot, seq), one row each at its own time."""

    def __init__(self, client: aiomqtt.Client, kind: str, start: dt.datetime) -> None:
        self.client = client
        self.topic, self.table, self.body = KINDS[kind]
        self.start = start

    def message(self, boot: int, seq: int) -> bytes:
        at = self.start + dt.timedelta(seconds=boot % 1_000 * 30, milliseconds=seq)
        doc = {"v": 1, "mine": MINE, "system": "sys", "boot": boot, "seq": seq, **self.body(at)}
        return orjson.dumps(doc)

    async def send(self, *marks: tuple[int, int]) -> None:
        for boot, seq in marks:
            await self.client.publish(self.topic, self.message(boot, seq), qos=1)


def _top(database_url: str, source: str) -> tuple[int, int] | None:
    row = scalar(database_url, "SELECT array[boot, seq] FROM source_watermarks WHERE source = %s",
                 (source,))  # fmt: skip
    return None if row is None else (int(row[0]), int(row[1]))  # type: ignore[index]


def _rows(database_url: str, table: str) -> tuple[int, int]:
    """The rows of the mine in ``table`` and how many of them are stored more than once."""
    row = scalar(database_url, f"SELECT array[count(*), count(*) - count(DISTINCT time)] "
                 f"FROM {table} WHERE mine_code = %s", (MINE,))  # fmt: skip
    return int(row[0]), int(row[1])  # type: ignore[index]


@pytest.mark.parametrize("kind", list(KINDS))
async def test_a_late_message_of_a_boot_no_longer_remembered_is_stored_once(
    database_url: str, mqtt_url: str, unique_id: str, kind: str
) -> None:
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=2)
    sent = [(1_000 + b, s) for b in range(BOOTS) for s in range(1, SEQS + 1)]
    late = (1_003, 2)  # overtaken by more than MAX_EARLIER boots
    marker = (1_000 + BOOTS, 1)  # a new boot after the late ones: all before it are done
    host, port = broker_address(mqtt_url)
    source = f"{MINE}/{KINDS[kind][0].rsplit('/', 1)[1]}/sys"
    async with (
        running_feeds(database_url, mqtt_url, f"feeds-{unique_id}") as feeds,
        aiomqtt.Client(host, port, identifier=f"pub-{unique_id}") as client,
    ):
        system = Publisher(client, kind, start)
        await system.send(*(m for m in sent if m != late))
        await eventually(lambda: _top(database_url, source) == sent[-1])
        duplicates = feeds.writer.duplicates
        # the late one (twice), and redeliveries of messages stored long before
        await system.send(late, late, (1_003, 1), (1_005, 2), marker)
        await eventually(lambda: _top(database_url, source) == marker)
        await system.send(late, (marker[0], 2))  # the late one again: stored now
        await eventually(lambda: _top(database_url, source) == (marker[0], 2))
        assert feeds.writer.duplicates - duplicates == 4
    assert _rows(database_url, system.table) == (len(sent) + 2, 0)


async def test_messages_skipped_by_a_jump_longer_than_the_holes_kept_are_stored_once(
    database_url: str, mqtt_url: str, unique_id: str
) -> None:
    """A personnel system's seq jumps by more than :data:`MAX_MISSING`; the skipped messages
    come late (the oldest: their holes are not kept), then again."""
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=2)
    jump = 2 * MAX_MISSING
    source = f"{MINE}/personnel/sys"
    host, port = broker_address(mqtt_url)
    async with (
        running_feeds(database_url, mqtt_url, f"feeds-{unique_id}") as feeds,
        aiomqtt.Client(host, port, identifier=f"pub-{unique_id}") as client,
    ):
        system = Publisher(client, "positions", start)
        await system.send((7, 1), (7, 2), (7, jump))
        await eventually(lambda: _top(database_url, source) == (7, jump))
        duplicates = feeds.writer.duplicates
        late = [(7, 3), (7, 4), (7, MAX_MISSING // 2), (7, jump - 1)]  # the last: a hole kept
        await system.send(*late, (7, 2), (7, jump + 1))  # and a redelivery
        await eventually(lambda: _top(database_url, source) == (7, jump + 1))
        await system.send(*late, (7, jump + 2))  # all redeliveries now
        await eventually(lambda: _top(database_url, source) == (7, jump + 2))
        assert feeds.writer.duplicates - duplicates == 1 + len(late)
    assert _rows(database_url, system.table) == (3 + len(late) + 2, 0)


async def test_a_snapshot_the_mark_cannot_tell_about_is_applied_unless_a_newer_one_was(
    database_url: str,
) -> None:
    """A snapshot stores no row of its own: "stored" is a snapshot of its mine applied at or
    after its time (what the presence tracker would ignore anyway as stale)."""
    t = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)

    def snapshot(seq: int, at: dt.datetime) -> FeedBatch:
        doc = {"v": 1, "mine": MINE, "system": "sys", "boot": 3, "seq": seq, "kind": "snapshot",
               "ts": at.isoformat(), "cards": [CARD], "areas": [AREA], "stations": [STATION],
               "in_mine": [1], "mine_entered_at": [t.isoformat()]}  # fmt: skip
        batch = parse_feed_message(personnel_topic(MINE), orjson.dumps(doc), 1 << 20)
        assert isinstance(batch, FeedBatch), batch
        return batch

    async with FeedWriter(database_url, 60.0) as writer:
        for batches in ([snapshot(5, t)], [snapshot(1, t - MINUTE), snapshot(2, t + MINUTE)]):
            pending = FeedPending()  # seqs 1 and 2: before the source's first, UNKNOWN
            for batch in batches:
                assert writer.accepts(pending, batch)
                pending.add(batch, [])
                pending.acks.append(lambda: None)
            await writer.flush(pending, datetime_to_us(t + 2 * MINUTE))
        assert writer.duplicates == 1  # seq 1: older than the snapshot applied
    applied = scalar(database_url, "SELECT snapshot_at FROM personnel_feed_state "
                     "WHERE mine_code = %s", (MINE,))  # fmt: skip
    assert applied == t + MINUTE

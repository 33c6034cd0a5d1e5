"""Personnel alarms stored by the feed writer in the transaction of the positions they derive
from (real TimescaleDB): each rule raises once and clears once, exactly-at-limit is not an
alarm, a repeated snapshot raises nothing twice, the clock raises overtime without a message,
and every raise and clear is a notification on the alarm channel."""

from __future__ import annotations

import datetime as dt

import orjson
import psycopg
import pytest

from minewatch.alarms.rules.personnel import (
    AREA_OVERCROWDING,
    LEADER_ABSENT,
    MINE_OVERCROWDING,
    OVERTIME,
    RESTRICTED_AREA,
    SOS,
)
from minewatch.alarms.store import ALARM_CHANNEL, load_engine_state
from minewatch.ingest.feeds.writer import FeedPending, FeedWriter
from minewatch.ingest.sources.national.personnel import ryqj_batch
from minewatch.national import FileType, Header, ParsedFile, RyqjRecord, encode_file, parse_file
from minewatch.simulators.personnel import CST
from tests.helpers import scalar
from tests.personnel.scenario import (
    FACE,
    GOAF,
    HOUR,
    LEADER,
    MINE,
    MINUTE,
    SHAFT,
    Feed,
    card,
    day0,
    episodes,
    meta,
)

pytestmark = pytest.mark.anyio

US = 1_000_000


async def _writer(database_url: str, t: int, **limits: object) -> FeedWriter:
    writer = FeedWriter(database_url, 90.0)
    await writer.__aenter__()
    await writer.apply_meta(meta(t - HOUR, limits or None))
    return writer


async def test_overtime_raises_after_the_limit_not_at_it_and_clears_at_the_exit(
    database_url: str,
) -> None:
    t0 = day0()
    writer = await _writer(database_url, t0, max_underground_h=8)
    feed = Feed(writer)
    try:
        await feed.positions(t0, [(1, SHAFT), (2, SHAFT)])
        await feed.positions(t0 + 8 * HOUR, [(1, FACE), (2, FACE)])  # exactly 8 h: not over
        assert episodes(database_url) == []
        await feed.positions(t0 + 8 * HOUR + 1, [(1, FACE), (2, FACE)])
        await feed.positions(t0 + 8 * HOUR + MINUTE, [(1, FACE), (2, FACE)])  # still: no new
        await feed.positions(t0 + 9 * HOUR, [(2, FACE)], out=(1,))
        await feed.positions(t0 + 9 * HOUR + MINUTE, [], out=(2,))
    finally:
        await writer.__aexit__(None, None, None)
    limit = t0 + 8 * HOUR
    assert episodes(database_url) == [
        ("person", card(1), OVERTIME, limit, t0 + 9 * HOUR),
        ("person", card(2), OVERTIME, limit, t0 + 9 * HOUR + MINUTE),
    ]
    row = scalar(database_url, "SELECT row(threshold, abnormal_type, classification, state, "
                 "point_id) FROM alarms LIMIT 1")  # fmt: skip
    assert row == ("8", "P01", "exceedance", "cleared", None)


async def test_the_clock_raises_overtime_while_nobody_reports(database_url: str) -> None:
    t0 = day0()
    writer = await _writer(database_url, t0, max_underground_h=8)
    feed = Feed(writer)
    try:
        await feed.positions(t0, [(1, FACE)])
        await writer.tick(t0 + 8 * HOUR)  # at the limit: not yet
        assert episodes(database_url) == []
        await writer.tick(t0 + 8 * HOUR + 30 * US)
        await writer.tick(t0 + 8 * HOUR + 60 * US)  # still over: nothing new
        # A message stamped before the clock's time (data lags the clock): still open.
        await feed.positions(t0 + 8 * HOUR - 10 * US, [(1, FACE)])
        assert episodes(database_url) == [("person", card(1), OVERTIME, t0 + 8 * HOUR, None)]
    finally:
        await writer.__aexit__(None, None, None)
    # A restarted writer knows the open episode: its next message closes it, once.
    writer = FeedWriter(database_url, 90.0)
    async with writer:
        feed.writer = writer
        await feed.positions(t0 + 9 * HOUR, [], out=(1,))
    assert episodes(database_url) == [("person", card(1), OVERTIME, t0 + 8 * HOUR, t0 + 9 * HOUR)]


async def test_area_and_mine_overcrowding_raise_above_the_quota_once_despite_repeats(
    database_url: str,
) -> None:
    t0 = day0()
    writer = await _writer(database_url, t0, max_underground_people=3)
    feed = Feed(writer)
    try:
        # Two at the face (核定 2) and one at the shaft: both exactly at their limits.
        at_limit = [(1, FACE, t0), (2, FACE, t0), (3, SHAFT, t0)]
        await feed.snapshot(t0 + MINUTE, at_limit)
        assert episodes(database_url) == []
        # A third at the face (arrived at +3 min) and a fourth underground.
        over = [*at_limit, (4, FACE, t0 + 3 * MINUTE)]
        for k in range(5, 8):  # the same list, three more times: nothing new
            await feed.snapshot(t0 + k * MINUTE, over)
        await feed.snapshot(t0 + 10 * MINUTE, at_limit)  # card 4 gone
    finally:
        await writer.__aexit__(None, None, None)
    assert episodes(database_url) == [
        ("area", FACE, AREA_OVERCROWDING, t0 + 3 * MINUTE, t0 + 10 * MINUTE),
        ("mine", MINE, MINE_OVERCROWDING, t0 + 3 * MINUTE, t0 + 10 * MINUTE),
    ]
    assert scalar(database_url, "SELECT array_agg(row(start_value, max_value, threshold) "
                  "ORDER BY id)::text FROM alarms") == '{"(3,3,2)","(4,4,3)"}'  # fmt: skip


async def test_restricted_area_entry_lasts_from_entering_to_leaving_the_area(
    database_url: str,
) -> None:
    t0 = day0()
    writer = await _writer(database_url, t0)
    feed = Feed(writer)
    try:
        await feed.positions(t0, [(1, FACE), (2, FACE)])
        await feed.positions(t0 + 5 * MINUTE, [(1, GOAF), (2, FACE)])
        await feed.positions(t0 + 6 * MINUTE, [(1, GOAF), (2, FACE)])
        await feed.positions(t0 + 9 * MINUTE, [(1, FACE), (2, FACE)])
    finally:
        await writer.__aexit__(None, None, None)
    # One episode, and no 区域超员 for the restricted area although its 核定人数 is 0.
    assert episodes(database_url) == [
        ("person", card(1), RESTRICTED_AREA, t0 + 5 * MINUTE, t0 + 9 * MINUTE)
    ]


async def test_sos_is_raised_and_cleared_by_the_card_and_notified(database_url: str) -> None:
    t0 = day0()
    writer = await _writer(database_url, t0)
    feed = Feed(writer)
    notes: list[dict[str, object]] = []
    try:
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as ear:
            await ear.execute(f"LISTEN {ALARM_CHANNEL}")
            await feed.positions(t0, [(1, FACE), (2, FACE)], sos={1: False})
            await feed.positions(t0 + MINUTE, [(1, FACE), (2, FACE)], sos={1: True})
            await feed.positions(t0 + 2 * MINUTE, [(1, FACE), (2, FACE)], sos={1: True})
            await feed.positions(t0 + 3 * MINUTE, [(1, FACE), (2, FACE)])  # not reported
            await feed.positions(t0 + 4 * MINUTE, [(1, FACE), (2, FACE)], sos={1: False})
            # Card 2 calls and is carried out: the exit ends the call.
            await feed.positions(t0 + 5 * MINUTE, [(2, FACE)], sos={2: True})
            await feed.positions(t0 + 8 * MINUTE, [], out=(2,))
            async for note in ear.notifies(timeout=0.5):
                notes.append(orjson.loads(note.payload))
    finally:
        await writer.__aexit__(None, None, None)
    assert episodes(database_url) == [
        ("person", card(1), SOS, t0 + MINUTE, t0 + 4 * MINUTE),
        ("person", card(2), SOS, t0 + 5 * MINUTE, t0 + 8 * MINUTE),
    ]
    assert [(n["subject_code"], n["event"]) for n in notes] == [
        (card(1), "raised"), (card(1), "cleared"), (card(2), "raised"), (card(2), "cleared"),
    ]  # fmt: skip
    first = notes[0]
    assert {k: first[k] for k in ("mine", "rule", "subject_kind", "abnormal_type", "category",
                                  "classification", "point")} == {
        "mine": MINE, "rule": SOS, "subject_kind": "person", "abnormal_type": "P05",
        "category": "personnel", "classification": "distress", "point": None,
    }  # fmt: skip
    assert {"id", "time", "value", "raised_at"} <= set(first)


async def test_a_shift_without_its_own_leader_underground_is_an_alarm(database_url: str) -> None:
    t0 = day0()
    writer = await _writer(database_url, t0, shift_starts=[0, 8, 16])
    feed = Feed(writer)
    try:
        # The 8点班 goes down at 07:30 without its leader; the leader follows at 07:40.
        await feed.positions(t0 + 7 * HOUR + 30 * MINUTE, [(1, SHAFT), (2, SHAFT)])
        await feed.positions(t0 + 7 * HOUR + 40 * MINUTE, [(1, FACE), (2, FACE), (LEADER, SHAFT)])
        # The leader comes up at 14:00; the workers stay until 15:30. He goes down again at
        # 15:20, for the 4点班: that does not cover the 8点班's workers.
        await feed.positions(t0 + 14 * HOUR, [(1, FACE), (2, FACE)], out=(LEADER,))
        await feed.positions(t0 + 15 * HOUR + 20 * MINUTE, [(1, FACE), (2, FACE), (LEADER, SHAFT)])
        await feed.positions(t0 + 15 * HOUR + 30 * MINUTE, [(LEADER, SHAFT)], out=(1, 2))
    finally:
        await writer.__aexit__(None, None, None)
    assert episodes(database_url) == [
        ("mine", MINE, LEADER_ABSENT, t0 + 7 * HOUR + 30 * MINUTE, t0 + 7 * HOUR + 40 * MINUTE),
        ("mine", MINE, LEADER_ABSENT, t0 + 14 * HOUR, t0 + 15 * HOUR + 30 * MINUTE),
    ]


async def test_limits_are_data_a_mine_without_them_has_no_such_alarms(database_url: str) -> None:
    t0 = day0()
    writer = await _writer(database_url, t0)  # no limits: overtime, mine quota, shifts off
    feed = Feed(writer)
    try:
        await feed.positions(t0, [(1, FACE)])
        await feed.positions(t0 + 30 * HOUR, [(1, FACE)])
        await writer.tick(t0 + 31 * HOUR)
        assert episodes(database_url) == []
        with psycopg.connect(database_url) as conn:  # set in the database: the next tick
            conn.execute("UPDATE mines SET max_underground_h = 12 WHERE code = %s", (MINE,))
        await writer.tick(t0 + 32 * HOUR)
    finally:
        await writer.__aexit__(None, None, None)
    assert episodes(database_url) == [("person", card(1), OVERTIME, t0 + 12 * HOUR, None)]


async def test_the_gas_engine_restores_with_open_subject_alarms(database_url: str) -> None:
    t0 = day0()
    writer = await _writer(database_url, t0)
    try:
        await Feed(writer).positions(t0, [(1, GOAF)])  # an open 限制区域 episode
    finally:
        await writer.__aexit__(None, None, None)
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        open_episodes, _ = await load_engine_state(conn)
    assert open_episodes == []


async def test_an_ryqj_file_raises_and_clears_the_sos_of_its_record(database_url: str) -> None:
    t0 = day0()

    def stamp(us: int) -> dt.datetime:
        return dt.datetime.fromtimestamp(us / US, CST)

    record = RyqjRecord(
        card_code=card(1), name="工人1", sos_start=stamp(t0 + MINUTE),
        sos_end=stamp(t0 + 6 * MINUTE), in_time=stamp(t0), area_code=FACE,
        area_time=stamp(t0), station_code=f"{FACE}000001", station_time=stamp(t0),
        data_time=stamp(t0 + 7 * MINUTE),
    )  # fmt: skip
    name, data = encode_file(Header(FileType.RYQJ, MINE, "告警测试矿", stamp(t0 + 7 * MINUTE)),
                             [record])  # fmt: skip
    parsed = parse_file(name, data)
    assert isinstance(parsed, ParsedFile) and not parsed.problems
    writer = await _writer(database_url, t0)
    try:
        pending = FeedPending()
        batch = ryqj_batch(parsed)
        assert writer.accepts(pending, batch)
        pending.batches.append(batch)
        pending.acks.append(lambda: None)
        await writer.flush(pending, t0 + 7 * MINUTE)
    finally:
        await writer.__aexit__(None, None, None)
    assert episodes(database_url) == [("person", card(1), SOS, t0 + MINUTE, t0 + 6 * MINUTE)]

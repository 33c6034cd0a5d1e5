"""Each point's newest reading (``point_latest``, migration 0029): kept by the gateway's write
path and read by the console's overviews instead of probing ``readings`` per point."""

from __future__ import annotations

import datetime as dt

import numpy as np
import orjson
import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minewatch.api import inspection_repository, report_repository
from minewatch.batch import ReadingBatch
from minewatch.feeds import safety_topic
from minewatch.ingest.contract import SafetyMessage, parse_message
from minewatch.ingest.metrics import GatewayMetrics
from minewatch.ingest.repository import newest_per_point
from minewatch.ingest.sources.replay.adapter import TraceReplaySource
from minewatch.ingest.time_limits import TimeLimits
from minewatch.ingest.writer import BatchWriter, PendingWrite
from minewatch.metadata import MineDefinition, upsert_mine
from minewatch.simulators.config import example_mine_path, load_mine_config
from minewatch.simulators.model import SimulatedMine
from minewatch.trace import Trace
from tests.helpers import scalar
from tests.ingest.test_replay import _replay, trace  # noqa: F401 (trace: a fixture)

pytestmark = pytest.mark.anyio

_NEWEST_PER_POINT = (
    "SELECT DISTINCT ON (point_id) point_id, time, value, status FROM readings "
    "ORDER BY point_id, time DESC"
)
_NEWEST_PER_MINE = (
    "SELECT p.mine_code, max(r.time) FROM readings r JOIN points p ON p.id = r.point_id GROUP BY 1"
)


def _definition() -> MineDefinition:
    return SimulatedMine(load_mine_config(example_mine_path("small"))).definition


def _message(
    definition: MineDefinition, substation: str, seq: int, at: dt.datetime, value: float
) -> SafetyMessage:
    mine = definition.mine.code
    points = [p.code for p in definition.points if p.substation == substation]
    payload = {
        "v": 1, "mine": mine, "substation": substation, "boot": 1, "seq": seq,
        "ts": at.isoformat(), "points": points,
        "values": [value + i / 100 for i in range(len(points))], "status": [seq] * len(points),
    }  # fmt: skip
    message = parse_message(safety_topic(mine, substation), orjson.dumps(payload), 1 << 20)
    assert isinstance(message, SafetyMessage)
    return message


async def _assert_overviews_follow_readings(database_url: str) -> None:
    """The overviews' newest times (and the mine overview's values) are the readings' own."""
    with psycopg.connect(database_url) as conn:
        per_mine = dict(conn.execute(_NEWEST_PER_MINE).fetchall())
        per_point = {row[0]: row[1:] for row in conn.execute(_NEWEST_PER_POINT)}
    assert per_mine  # something was stored
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        overview = await report_repository.mines_overview(conn, None)
        assert {r["code"]: r["last_data_at"] for r in overview if r["last_data_at"]} == per_mine
        for mine in per_mine:
            board = await report_repository.latest_readings(conn, str(mine))
            shown = {r["id"]: (r["time"], r["value"], r["status"]) for r in board if r["time"]}
            assert shown == {p: v for p, v in per_point.items() if p in {r["id"] for r in board}}
        safety, _ = await inspection_repository.system_now(conn, "safety", None, None, 60.0)
    # the six-system check's safety column: the newest of the mine's non-output points
    with psycopg.connect(database_url) as conn:
        expected = dict(conn.execute(
            "SELECT p.mine_code, max(r.time) FROM readings r JOIN points p ON p.id = r.point_id "
            "WHERE p.sensor_type <> '3001' GROUP BY 1"
        ).fetchall())  # fmt: skip
    assert safety == expected


async def test_live_late_and_replayed_writes_keep_each_points_newest_reading(
    database_url: str,
) -> None:
    """Live readings move each point's newest forward; a late message (older event time,
    later sequence number) and a replayed old stretch from another source leave it."""
    definition = _definition()
    with psycopg.connect(database_url) as conn:
        upsert_mine(conn, definition)
    now = dt.datetime.now(dt.UTC).replace(microsecond=123_456)
    limits = TimeLimits(300_000_000, 86_400_000_000)
    async with BatchWriter(database_url, GatewayMetrics(), 30.0, limits) as writer:

        async def write(*messages: SafetyMessage) -> None:
            pending = PendingWrite(acks=[lambda: None])
            for message in messages:
                assert writer.accepts(pending, message)
                pending.messages.append(message)
                pending.readings += len(message)
            await writer.flush(pending)

        newer = _message(definition, "001", 1, now, 0.40)
        older = _message(definition, "001", 2, now - dt.timedelta(seconds=10), 0.30)
        # one batch holding both: each point's newer reading wins, not the batch's last
        await write(newer, older)
        await _assert_overviews_follow_readings(database_url)
        late = _message(definition, "001", 3, now - dt.timedelta(minutes=10), 0.90)
        await write(late)  # stored, flagged late; older than what the points show
        other = _message(definition, "002", 1, now - dt.timedelta(hours=2), 0.50)
        await write(other)  # the other substation's first (old) readings
        replayed = [_message(definition, "002", s, now - dt.timedelta(hours=3, seconds=s), 0.7)
                    for s in range(2, 5)]  # fmt: skip
        await write(*replayed)  # a bridge resending an older stretch
    assert scalar(database_url, "SELECT count(*) FROM readings WHERE value >= 0.9") > 0
    await _assert_overviews_follow_readings(database_url)
    with psycopg.connect(database_url) as conn:
        shown = conn.execute("SELECT min(time), max(time) FROM point_latest p "
                             "JOIN points q ON q.id = p.point_id WHERE q.substation_code = '001'"
                             ).fetchone()  # fmt: skip
    assert shown == (now, now)


async def test_a_replayed_trace_through_the_gateway_keeps_each_points_newest_reading(
    database_url: str,
    mqtt_url: str,
    unique_id: str,
    trace: Trace,  # noqa: F811
) -> None:
    """The replay source goes through the same writer: the overviews follow its readings."""
    await _replay(database_url, mqtt_url, f"gw-{unique_id}",
                  TraceReplaySource(trace, speed=None, message_readings=1000))  # fmt: skip
    assert scalar(database_url, "SELECT count(*) FROM point_latest") > 0
    await _assert_overviews_follow_readings(database_url)


def test_the_migration_fills_point_latest_from_existing_readings(database_url: str) -> None:
    """refresh_point_latest() (run by migration 0029) finds each point's newest reading across
    chunks, and only ever moves a row forward."""
    with psycopg.connect(database_url) as conn:
        upsert_mine(conn, _definition())
        ids = [row[0] for row in conn.execute("SELECT id FROM points ORDER BY id LIMIT 6")]
        # readings spread over several daily chunks, the newest not the last inserted
        conn.execute(
            "INSERT INTO readings (time, point_id, value, status) "
            "SELECT now() - make_interval(days => d, secs => p), p, d * 10 + p, d "
            "FROM unnest(%s::int[]) p, generate_series(0, 4) d "
            "WHERE NOT (p = %s AND d < 3)", (ids, ids[0]),
        )  # fmt: skip
        # newer than any reading of its point: stays
        conn.execute("INSERT INTO point_latest VALUES (%s, now() + interval '1 day', -1, 0)",
                     (ids[1],))  # fmt: skip
        filled = conn.execute("SELECT refresh_point_latest()").fetchone()
        assert filled == (len(ids) - 1,)
        rows = dict(conn.execute("SELECT point_id, value FROM point_latest").fetchall())
        conn.commit()
    assert rows == {ids[0]: 3 * 10 + ids[0], ids[1]: -1, **{p: float(p) for p in ids[2:]}}


@given(st.lists(st.tuples(st.integers(1, 5), st.integers(0, 20)), min_size=1, max_size=60))
def test_newest_per_point_picks_each_points_newest_reading(rows: list[tuple[int, int]]) -> None:
    points = np.array([p for p, _ in rows], dtype=np.int32)
    times = np.array([t for _, t in rows], dtype=np.int64)
    batch = ReadingBatch(times, points, np.arange(len(rows), dtype=np.float64),
                         np.zeros(len(rows), np.int16), np.zeros(len(rows), np.int16))  # fmt: skip
    newest = newest_per_point(batch)
    expected: dict[int, tuple[int, int]] = {}
    for i, (p, t) in enumerate(rows):  # the newest; of equal times, the last in the batch
        if p not in expected or t >= expected[p][0]:
            expected[p] = (t, i)
    assert list(points[newest]) == sorted(expected)
    assert {int(points[i]): (int(times[i]), int(i)) for i in newest} == expected


def test_the_fill_probes_each_point_by_its_index_on_a_chunk_dominated_by_one_point(
    database_url: str,
) -> None:
    """The statistics that made the per-point probe read whole chunks (one point filling a
    day's chunk, analysed): the fill's statements still probe every point through the
    (point_id, time) index, never through a chunk's time index (plans from auto_explain;
    with one shared plan for every point, all of them went through the time index)."""
    plans: list[str] = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        upsert_mine(conn, _definition())
        first = conn.execute("SELECT min(id) FROM points").fetchone()
        assert first is not None
        conn.execute(
            "INSERT INTO readings (time, point_id, value) SELECT date_trunc('day', now()) "
            "- interval '1 day' + s * interval '1 s', %s, 0.3 FROM generate_series(0, 86399) s",
            (first[0],),
        )
        conn.execute("ANALYZE readings")
        conn.add_notice_handler(lambda d: plans.append(d.message_primary or ""))
        conn.execute("LOAD 'auto_explain'")
        for setting in ("auto_explain.log_min_duration = 0", "auto_explain.log_nested_statements"
                        " = on", "client_min_messages = log"):  # fmt: skip
            conn.execute(f"SET {setting}")
        assert conn.execute("SELECT refresh_point_latest()").fetchone() == (1,)
        assert conn.execute("SELECT point_id FROM point_latest").fetchall() == [first]
    probes = [p for p in plans if "INSERT INTO point_latest" in p]
    points = scalar(database_url, "SELECT count(*) FROM points")
    assert len(probes) == points
    others = [p for p in probes if f"point_id = '{first[0]}'" not in p]
    assert len(others) == points - 1  # (the one point filling the chunk finds its row first
    # through either index)
    assert all("readings_point_time_idx" in p and "readings_time_idx" not in p for p in others)

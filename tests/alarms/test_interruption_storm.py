"""An interruption storm (issue 14, session 7): every point of a mine falls silent in one tick.

Stored into a real migrated TimescaleDB the way the gateway's tick stores it: one per-point
``data_interruption`` record each (the regulation counts them per point), one incident per
substation for the dispatcher (``SUBSTATION_RULES``), and the whole storm in a few statements,
whatever the number of points (counted in libpq's trace of the connection, not timed).
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import orjson
import psycopg
import pytest

from minewatch.alarms.engine import AlarmEngine
from minewatch.alarms.rules.params import RuleDefaults
from minewatch.alarms.store import ALARM_CHANNEL, write_changes
from minewatch.batch import ReadingBatch
from minewatch.metadata import (
    MineDefinition,
    MineInfo,
    PointDefinition,
    SubstationDefinition,
    upsert_mine,
)
from minewatch.registry import load_registry
from minewatch.timeutil import us_to_datetime
from tests.alarms.helpers import MINE, T0, S

pytestmark = pytest.mark.anyio

#: a whole write of the storm, or of its end: a few statements per table, whatever its size
STATEMENTS_AT_MOST = 12


@contextlib.contextmanager
def traced(conn: psycopg.AsyncConnection, path: Path) -> Iterator[Callable[[], int]]:
    """Within: libpq traces ``conn`` into ``path``; yields the count of the statements sent so
    far (``Query`` and ``Execute`` messages)."""
    with path.open("w") as file:
        conn.pgconn.trace(file.fileno())
        conn.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)

        def count() -> int:
            file.flush()
            return sum(1 for line in path.read_text().splitlines() if _sent_statement(line))

        try:
            yield count
        finally:
            conn.pgconn.untrace()


def _sent_statement(line: str) -> bool:
    parts = line.split("\t")
    return parts[0] == "F" and len(parts) > 2 and parts[2].split(" ")[0] in ("Query", "Execute")


def _define(url: str, stations: dict[str, int]) -> dict[str, list[int]]:
    """A mine with ``stations`` (code: number of points); the point ids of each."""
    definition = MineDefinition(
        mine=MineInfo(code=MINE, name="storm"),
        substations=tuple(SubstationDefinition(code=code) for code in stations),
        points=tuple(
            PointDefinition(code=f"T{code}{k:04d}", substation=code, sensor_type="0004",
                            poll_cycle_s=1.0)
            for code, n in stations.items() for k in range(n)
        ),
    )  # fmt: skip
    with psycopg.connect(url) as conn:
        upsert_mine(conn, definition)
        rows = conn.execute("SELECT substation_code, id FROM points ORDER BY id").fetchall()
    out: dict[str, list[int]] = {code: [] for code in stations}
    for code, point in rows:
        out[str(code)].append(int(point))
    return out


def _readings(points: list[int], t_us: int) -> ReadingBatch:
    n = len(points)
    return ReadingBatch(np.full(n, t_us, np.int64), np.asarray(points, np.int32),
                        np.full(n, 20.0), np.zeros(n, np.int16), np.zeros(n, np.int16))  # fmt: skip


async def _store(
    url: str, engine: AlarmEngine, trace: Path, batch: ReadingBatch | None = None,
    now_us: int = 0,
) -> tuple[int, list[dict[str, object]]]:  # fmt: skip
    """Evaluate a batch (or tick at ``now_us``), store its changes in one transaction and
    commit: (the statements that took, the notifications)."""
    evaluation = engine.evaluate(batch) if batch is not None else engine.tick(now_us)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as listener:
        await listener.execute(f"LISTEN {ALARM_CHANNEL}")
        async with await psycopg.AsyncConnection.connect(url) as conn:
            with traced(conn, trace) as statements:
                async with conn.transaction(), conn.cursor() as cur:
                    await write_changes(
                        cur, evaluation.changes, engine.registry, evaluation.incidents
                    )
                sent = statements() - 2  # less BEGIN and COMMIT
        engine.commit(evaluation)
        notes = [orjson.loads(n.payload) async for n in listener.notifies(timeout=1.0)]
    return sent, notes


def _engine(url: str) -> AlarmEngine:
    with psycopg.connect(url) as conn:
        return AlarmEngine(load_registry(conn), RuleDefaults(allowed_lateness_s=0.0))


async def test_a_storm_of_thousands_of_interruptions_is_written_in_a_few_statements(
    database_url: str, tmp_path: Path
) -> None:
    stations = {f"{k:03d}": 300 for k in range(1, 11)}  # 3,000 points
    points = _define(database_url, stations)
    every = [p for ids in points.values() for p in ids]
    engine = _engine(database_url)
    await _store(database_url, engine, tmp_path / "0.txt", _readings(every, T0))

    sent, notes = await _store(database_url, engine, tmp_path / "1.txt", now_us=T0 + 60 * S)
    assert sent <= STATEMENTS_AT_MOST  # main: one INSERT, member and NOTIFY per alarm (9,000+)
    kinds = Counter((n.get("kind", "alarm"), n["event"]) for n in notes)
    assert kinds == {("alarm", "raised"): 3000, ("incident", "opened"): 10}
    with psycopg.connect(database_url) as conn:
        per_incident = conn.execute(
            "SELECT i.root_rule, count(*), count(DISTINCT p.substation_code) FROM incidents i "
            "JOIN incident_members m ON m.incident_id = i.id JOIN alarms a ON a.id = m.alarm_id "
            "JOIN points p ON p.id = a.point_id "
            "GROUP BY i.id, i.root_rule"
        ).fetchall()
        changes = conn.execute("SELECT count(*) FROM alarm_changes").fetchone()
    assert sorted(per_incident) == [("data_interruption", 300, 1)] * 10
    assert changes == (3010,)

    # the points report again: every record ends, every incident is updated, a few statements
    sent, notes = await _store(
        database_url, engine, tmp_path / "2.txt", _readings(every, T0 + 61 * S)
    )
    assert sent <= STATEMENTS_AT_MOST
    kinds = Counter((n.get("kind", "alarm"), n["event"]) for n in notes)
    assert kinds == {("alarm", "cleared"): 3000, ("incident", "updated"): 10}
    with psycopg.connect(database_url) as conn:
        open_ = conn.execute("SELECT count(*) FROM alarms WHERE ended_at IS NULL").fetchone()
        ended = conn.execute(
            "SELECT count(*) FROM alarms WHERE ended_at = %s", (us_to_datetime(T0 + 61 * S),)
        ).fetchone()
    assert open_ == (0,) and ended == (3000,)  # each ends at its point's next reading (T0+61s)


async def test_a_silent_substation_is_one_incident_of_per_point_records_a_silent_point_its_own(
    database_url: str, tmp_path: Path
) -> None:
    points = _define(database_url, {"001": 40, "002": 5})
    whole, other = points["001"], points["002"]
    engine = _engine(database_url)
    await _store(database_url, engine, tmp_path / "0.txt", _readings(whole + other, T0))
    # substation 001 falls silent; of 002, one point only (the others report each second)
    for k in range(1, 6):
        await _store(database_url, engine, tmp_path / "1.txt", _readings(other[1:], T0 + k * S))
    _, notes = await _store(database_url, engine, tmp_path / "2.txt", now_us=T0 + 6 * S)
    raised = sorted(int(str(n["point_id"])) for n in notes if n.get("event") == "raised")
    assert raised == sorted(whole + other[:1])  # one record per silent point (the regulation)
    with psycopg.connect(database_url) as conn:
        incidents = conn.execute(
            "SELECT i.root_point_id, array_agg(a.point_id ORDER BY a.point_id) FROM incidents i "
            "JOIN incident_members m ON m.incident_id = i.id JOIN alarms a ON a.id = m.alarm_id "
            "GROUP BY i.id ORDER BY i.id"
        ).fetchall()
    # the dispatcher: one incident for the substation, the single point's its own
    assert sorted(members for _, members in incidents) == [sorted(whole), other[:1]]

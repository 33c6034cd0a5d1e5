"""Incident members are written once (issue 14, session 8): a change of an incident stores the
members it added, not every member again, and a retried transaction stores them all the same.

A substation's interruption incident of many members is joined by one more silent point; the
write is captured at the cursor (the parameters of the ``incident_members`` insert), and the
database and the ``incident`` event must still hold every member.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import orjson
import psycopg
import pytest

from minewatch.alarms.engine import AlarmEngine, Evaluation
from minewatch.alarms.store import ALARM_CHANNEL, write_changes
from tests.alarms.helpers import T0, S
from tests.alarms.test_interruption_storm import _define, _engine, _readings, _store

pytestmark = pytest.mark.anyio

POINTS = 40


class Recording:
    """A cursor that keeps the parameters of every statement it is given."""

    def __init__(self, cur: psycopg.AsyncCursor) -> None:
        self._cur = cur
        self.sent: list[tuple[str, Any]] = []

    async def execute(self, query: Any, params: Any = None) -> Any:
        self.sent.append((str(query), params))
        return await self._cur.execute(query, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cur, name)


def _member_rows(sent: list[tuple[str, Any]]) -> list[int]:
    """The rows each ``incident_members`` insert carried."""
    return [len(p["incident"]) for q, p in sent if "INSERT INTO incident_members" in q]


async def _one_silent_substation(url: str, tmp_path: Path) -> tuple[AlarmEngine, list[int]]:
    """Every point of a substation but the first falls silent: one incident of 39 members."""
    (points,) = _define(url, {"001": POINTS}).values()
    engine = _engine(url)
    await _store(url, engine, tmp_path / "0.txt", _readings(points, T0))
    for k in range(1, 6):  # the first point still reports; the others are silent
        await _store(url, engine, tmp_path / "0.txt", _readings(points[:1], T0 + k * S))
    await _store(url, engine, tmp_path / "1.txt", now_us=T0 + 6 * S)
    return engine, points


async def _write(url: str, evaluation: Evaluation, engine: AlarmEngine) -> Recording:
    async with (
        await psycopg.AsyncConnection.connect(url) as conn,
        conn.transaction(),
        conn.cursor() as cur,
    ):
        recording = Recording(cur)
        await write_changes(cast(psycopg.AsyncCursor, recording), evaluation.changes,
                            engine.registry, evaluation.incidents)  # fmt: skip
    return recording


def _stored_members(url: str) -> list[tuple[int, int]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT m.incident_id, count(*) FROM incident_members m GROUP BY 1 ORDER BY 1"
        ).fetchall()
    return [(int(i), int(n)) for i, n in rows]


async def test_one_more_member_of_a_large_open_incident_writes_one_member_row(
    database_url: str, tmp_path: Path
) -> None:
    engine, points = await _one_silent_substation(database_url, tmp_path)
    assert [n for _, n in _stored_members(database_url)] == [POINTS - 1]

    evaluation = engine.tick(T0 + 12 * S)  # the last point is silent too: it joins
    assert [(c.event, len(c.incident.members)) for c in evaluation.incidents] == [
        ("joined", POINTS)
    ]
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as listener:
        await listener.execute(f"LISTEN {ALARM_CHANNEL}")
        recording = await _write(database_url, evaluation, engine)
        notes = [orjson.loads(n.payload) async for n in listener.notifies(timeout=1.0)]
    engine.commit(evaluation)
    assert _member_rows(recording.sent) == [1]  # main: 40, every member again
    assert [n for _, n in _stored_members(database_url)] == [POINTS]
    (event,) = [n for n in notes if n.get("kind") == "incident"]
    assert event["event"] == "joined" and len(event["members"]) == POINTS  # the contract

    # the points report again: every member ends, the incident is updated, no member row
    evaluation = engine.evaluate(_readings(points, T0 + 13 * S))
    recording = await _write(database_url, evaluation, engine)
    engine.commit(evaluation)
    assert [c.event for c in evaluation.incidents] == ["updated"]
    assert _member_rows(recording.sent) == []


async def test_a_retried_write_of_the_same_evaluation_still_stores_its_new_members(
    database_url: str, tmp_path: Path
) -> None:
    engine, _ = await _one_silent_substation(database_url, tmp_path)
    evaluation = engine.tick(T0 + 12 * S)
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        with pytest.raises(RuntimeError):
            async with conn.transaction(), conn.cursor() as cur:
                await write_changes(cur, evaluation.changes, engine.registry,
                                    evaluation.incidents)  # fmt: skip
                raise RuntimeError("the connection broke before the commit")
    assert [n for _, n in _stored_members(database_url)] == [POINTS - 1]
    recording = await _write(database_url, evaluation, engine)  # the retry: same evaluation
    engine.commit(evaluation)
    assert _member_rows(recording.sent) == [1]
    assert [n for _, n in _stored_members(database_url)] == [POINTS]

"""Incidents stored with the alarm changes, in one transaction, and their lifecycle (issue 13)."""

from __future__ import annotations

import orjson
import psycopg
import pytest

from minewatch.alarms import lifecycle
from minewatch.alarms.engine import AlarmEngine
from minewatch.alarms.lifecycle import Action, Actor, LifecycleError, Row
from minewatch.alarms.rules.params import RuleDefaults
from minewatch.alarms.store import (
    ALARM_CHANNEL,
    load_engine_state,
    load_incident_state,
    write_changes,
)
from minewatch.batch import ReadingBatch
from minewatch.metadata import (
    AirPath,
    MineDefinition,
    MineInfo,
    PointDefinition,
    SubstationDefinition,
    upsert_mine,
)
from minewatch.registry import load_registry
from tests.alarms.helpers import MINE, series

pytestmark = pytest.mark.anyio
METHANE = dict(sensor_type="0001", range_low=0.0, range_high=4.0, alarm_high=1.0,
               alarm_high_clear=1.0, poweroff_high=1.5, restore_high=1.0)  # fmt: skip


def _define(url: str) -> dict[str, int]:
    definition = MineDefinition(
        mine=MineInfo(code=MINE, name="test"),
        substations=(SubstationDefinition(code="001"),),
        points=(
            PointDefinition(code="FACE", substation="001",  # type: ignore[arg-type]
                            downstream=(AirPath(target="RETURN", delay_s=5.0),), **METHANE),
            PointDefinition(code="RETURN", substation="001", **METHANE),  # type: ignore[arg-type]
        ),
    )  # fmt: skip
    with psycopg.connect(url) as conn:
        upsert_mine(conn, definition)
        return dict(conn.execute("SELECT code, id FROM points").fetchall())


async def _write(url: str, engine: AlarmEngine, batch: ReadingBatch) -> list[dict[str, object]]:
    """Evaluate, store the changes with their incidents, commit; the notifications."""
    evaluation = engine.evaluate(batch)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as listener:
        await listener.execute(f"LISTEN {ALARM_CHANNEL}")
        async with (
            await psycopg.AsyncConnection.connect(url) as conn,
            conn.transaction(),
            conn.cursor() as cur,
        ):
            await write_changes(cur, evaluation.changes, engine.registry, evaluation.incidents)
        engine.commit(evaluation)
        return [orjson.loads(n.payload) async for n in listener.notifies(timeout=0.5)]


async def test_an_event_along_the_air_is_one_stored_incident_acknowledged_and_disposed_once(
    database_url: str,
) -> None:
    ids = _define(database_url)
    face, ret = ids["FACE"], ids["RETURN"]
    with psycopg.connect(database_url) as conn:
        registry = load_registry(conn)
    assert registry.downstream is not None
    assert registry.downstream[face] == [{"target": "RETURN", "delay_s": 5.0}]
    engine = AlarmEngine(registry, RuleDefaults(allowed_lateness_s=0.0))
    gas = [0.5, 1.1, 1.6, 1.7, 1.2, 0.5, 0.5]
    notes = await _write(database_url, engine, ReadingBatch.concat([
        series(face, gas), series(ret, [0.4] * 4 + [1.05, 1.1, 0.4], start_s=0),
    ]))  # fmt: skip
    incident_notes = [n for n in notes if n.get("kind") == "incident"]
    assert [n["event"] for n in incident_notes] == ["opened"]
    assert incident_notes[0]["grade"] == "red" and len(incident_notes[0]["members"]) == 3
    later = ReadingBatch.concat([series(face, [0.5], start_s=80), series(ret, [0.4], start_s=80)])
    notes = await _write(database_url, engine, later)  # past the off-delay: it closes
    assert [n["event"] for n in notes if n.get("kind") == "incident"] == ["closed"]
    with psycopg.connect(database_url) as conn:
        incidents = conn.execute(
            "SELECT id, root_point_id, root_rule, grade, state, ended_at IS NOT NULL, "
            "peak_value FROM incidents"
        ).fetchall()
        members = conn.execute(
            "SELECT a.point_id, a.rule FROM incident_members m JOIN alarms a ON a.id = m.alarm_id "
            "ORDER BY a.point_id, a.rule"
        ).fetchall()
    (incident_id, root, rule, grade, state, closed, peak), = incidents  # fmt: skip
    assert (root, rule, grade, state, closed, peak) == (face, "upper_alarm", "red", "cleared",
                                                        True, 1.7)  # fmt: skip
    assert members == [(face, "power_off"), (face, "upper_alarm"), (ret, "upper_alarm")]

    records: list[tuple[Action, Row, Row]] = []

    async def record(conn: psycopg.AsyncConnection, action: Action, row: Row, detail: Row) -> None:
        records.append((action, row, detail))

    dispatcher = Actor("zhang", is_person=True)
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        with pytest.raises(LifecycleError, match="acknowledged first"):
            await lifecycle.dispose_incident(conn, incident_id, dispatcher, "gas", "vent", None,
                                             record)  # fmt: skip
        await lifecycle.acknowledge_incident(conn, incident_id, dispatcher, record)
        row = await lifecycle.dispose_incident(
            conn, incident_id, dispatcher, "瓦斯涌出", "加强通风", None, record
        )
    assert row["state"] == "disposed"
    assert [a for a, _, _ in records] == [Action.ACKNOWLEDGED, Action.DISPOSED]
    assert records[1][2]["incident_id"] == incident_id and len(records[1][2]["members"]) == 3
    with psycopg.connect(database_url) as conn:
        states = conn.execute(
            "SELECT DISTINCT state, cause, measures, handled_by, acknowledged_by FROM alarms"
        ).fetchall()
    assert states == [("disposed", "瓦斯涌出", "加强通风", "zhang", "zhang")]


async def test_a_restarted_engine_continues_the_open_incident_with_the_mines_off_delay(
    database_url: str,
) -> None:
    ids = _define(database_url)
    face = ids["FACE"]
    with psycopg.connect(database_url) as conn:
        registry = load_registry(conn)
        conn.execute("UPDATE mines SET incident_off_delay_s = 10")
    engine = AlarmEngine(registry, RuleDefaults(allowed_lateness_s=0.0))
    await _write(database_url, engine, series(face, [0.5, 1.1, 1.2, 0.5]))
    restarted = AlarmEngine(registry, RuleDefaults(allowed_lateness_s=0.0))
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        restarted.restore(*await load_engine_state(conn))
        restarted.restore_incidents(*await load_incident_state(conn))
    assert restarted.incident_off_delay_s == {MINE: 10.0}
    # the gas comes back 8 s after it cleared: within the mine's 10 s, the same incident
    notes = await _write(database_url, restarted, series(face, [1.1, 1.2, 0.5], start_s=11))
    assert [n["event"] for n in notes if n.get("kind") == "incident"] == ["joined"]
    notes = await _write(database_url, restarted, series(face, [0.5], start_s=30))
    assert [n["event"] for n in notes if n.get("kind") == "incident"] == ["closed"]
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM incidents").fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM incident_members").fetchone() == (2,)

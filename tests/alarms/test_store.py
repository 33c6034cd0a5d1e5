"""Episode changes written through alarms.store into a real migrated TimescaleDB."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from minewatch.alarms.engine import AlarmEngine
from minewatch.alarms.store import ALARM_CHANNEL, load_engine_state, write_changes
from minewatch.batch import ReadingBatch
from minewatch.metadata import (
    MineDefinition,
    MineInfo,
    PointDefinition,
    Relation,
    SubstationDefinition,
    upsert_mine,
)
from minewatch.registry import load_registry
from minewatch.timeutil import us_to_datetime
from tests.alarms.helpers import MINE, T0, S, series

pytestmark = pytest.mark.anyio

TEST_GAS = [0.0, 1.2, 2.0, 2.0, 2.01, 2.0]  # from zero gas (调零), as a test begins


def _define(url: str) -> dict[str, int]:
    methane = dict(sensor_type="0001", range_low=0.0, range_high=4.0, alarm_high=1.0,
                   alarm_high_clear=1.0, poweroff_high=1.5, restore_high=1.0)  # fmt: skip
    definition = MineDefinition(
        mine=MineInfo(code=MINE, name="test"),
        substations=(SubstationDefinition(code="001"),),
        points=(
            PointDefinition(code="CH4", substation="001", **methane,  # type: ignore[arg-type]
                            relations=(Relation(kind="D", target="FEED"),)),
            PointDefinition(code="CH4B", substation="001", **methane),  # type: ignore[arg-type]
            PointDefinition(code="FEED", substation="001", sensor_type="1011"),
        ),
    )  # fmt: skip
    with psycopg.connect(url) as conn:
        upsert_mine(conn, definition)
        ids = dict(conn.execute("SELECT code, id FROM points").fetchall())
        conn.execute(
            "UPDATE points SET on_delay_s = 0, prewarn_high = 0.8, poll_cycle_s = 1, "
            "control_time_s = 2, flatline_samples = 600, calibration_gas = 2.0 WHERE code = 'CH4'"
        )
        conn.execute(
            "INSERT INTO calibrations (point_id, started_at, ended_at, declared_by) "
            "VALUES (%s, %s, %s, '调校工 张三')",
            (ids["CH4B"], us_to_datetime(T0), us_to_datetime(T0 + 600 * S)),
        )
    return ids


async def _write(url: str, engine: AlarmEngine, batch: ReadingBatch) -> list[str]:
    """Evaluate, store readings and changes in one transaction, commit; return notifications."""
    evaluation = engine.evaluate(batch)
    columns = (batch.time_us, batch.point_id, batch.value, batch.status, evaluation.flags)
    readings = [
        (us_to_datetime(int(t)), int(p), float(v), int(s), int(f))
        for t, p, v, s, f in zip(*columns, strict=True)
    ]
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as listener:
        await listener.execute(f"LISTEN {ALARM_CHANNEL}")
        async with (
            await psycopg.AsyncConnection.connect(url) as conn,
            conn.transaction(),
            conn.cursor() as cur,
        ):
            await cur.executemany(
                "INSERT INTO readings (time, point_id, value, status, flags) "
                "VALUES (%s, %s, %s, %s, %s)",
                readings,
            )
            await write_changes(cur, evaluation.changes, engine.registry)
        engine.commit(evaluation)
        notes = []
        async for note in listener.notifies(timeout=0.5):
            notes.append(note.payload)
    return notes


async def test_episodes_with_classification_are_stored_updated_and_restored(
    database_url: str,
) -> None:
    ids = _define(database_url)
    with psycopg.connect(database_url) as conn:
        registry = load_registry(conn)
    ch4, ch4b, feed = ids["CH4"], ids["CH4B"], ids["FEED"]
    assert registry.prewarn_high[ch4] == 0.8 and registry.control_time_s[ch4] == 2.0
    assert registry.relations[ch4] == [{"kind": "D", "target": "FEED", "device": ""}]
    assert registry.calibrations.point_id.tolist() == [ch4b]
    engine = AlarmEngine(registry)

    first = ReadingBatch.concat([
        series(ch4, TEST_GAS), series(ch4b, TEST_GAS), series(feed, [1] * 6),
    ])  # fmt: skip
    notes = await _write(database_url, engine, first)
    assert len(notes) == 5 and all('"event":"raised"' in n for n in notes)
    second = ReadingBatch.concat([
        series(ch4, [2.0, 0.3], start_s=6), series(ch4b, [2.0, 0.3], start_s=6),
        series(feed, [1, 1], start_s=6),
    ])  # fmt: skip
    notes = await _write(database_url, engine, second)
    assert len(notes) == 5 and all('"event":"cleared"' in n for n in notes)

    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT point_id, rule, abnormal_type, classification, state, started_at, raised_at, "
            "ended_at, value_count, max_value FROM alarms ORDER BY point_id, rule"
        ).fetchall()
    at = us_to_datetime
    assert rows == [
        # CH4: a step from 0.3 (confirmed at t=2); power-off at once (1.2 was above the
        # alarm level); a calibration shape once it ended
        (ch4, "feed_abnormal", "003", "power_off_failure", "cleared", at(T0 + 4 * S),
         at(T0 + 4 * S), at(T0 + 7 * S), 3, 2.01),
        (ch4, "power_off", "002", "calibration_undeclared", "cleared", at(T0 + 2 * S),
         at(T0 + 2 * S), at(T0 + 7 * S), 5, 2.01),
        (ch4, "upper_alarm", "001", "calibration_undeclared", "cleared", at(T0 + 1 * S),
         at(T0 + 2 * S), at(T0 + 7 * S), 6, 2.01),
        (ch4, "upper_prewarn", "009", "calibration_undeclared", "cleared", at(T0 + 1 * S),
         at(T0 + 2 * S), at(T0 + 7 * S), 6, 2.01),
        # CH4B: inside its declared window, no gas alarm
        (ch4b, "calibration", "007", "calibration_declared", "cleared", at(T0 + 1 * S),
         at(T0 + 1 * S), at(T0 + 7 * S), 6, 2.01),
    ]  # fmt: skip

    # an episode left open survives a restart of the engine
    await _write(database_url, engine, series(ch4, [0.3, 1.3, 1.4], start_s=20))
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        open_episodes, last = await load_engine_state(conn)
    assert (ch4, "upper_alarm", T0 + 21 * S) in open_episodes
    assert (ch4, T0 + 22 * S, 1.4) in last
    restarted = AlarmEngine(registry)
    restarted.restore(open_episodes, last)
    notes = await _write(database_url, restarted, series(ch4, [0.2], start_s=23))
    assert len(notes) == 2 and all('"event":"cleared"' in n for n in notes)  # alarm, pre-warning
    with psycopg.connect(database_url) as conn:
        count, ended = conn.execute(
            "SELECT value_count, ended_at FROM alarms WHERE rule = 'upper_alarm' "
            "AND started_at = %s",
            (at(T0 + 21 * S),),
        ).fetchone()  # type: ignore[misc]
    assert (count, ended) == (2, at(T0 + 23 * S))
    assert isinstance(ended, dt.datetime)


async def test_the_database_refuses_a_second_open_episode_of_a_rule(database_url: str) -> None:
    ids = _define(database_url)
    with psycopg.connect(database_url) as conn:
        engine = AlarmEngine(load_registry(conn))
    evaluation = engine.evaluate(series(ids["CH4B"], [0.3, 1.2, 1.3], start_s=1000))
    (change,) = [c for c in evaluation.changes if c.rule == "upper_alarm"]
    async with (
        await psycopg.AsyncConnection.connect(database_url) as conn,
        conn.cursor() as cur,
    ):
        await write_changes(cur, [change], engine.registry)
        with pytest.raises(psycopg.errors.UniqueViolation):
            await write_changes(cur, [change], engine.registry)

"""Remote inspection: the mine's own alarm records against minewatch's, over real HTTP."""

from __future__ import annotations

import datetime as dt

import httpx
import psycopg
import pytest

from minewatch.metadata import upsert_mine
from minewatch.simulators.config import example_mine_path, load_mine_config
from minewatch.simulators.model import SimulatedMine
from tests.helpers import running_api

pytestmark = pytest.mark.anyio

T0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)


def _at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def _computed(conn: psycopg.Connection, point: str, rule: str, kind: str, a: float, b: float
              ) -> int:  # fmt: skip
    row = conn.execute(
        "INSERT INTO alarms (mine_code, point_id, rule, abnormal_type, started_at, ended_at, "
        "raised_at, start_value, max_value, max_at, min_value, min_at, value_sum, value_count) "
        "SELECT mine_code, id, %s, %s, %s, %s, %s, 1.2, 1.4, %s, 1.1, %s, 2.5, 2 "
        "FROM points WHERE code = %s RETURNING id",
        (rule, kind, _at(a), _at(b), _at(a), _at(a), _at(a), point),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _reported(conn: psycopg.Connection, mine: str, point: str, kind: str, a: float, b: float,
              cause: str = "") -> None:  # fmt: skip
    conn.execute(
        "INSERT INTO reported_point_alarms (mine_code, point_code, abnormal_type, started_at, "
        "ended_at, sensor_type_name, location, unit, max_value, cause, measures, entered_by, "
        "data_time, source_file, first_file) VALUES (%s, %s, %s, %s, %s, '甲烷', 'x', '%%', "
        "1.40, %s, %s, '', %s, 'f.txt', 'f.txt')",
        (mine, point, kind, _at(a), _at(b), cause, cause, _at(b)),
    )


async def test_matched_reported_only_and_computed_only(database_url: str) -> None:
    definition = SimulatedMine(load_mine_config(example_mine_path("small"))).definition
    mine = definition.mine.code
    p1, p2, p3 = (point.code for point in definition.points[:3])
    card = f"{mine}00001"
    with psycopg.connect(database_url) as conn:
        upsert_mine(conn, definition)
        # both saw it: minewatch's episode starts 20 s after the mine's record ended (the
        # two systems' clocks and readings differ): within the 60 s tolerance
        both = _computed(conn, p1, "upper_alarm", "001", 10.5 + 1 / 30, 14)
        _reported(conn, mine, p1, "001", 10, 10.2, cause="采空区涌出")
        # same point and time, another 异常类型: no match either way
        cut = _computed(conn, p1, "power_off", "002", 11, 13)
        # only the mine: a report with nothing behind it
        _reported(conn, mine, p2, "001", 30, 31)
        # only minewatch: the mine did not report it; and a maintenance code nobody reports
        hidden = _computed(conn, p3, "upper_alarm", "001", 40, 45)
        _computed(conn, p3, "flatline", "M02", 50, 70)
        # outside the window: ignored on both sides
        _computed(conn, p2, "upper_alarm", "001", 200, 201)
        _reported(conn, mine, p3, "001", 200, 201)
        overtime = conn.execute(
            "INSERT INTO alarms (mine_code, subject_kind, subject_code, rule, abnormal_type, "
            "started_at, raised_at, start_value, max_value, max_at, min_value, min_at, "
            "value_sum, value_count) VALUES (%s, 'person', %s, 'overtime', 'P01', %s, %s, "
            "0, 0, %s, 0, %s, 0, 1) RETURNING id",
            (mine, card, _at(5), _at(5), _at(5), _at(5)),
        ).fetchone()
        conn.execute(
            "INSERT INTO reported_personnel_alarms (mine_code, rule, subject_kind, "
            "subject_code, started_at, file_type, data_time, source_file, first_file) VALUES "
            "(%s, 'overtime', 'person', %s, %s, 'RYCS', %s, 'r.txt', 'r.txt'), "
            "(%s, 'sos', 'person', %s, %s, 'RYQJ', %s, 'q.txt', 'q.txt')",
            (mine, card, _at(5.5), _at(6), mine, card, _at(20), _at(20)),
        )
    assert overtime is not None
    params = {"start": _at(0).isoformat(), "end": _at(120).isoformat()}
    async with running_api(database_url) as base, httpx.AsyncClient(base_url=base) as client:
        got = await client.get(f"/api/v1/mines/{mine}/reconciliation", params=params)
        assert got.status_code == 200, got.text
        body = got.json()
        strict = await client.get(
            f"/api/v1/mines/{mine}/reconciliation", params=params | {"tolerance_s": 5}
        )
        missing = await client.get("/api/v1/mines/999999999999/reconciliation", params=params)
        cut_short = await client.get(
            f"/api/v1/mines/{mine}/reconciliation", params=params | {"limit": 1}
        )
        naive = await client.get(
            f"/api/v1/mines/{mine}/reconciliation",
            params={"start": "2026-03-01T08:00:00", "end": "2026-03-01T10:00:00"},
        )
    points = body["point_alarms"]
    assert [(m["alarm_id"], m["point_code"], m["reported_disposed"]) for m in points["matched"]] \
        == [(both, p1, True)]  # fmt: skip
    assert [(r["point_code"], r["abnormal_type"]) for r in points["reported_only"]] == [(p2, "001")]
    assert [c["alarm_id"] for c in points["computed_only"]] == [cut, hidden]
    people = body["personnel_alarms"]
    assert [m["alarm_id"] for m in people["matched"]] == [overtime[0]]
    assert [r["rule"] for r in people["reported_only"]] == ["sos"]
    assert people["computed_only"] == []
    # the 20 s gap is beyond a 5 s tolerance: the two no longer match
    assert strict.json()["point_alarms"]["matched"] == []
    assert missing.status_code == 404
    assert naive.status_code == 422
    assert body["truncated"] is False  # no list reached the limit (1000)
    assert cut_short.json()["truncated"] is True  # computed_only has two: cut at one, said so

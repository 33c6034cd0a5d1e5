"""A mine definition updates the fields it carries and leaves the others (issue 15): a national
CDDY definition (no gas class, no capacity, no per-point rule settings) must not erase what the
MQTT definition set, in the real database."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import psycopg

from minewatch.codes import SystemCode, ValueType
from minewatch.ingest.sources.national.safety import definition_update
from minewatch.metadata import MineDefinition, upsert_mine
from minewatch.national import (
    CHINA_TZ,
    CddyRecord,
    FileType,
    Header,
    ParsedFile,
    encode_file,
    parse_file,
)
from minewatch.simulators.config import example_mine_path, load_mine_config
from minewatch.simulators.model import SimulatedMine

NOW = dt.datetime(2026, 9, 23, 10, 15, 0, tzinfo=CHINA_TZ)


def _full() -> MineDefinition:
    return SimulatedMine(load_mine_config(example_mine_path("small"))).definition


def _cddy_of(definition: MineDefinition, code: str, alarm_high: str) -> MineDefinition:
    point = next(p for p in definition.points if p.code == code)
    record = CddyRecord(
        point.code, SystemCode.SAFETY_MONITORING, point.substation, point.sensor_type,
        ValueType.ANALOG, point.unit, Decimal("4"), Decimal("0"), Decimal(alarm_high),
        Decimal(alarm_high), None, None, Decimal("1.5"), Decimal("1.0"), None, None, "", "",
        "回风隅角", None, None, None, (), NOW,
    )  # fmt: skip
    head = Header(FileType.CDDY, definition.mine.code, "某煤矿", NOW, "KJ90X", "安全监控系统",
                  "某厂家", "2027-01-01")  # fmt: skip
    parsed = parse_file(*encode_file(head, [record]))
    assert isinstance(parsed, ParsedFile)
    return definition_update(parsed).definition


def _mine_row(conn: psycopg.Connection, code: str) -> tuple[object, ...]:
    row = conn.execute(
        "SELECT name, gas_class, approved_capacity_t FROM mines WHERE code = %s", (code,)
    ).fetchone()
    assert row is not None
    return tuple(row)


def _point_row(conn: psycopg.Connection, mine: str, code: str) -> dict[str, object]:
    cur = conn.execute(
        "SELECT alarm_high, location, poll_cycle_s, interruption_cycles, control_time_s, "
        "area_code, downstream, tag FROM points WHERE mine_code = %s AND code = %s",
        (mine, code),
    )
    names = [c.name for c in cur.description or ()]
    row = cur.fetchone()
    assert row is not None
    return dict(zip(names, row, strict=True))


def test_a_national_definition_keeps_the_fields_it_does_not_carry(database_url: str) -> None:
    full = _full()
    methane = next(p for p in full.points if p.sensor_type == "0001" and p.area_code)
    with psycopg.connect(database_url) as conn:
        upsert_mine(conn, full)
        before = _point_row(conn, full.mine.code, methane.code)
        upsert_mine(conn, _cddy_of(full, methane.code, "0.8"))

        assert _mine_row(conn, full.mine.code) == ("某煤矿", "high", 1200000.0)
        after = _point_row(conn, full.mine.code, methane.code)
        assert (after["alarm_high"], after["location"]) == (0.8, "回风隅角")  # carried: updated
        for kept in ("poll_cycle_s", "interruption_cycles", "control_time_s", "area_code",
                     "downstream", "tag"):  # fmt: skip
            assert after[kept] == before[kept] is not None, kept
        # the substation keeps its location; the other points are untouched
        others = conn.execute(
            "SELECT count(*) FROM points WHERE mine_code = %s AND poll_cycle_s IS NOT NULL",
            (full.mine.code,),
        ).fetchone()
        assert others is not None and others[0] == len(full.points)


def test_a_definition_that_omits_a_field_keeps_it_and_a_null_clears_it(
    database_url: str,
) -> None:
    full = _full()
    mine = full.mine.code
    point = full.points[0]
    partial = MineDefinition.model_validate({
        "mine": {"code": mine, "name": full.mine.name},
        "substations": [{"code": point.substation}],
        "points": [{"code": point.code, "substation": point.substation,
                    "sensor_type": point.sensor_type, "location": "moved"}],
    })  # fmt: skip
    cleared = MineDefinition.model_validate({
        "mine": {"code": mine, "name": full.mine.name, "gas_class": None},
        "substations": [{"code": point.substation}],
        "points": [{"code": point.code, "substation": point.substation,
                    "sensor_type": point.sensor_type, "tag": ""}],
    })  # fmt: skip
    with psycopg.connect(database_url) as conn:
        upsert_mine(conn, full)
        upsert_mine(conn, partial)
        assert _mine_row(conn, mine) == (full.mine.name, "high", 1200000.0)
        row = _point_row(conn, mine, point.code)
        assert (row["location"], row["tag"]) == ("moved", point.tag)
        station = conn.execute(
            "SELECT location FROM substations WHERE mine_code = %s AND code = %s",
            (mine, point.substation),
        ).fetchone()
        expected = next(s for s in full.substations if s.code == point.substation).location
        assert station is not None and station[0] == expected
        upsert_mine(conn, cleared)
        assert _mine_row(conn, mine) == (full.mine.name, None, 1200000.0)
        assert _point_row(conn, mine, point.code)["tag"] == ""

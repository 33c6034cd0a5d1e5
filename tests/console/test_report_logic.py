"""Pure parts of the reports and overviews: which levels are looser than the regulation,
the local days of a period, a mine's tile in the grid by division."""

from __future__ import annotations

import datetime as dt

from minewatch.api.console.reports import local_days
from minewatch.api.inspection_repository import looser_levels, period_start
from minewatch.api.routers.console_regulator import by_division, tile_state

ROW = {"alarm_pct": 1.0, "poweroff_pct": 1.5, "restore_pct": 1.0}


def test_levels_looser_than_the_regulation_row() -> None:
    same = {"alarm_high": 1.0, "poweroff_high": 1.5, "restore_high": 1.0} | ROW
    assert looser_levels(same) == []
    stricter = {"alarm_high": 0.8, "poweroff_high": 1.2, "restore_high": 0.8} | ROW
    assert looser_levels(stricter) == []
    loose = {"alarm_high": 1.2, "poweroff_high": 1.6, "restore_high": 1.1} | ROW
    assert looser_levels(loose) == ["报警门限偏高", "断电门限偏高", "复电门限偏高"]
    missing = {"alarm_high": 1.0, "poweroff_high": None, "restore_high": None} | ROW
    assert looser_levels(missing) == ["断电门限缺失"]
    alarm_only = {"alarm_high": 0.75, "poweroff_high": None, "restore_high": None,
                  "alarm_pct": 0.75, "poweroff_pct": None, "restore_pct": None}  # fmt: skip
    assert looser_levels(alarm_only) == []


def test_local_days_of_a_period() -> None:
    utc = dt.UTC
    start = dt.datetime(2026, 3, 1, 15, 0, tzinfo=utc)  # 23:00 on the 1st in Beijing
    end = dt.datetime(2026, 3, 2, 17, 0, tzinfo=utc)  # 01:00 on the 3rd
    days = local_days(start, end, "Asia/Shanghai")
    assert [d.date().isoformat() for d in days] == ["2026-03-01", "2026-03-02", "2026-03-03"]
    assert days[0].utcoffset() == dt.timedelta(hours=8) and days[0].hour == 0
    month = period_start(dt.datetime(2026, 3, 31, 17, tzinfo=utc), "month", "Asia/Shanghai")
    assert month.isoformat() == "2026-04-01T00:00:00+08:00"  # already April in Beijing


def _mine(code: str, silent: bool = False, **grades: int) -> dict[str, object]:
    counts = {g: grades.get(g, 0) for g in ("red", "orange", "yellow", "blue")}
    return {"code": code, "silent": silent, **counts}


def test_tiles_by_county_coloured_by_state() -> None:
    assert tile_state(_mine("141024010001", silent=True, red=2)) == "silent"
    assert tile_state(_mine("141024010001", orange=1, blue=3)) == "orange"
    assert tile_state(_mine("141024010001")) == "ok"
    mines = [_mine("141024010001"), _mine("141081010001"), _mine("141024010002")]
    groups = by_division(mines)
    assert [(county, [m["code"] for m in ms]) for county, ms in groups] == [
        ("141024", ["141024010001", "141024010002"]),
        ("141081", ["141081010001"]),
    ]

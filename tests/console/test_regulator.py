"""The regulator's console in a real browser: the jurisdiction's mines (a silent one stands
out), a mine's board read-only, a mine outside the jurisdiction refused, the reports with
their exports (the XLSX holds the rows the page shows), and the English switch."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
import openpyxl
import psycopg
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from minewatch.api.accounts import Role
from minewatch.api.console.tables import LOCAL, XLSX_HEADER_ROW
from minewatch.metadata import upsert_mine
from minewatch.national import ParsedFile, parse_file
from minewatch.simulators.config import example_mine_path, load_mine_config
from minewatch.simulators.model import SimulatedMine
from tests.api.two_mines import PASSWORD, World, build_world
from tests.console.conftest import in_background, shoot, sign_in, wait
from tests.helpers import running_api

#: A third mine of the regulator's city that never sent data: it stands out as silent.
SILENT_MINE = "141024010002"
REPORTS = (
    "alarms", "exceedance-ranking", "disposal-compliance", "data-integrity",
    "calibration-compliance", "threshold-conformance", "personnel", "output", "reconciliation",
    "six-systems",
)  # fmt: skip
#: Mine A's belt scale (产量, 3001): 100 t -> 230 t this month, 130 t against a capacity of
#: 1,000 t a year (limit 100 t a month): over capacity.
OUTPUT_POINT = "OUT01"


@dataclass(frozen=True)
class Setting:
    base: str
    world: World


def _more_data(database_url: str, world: World) -> None:
    """Mine A: a minute of readings up to now and a disposed, ended exceedance an hour ago;
    the silent mine: its points, no readings."""
    small = SimulatedMine(load_mine_config(example_mine_path("small"))).definition
    silent = small.model_copy(
        update={"mine": small.mine.model_copy(update={"code": SILENT_MINE, "name": "静默煤矿"})}
    )
    with psycopg.connect(database_url) as conn:
        upsert_mine(conn, silent)
        conn.execute(
            "INSERT INTO readings (time, point_id, value) SELECT now() - s * interval '1 s', "
            "%s, 0.3 FROM generate_series(0, 59) s",
            (world.a.point_id,),
        )
        conn.execute(
            "INSERT INTO alarms (mine_code, point_id, rule, abnormal_type, classification, "
            "started_at, ended_at, raised_at, start_value, max_value, max_at, min_value, min_at, "
            "value_sum, value_count, acknowledged_at, disposed_at, cause, measures, handled_by) "
            "SELECT mine_code, id, 'upper_alarm', '001', 'exceedance', now() - interval '1 h', "
            "now() - interval '50 min', now() - interval '1 h', 1.2, 1.3, "
            "now() - interval '55 min', "
            "1.2, now() - interval '1 h', 2.5, 2, now() - interval '58 min', "
            "now() - interval '40 min', '通风不畅', '调整风量', 'dispatcher1' FROM points "
            "WHERE id = %s",
            (world.a.point_id,),
        )
        conn.execute(  # mine A's point: calibrated (declared) 3 days ago, and once undeclared
            "INSERT INTO calibrations (point_id, started_at, ended_at, declared_by) VALUES "
            "(%s, now() - interval '3 days', now() - interval '3 days' + interval '10 min', "
            "'张工')",
            (world.a.point_id,),
        )
        conn.execute(
            "INSERT INTO alarms (mine_code, point_id, rule, abnormal_type, classification, "
            "started_at, ended_at, raised_at, start_value, max_value, max_at, min_value, min_at, "
            "value_sum, value_count) SELECT mine_code, id, 'upper_alarm', '001', "
            "'calibration_undeclared', now() - interval '20 days', now() - interval '20 days' "
            "+ interval '5 min', now() - interval '20 days', 1.1, 2.0, now() - interval '20 days', "
            "1.1, now() - interval '20 days', 3.1, 2 FROM points WHERE id = %s",
            (world.a.point_id,),
        )
        conn.execute(  # substation 001 reported losing communication (FZSS)
            "INSERT INTO substation_status (time, mine_code, substation_code, run_state, "
            "power_state, source_file, first_file) VALUES (now() - interval '1 min', %s, "
            "'001', 0, 1, 'f1', 'f1'), (now(), %s, '001', 1, 1, 'f2', 'f2')",
            (world.a.code, world.a.code),
        )
        conn.execute(  # the silent mine's return-corner methane alarms at 1.2 %: too loose
            "UPDATE points SET alarm_high = 1.2 "
            "WHERE mine_code = %s AND location LIKE '%%回风隅角'",
            (SILENT_MINE,),
        )
        conn.execute(  # mine A's belt scale: three counter readings within the last minutes
            "INSERT INTO points (mine_code, code, sensor_type, value_type, unit, location) "
            "VALUES (%s, %s, '3001', 'LJ', 't', '主运输皮带')",
            (world.a.code, OUTPUT_POINT),
        )
        conn.execute(
            "INSERT INTO readings (time, point_id, value) SELECT now() - s * interval '1 min', "
            "p.id, v FROM points p, (VALUES (3, 100.0), (2, 150.0), (1, 230.0)) r(s, v) "
            "WHERE p.mine_code = %s AND p.code = %s",
            (world.a.code, OUTPUT_POINT),
        )
        conn.execute("UPDATE mines SET approved_capacity_t = 1000 WHERE code = %s", (world.a.code,))
        conn.execute(  # mine A's communications: a minute of reports, one device with a fault
            "INSERT INTO comms_status_reports (time, mine_code, device_code, online, fault) "
            "SELECT now() - s * interval '1 s', %s, 'C1', true, NULL FROM generate_series(1, 60) s",
            (world.a.code,),
        )
        conn.execute(
            "INSERT INTO comms_device_status (mine_code, device_code, online, fault, since, "
            "last_report_at) VALUES (%s, 'C1', true, NULL, now() - interval '1 min', now()), "
            "(%s, 'C2', true, '电源故障', now() - interval '1 min', now())",
            (world.a.code, world.a.code),
        )
        conn.execute(  # the silent mine had a 3.2 % power-off two hours ago: it is flagged
            "INSERT INTO alarms (mine_code, point_id, rule, abnormal_type, classification, "
            "started_at, ended_at, raised_at, start_value, max_value, max_at, min_value, min_at, "
            "value_sum, value_count) SELECT mine_code, id, 'power_off', '002', 'exceedance', "
            "now() - interval '2 h', now() - interval '119 min', now() - interval '2 h', 1.6, "
            "3.2, now() - interval '2 h', 1.6, now() - interval '2 h', 4.8, 2 FROM points "
            "WHERE mine_code = %s AND code = %s",
            (SILENT_MINE, world.a.point_code),
        )
        # readings inserted here, not by the gateway: each point's newest as after a bulk load
        conn.execute("SELECT refresh_point_latest()")


@pytest.fixture(scope="module")
def setting(module_database: str, browser: WebDriver) -> Iterator[Setting]:
    world = asyncio.run(build_world(module_database))
    _more_data(module_database, world)
    with in_background(lambda: running_api(module_database, signed_in=False)) as base:
        sign_in(browser, str(base), world.usernames[Role.REGULATOR], PASSWORD)
        yield Setting(str(base), world)
        browser.get("about:blank")


def _mine_rows(driver: WebDriver) -> dict[str, str]:
    return {
        r.get_attribute("data-mine") or "": r.get_attribute("class") or ""
        for r in driver.find_elements(By.CSS_SELECTOR, "#mines tr.mine")
    }


def test_the_overview_lists_the_jurisdiction_and_marks_a_silent_mine(
    browser: WebDriver, setting: Setting
) -> None:
    browser.get(f"{setting.base}/console/")
    wait(browser, lambda d: d.current_url.endswith("/console/regulator"))
    rows = _mine_rows(browser)
    assert set(rows) == {setting.world.a.code, SILENT_MINE}  # not mine B (Gansu)
    assert "silent" in rows[SILENT_MINE] and "silent" not in rows[setting.world.a.code]
    a = browser.find_element(By.CSS_SELECTOR, f'#mines tr[data-mine="{setting.world.a.code}"]')
    assert a.find_element(By.CSS_SELECTOR, "td.n-red").text == "1"  # the open power-off alarm
    # This month's output against the monthly limit (10 % of 1,000 t a year): over it.
    output = a.find_element(By.CSS_SELECTOR, "td.output")
    assert output.text == "130.0 / 100" and "over" in (output.get_attribute("class") or "")
    # The grid by county: one division (141024), the silent mine grey, mine A red.
    divisions = browser.find_elements(By.CSS_SELECTOR, "#grid section.division")
    assert [d.get_attribute("data-division") for d in divisions] == ["141024"]
    tiles = {
        t.get_attribute("data-mine"): t.get_attribute("class")
        for t in browser.find_elements(By.CSS_SELECTOR, "#grid a.tile")
    }
    assert tiles == {setting.world.a.code: "tile state-red", SILENT_MINE: "tile state-silent"}
    shoot(browser, "07-regulator-overview")


def test_the_mine_overview_shows_substation_communication(
    browser: WebDriver, setting: Setting
) -> None:
    browser.get(f"{setting.base}/console/mines/{setting.world.a.code}/overview")
    states = {
        r.get_attribute("data-substation"): r.find_element(By.CSS_SELECTOR, "td.run").text
        for r in browser.find_elements(By.CSS_SELECTOR, "#substations tr")
    }
    assert states.pop("001") == "通信中断"  # the newest report, not the earlier one
    assert browser.find_element(By.ID, "output-today").text == "130.0 t"  # the belt scale
    assert states and set(states.values()) == {"无上报"}
    shoot(browser, "08-regulator-mine-overview")


def test_a_mine_board_is_read_only_for_a_regulator(browser: WebDriver, setting: Setting) -> None:
    browser.get(f"{setting.base}/console/mines/{setting.world.a.code}/board")
    rows = browser.find_elements(By.CSS_SELECTOR, "#board tr.alarm")
    assert [r.get_attribute("data-alarm-id") for r in rows] == [str(setting.world.a.alarm_id)]
    assert browser.find_elements(By.CSS_SELECTOR, "#board button[data-action]") == []
    assert "只读" in browser.find_element(By.TAG_NAME, "h1").text
    shoot(browser, "08-regulator-board-read-only")


@pytest.mark.parametrize(
    "page",
    [
        "/console/mines/{b}/board",
        "/console/mines/{b}/overview",
        "/console/reports/alarms?mine={b}",
        "/console/points/{point}/curve",
        "/console/alarms/{alarm}",
    ],
)
def test_a_mine_outside_the_jurisdiction_is_refused(
    browser: WebDriver, setting: Setting, page: str
) -> None:
    b = setting.world.b
    browser.get(setting.base + page.format(b=b.code, point=b.point_id, alarm=b.alarm_id))
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "not known (or not in your scope)" in body
    assert b.code not in body.replace(page.format(b=b.code, point="", alarm=""), "")


def _session(browser: WebDriver) -> dict[str, str]:
    cookie = browser.get_cookie("minewatch_session")
    assert cookie is not None
    return {"minewatch_session": cookie["value"]}


def _page_table(driver: WebDriver) -> tuple[list[str], list[list[str]]]:
    headers = [h.text for h in driver.find_elements(By.CSS_SELECTOR, "#report thead th")]
    rows = driver.execute_script(
        "return Array.from(document.querySelectorAll('#report tbody tr'))"
        ".map(r => Array.from(r.cells).map(c => c.textContent))"
    )
    return headers, rows


def _same(cell: object, shown: str) -> bool:
    """A sheet's cell holds what the page shows (a number as a number: 100.0 is read back
    from XLSX as 100)."""
    if isinstance(cell, int | float) and not isinstance(cell, bool):
        return float(shown) == cell
    return ("" if cell is None else str(cell)) == shown


@pytest.mark.parametrize("report", REPORTS)
def test_a_report_exports_the_rows_the_page_shows(
    browser: WebDriver, setting: Setting, report: str
) -> None:
    browser.get(f"{setting.base}/console/reports/{report}")
    headers, rows = _page_table(browser)
    assert rows, "the report has rows"
    shoot(browser, f"09-report-{report}")
    href = browser.find_element(By.ID, "export-xlsx").get_attribute("href")
    assert href is not None
    xlsx = httpx.get(href, cookies=_session(browser), timeout=20)
    assert xlsx.status_code == 200, xlsx.text
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet is not None
    values = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert values[1][:2] == ["管辖范围", "1410"] and values[2][0] == "统计时段"
    assert values[2][1] == browser.find_element(By.ID, "period").text
    assert values[XLSX_HEADER_ROW - 1] == headers
    sheet_rows = values[XLSX_HEADER_ROW:]
    assert len(sheet_rows) == len(rows)
    for cells, shown in zip(sheet_rows, rows, strict=True):
        assert len(cells) == len(shown) and all(map(_same, cells, shown)), (cells, shown)
    csv_href = browser.find_element(By.ID, "export-csv").get_attribute("href")
    assert csv_href is not None
    text = httpx.get(csv_href, cookies=_session(browser), timeout=20).content.decode("utf-8-sig")
    assert list(csv.reader(io.StringIO(text))) == [headers, *rows]


def test_the_alarm_report_filters_by_rule(browser: WebDriver, setting: Setting) -> None:
    browser.get(f"{setting.base}/console/reports/alarms?rule=upper_alarm")
    _, rows = _page_table(browser)
    assert [r[4] for r in rows] == ["upper_alarm"]
    assert rows[0][11] == "dispatcher1" and rows[0][12] == "通风不畅"


def test_the_exceedance_ranking_puts_the_most_frequent_point_first(
    browser: WebDriver, setting: Setting
) -> None:
    browser.get(f"{setting.base}/console/reports/exceedance-ranking")
    _, rows = _page_table(browser)
    # Mine A's point: two exceedances (the open power-off, the ended alarm), highest 1.6 %;
    # the silent mine's: one, at 3.2 % (>= 3 %: the mine is flagged); none of mine B.
    assert [(r[0], r[2], r[5], r[6], r[12]) for r in rows] == [
        (setting.world.a.code, setting.world.a.point_code, "2", "1.6", ""),
        (SILENT_MINE, setting.world.a.point_code, "1", "3.2", "是"),
    ]


def test_calibration_compliance_marks_sensors_not_calibrated_in_15_days(
    browser: WebDriver, setting: Setting
) -> None:
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(days=30)).isoformat()
    browser.get(f"{setting.base}/console/reports/calibration-compliance?"
                + urlencode({"start": start, "mine": setting.world.a.code}))  # fmt: skip
    _, rows = _page_table(browser)
    by_point = {r[1]: (r[4], r[5], r[6]) for r in rows}
    days, overdue, undeclared = by_point.pop(setting.world.a.point_code)
    assert float(days) == pytest.approx(3.0, abs=0.1) and overdue == "" and undeclared == "1"
    # Every other catalytic methane point of mine A was never calibrated: overdue.
    assert by_point and all(v == ("", "是", "0") for v in by_point.values())


def test_english_can_be_switched_on_and_off(browser: WebDriver, setting: Setting) -> None:
    browser.get(f"{setting.base}/console/regulator")
    browser.find_element(By.ID, "lang").click()
    wait(browser, lambda d: "Jurisdiction" in d.find_element(By.TAG_NAME, "h1").text)
    shoot(browser, "10-regulator-overview-english")
    browser.find_element(By.ID, "lang").click()
    wait(browser, lambda d: "辖区概况" in d.find_element(By.TAG_NAME, "h1").text)


def test_threshold_conformance_finds_a_looser_alarm_level(
    browser: WebDriver, setting: Setting
) -> None:
    browser.get(f"{setting.base}/console/reports/threshold-conformance?mine={SILENT_MINE}")
    _, rows = _page_table(browser)
    verdicts = {(r[1], r[2]): r[11] for r in rows}
    loose = {k: v for k, v in verdicts.items() if v not in ("符合", "未匹配规程条目")}
    # Only the return corners (回风隅角, row 1: alarm >= 1.0 %) are too loose; listed first.
    assert len(loose) == 2 and all(p.endswith("回风隅角") for _, p in loose)
    assert set(loose.values()) == {"报警门限偏高"}
    assert [r[11] for r in rows[:2]] == ["报警门限偏高"] * 2
    # The electrical chamber (变电所) has no verified row in the table: said, not judged.
    assert {p for (_, p), v in verdicts.items() if v == "未匹配规程条目"} == {"中央变电所变电所"}
    corner = next(r for r in rows if r[2].endswith("回风隅角"))
    assert corner[4] == "1.2" and corner[8] == "1.0" and "第1行" in corner[7]
    assert "符合" in verdicts.values()  # the simulated mine's other points keep the table


def test_output_flags_a_month_over_capacity(browser: WebDriver, setting: Setting) -> None:
    browser.get(f"{setting.base}/console/reports/output")
    _, rows = _page_table(browser)
    by_mine = {r[0]: r for r in rows}
    a = by_mine[setting.world.a.code]
    assert float(a[3]) == 130.0 and float(a[5]) == 100.0 and a[7] == "是"
    assert by_mine[SILENT_MINE][8] == "无产量数据"


def test_the_six_system_check_per_mine_and_system(browser: WebDriver, setting: Setting) -> None:
    today = dt.datetime.now(dt.UTC).astimezone(LOCAL).replace(hour=0, minute=0, second=0,
                                                             microsecond=0)  # fmt: skip
    browser.get(f"{setting.base}/console/reports/six-systems?"
                + urlencode({"start": today.isoformat()}))  # fmt: skip
    headers, rows = _page_table(browser)
    assert headers[4] == "接入状态"
    cells = {(r[0], r[2]): r for r in rows}
    assert {s for _, s in cells} == {"监管平台联网", "安全监控", "人员定位", "产量监测",
                                     "视频调度", "通信联络"}  # fmt: skip
    a = setting.world.a.code
    safety, comms = cells[(a, "安全监控")], cells[(a, "通信联络")]
    assert safety[4] == "在线" and float(safety[6]) > 0 and float(safety[7]) == 100.0
    assert comms[4] == "在线" and float(comms[7]) == 100.0 and comms[8] == "1"  # the fault
    assert cells[(a, "人员定位")][4] == "离线" and cells[(a, "人员定位")][7] == ""
    assert {r[4] for r in rows if r[0] == SILENT_MINE} == {"离线"}
    shoot(browser, "11-six-systems")


def test_the_alarms_of_one_mine_export_as_a_ycbj_file(browser: WebDriver, setting: Setting) -> None:
    browser.get(f"{setting.base}/console/reports/alarms")
    assert browser.find_elements(By.ID, "export-ycbj") == []  # a jurisdiction: no one file
    browser.get(f"{setting.base}/console/reports/alarms?mine={setting.world.a.code}")
    _, rows = _page_table(browser)
    href = browser.find_element(By.ID, "export-ycbj").get_attribute("href")
    assert href is not None
    answer = httpx.get(href, cookies=_session(browser), timeout=20)
    assert answer.status_code == 200, answer.text
    name = answer.headers["content-disposition"].split('filename="')[1].rstrip('"')
    parsed = parse_file(name, answer.content)  # the national inbox's own codec
    assert isinstance(parsed, ParsedFile) and not parsed.problems
    assert parsed.header.mine_code == setting.world.a.code
    # Every alarm of the page is a point alarm with a national 异常类型: one record each.
    assert sorted(r.start_time.strftime("%Y-%m-%d %H:%M:%S") for r in parsed.records) == sorted(
        r[6] for r in rows
    )
    disposed = [r for r in parsed.records if r.cause]
    assert [(r.cause, r.measures, r.entered_by) for r in disposed] == [
        ("通风不畅", "调整风量", "dispatcher1")
    ]
    no_mine = httpx.get(f"{setting.base}/api/v1/reports/alarms/ycbj", cookies=_session(browser))
    assert no_mine.status_code == 422

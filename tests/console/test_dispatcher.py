"""The dispatcher's console in a real browser: sign in, the live board fed by the alarm
stream (a methane exceedance published by the simulator appears without a reload), the
lifecycle steps from the board and the alarm's record, the mine overview, a point's curve."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from minewatch.api.accounts import Hasher, Role, add_account
from minewatch.embedded import MosquittoServer
from minewatch.feeds import safety_subscriptions
from minewatch.metadata import upsert_mine
from minewatch.simulators.config import example_mine_path, load_mine_config
from minewatch.simulators.model import SimulatedMine
from minewatch.simulators.mqtt_publisher import publish_mine
from tests.console.conftest import in_background, shoot, sign_in, stacked, wait
from tests.helpers import running_api, running_gateway, scalar

PASSWORD = "correct horse battery"
USER = "wang"
#: Cycles (seconds) published: the small mine's exceedance on CH4_T1 runs from 20 s to 50 s,
#: so the alarm is open (raised, not cleared) when publishing ends.
CYCLES = 35


@dataclass(frozen=True)
class Console:
    base: str
    database_url: str
    mqtt_url: str
    mine: str
    point: str  # the methane point of the exceedance
    client_id: str


async def _accounts(database_url: str, mine: str) -> None:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        await add_account(conn, Hasher(1, 1024), USER, PASSWORD, Role.DISPATCHER, mine, "调度员 王")


@pytest.fixture(scope="module")
def console(
    module_database: str, mqtt_server: MosquittoServer, browser: WebDriver
) -> Iterator[Console]:
    mine = SimulatedMine(load_mine_config(example_mine_path("small")))
    code = mine.definition.mine.code
    with psycopg.connect(module_database) as conn:
        upsert_mine(conn, mine.definition)
    asyncio.run(_accounts(module_database, code))
    client = f"gw-console-{time.monotonic_ns()}"
    gateway = running_gateway(
        module_database, mqtt_server.url, client, topics=safety_subscriptions(code)
    )
    api = running_api(module_database, signed_in=False)
    with in_background(lambda: stacked(gateway, api)) as (_, base):
        yield Console(
            str(base), module_database, mqtt_server.url, code, mine.ground_truth[0].point, client
        )
        browser.get("about:blank")  # closes the board's stream: the API stops at once


#: The board's rows, read in one go (the board replaces them on each stream event).
_ROWS = """return Array.from(document.querySelectorAll('#board tr.alarm')).map(r => ({
  id: r.dataset.alarmId, rule: r.dataset.rule, point: r.dataset.point, class: r.className,
  lifecycle: r.querySelector('td.lifecycle').innerText}));"""


def _rows(driver: WebDriver) -> list[dict[str, str]]:
    return driver.execute_script(_ROWS)  # type: ignore[no-any-return]


_INCIDENTS = """return Array.from(document.querySelectorAll('#board div.incident')).map(i => ({
  id: i.dataset.incidentId, grade: i.dataset.grade, state: i.dataset.state,
  members: Array.from(i.querySelectorAll('tr.member')).map(r => r.dataset.rule)}));"""


def _incidents(driver: WebDriver) -> list[dict[str, object]]:
    found = driver.execute_script(_INCIDENTS)
    return [{**i, "members": set(i["members"])} for i in found]


def test_a_wrong_password_stays_on_the_sign_in_page(browser: WebDriver, console: Console) -> None:
    browser.get(f"{console.base}/console/reports/alarms?rule=power_off")
    wait(browser, lambda d: "/console/login" in d.current_url)  # signed out: sent to sign in
    assert browser.current_url.endswith("?next=/console/reports/alarms%3Frule%3Dpower_off")
    browser.find_element(By.ID, "username").send_keys(USER)
    browser.find_element(By.ID, "password").send_keys("wrong")
    browser.find_element(By.ID, "login-submit").click()
    wait(browser, lambda d: d.find_element(By.ID, "login-error").is_displayed())
    assert "用户名或密码错误" in browser.find_element(By.ID, "login-error").text
    shoot(browser, "01-login")


def test_a_methane_exceedance_appears_on_the_board_within_2_s(
    browser: WebDriver, console: Console
) -> None:
    sign_in(browser, console.base, USER, PASSWORD)
    assert browser.current_url.endswith(f"/console/mines/{console.mine}/board")
    wait(browser, lambda d: d.execute_script("return document.body.dataset.stream") == "open")
    assert _rows(browser) == []
    flashing = "return document.body.classList.contains('flash')"
    assert not browser.execute_script(flashing)
    marker = browser.execute_script("document.body.dataset.marker = 'same page'; return 1")
    mine = SimulatedMine(load_mine_config(example_mine_path("small")))
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=CYCLES)
    asyncio.run(
        publish_mine(
            mine,
            console.mqtt_url,
            cycles=CYCLES,
            realtime=False,
            start=start,
            client_id=f"sim-{console.client_id}",
        )
    )
    published = time.monotonic()
    wait(browser, lambda d: any(r["rule"] == "power_off" for r in _rows(d)), timeout=2.0)
    elapsed = time.monotonic() - published
    assert elapsed <= 2.0
    assert marker == 1 and browser.execute_script("return document.body.dataset.marker") == (
        "same page"
    )  # no reload: the stream pushed it
    wait(browser, lambda d: {r["rule"] for r in _rows(d)} == {"power_off", "upper_alarm"})
    rows = _rows(browser)
    # By grade: the red power-off before the orange alarm; both on the exceeding point.
    assert [r["rule"] for r in rows] == ["power_off", "upper_alarm"]
    assert "grade-red" in rows[0]["class"] and "grade-orange" in rows[1]["class"]
    assert {r["point"] for r in rows} == {console.point}
    assert browser.execute_script(flashing)  # a new red alarm flashes the top bar
    # One physical event: the point's excursion is one incident, its alarms its members.
    wait(
        browser,
        lambda d: _incidents(d) and _incidents(d)[0]["members"] >= {"power_off", "upper_alarm"},
    )
    (incident,) = _incidents(browser)
    assert incident["grade"] == "red" and incident["state"] == "raised"
    shoot(browser, "02-dispatcher-board")


def _click(driver: WebDriver, alarm_id: str, action: str) -> None:
    """Click the row's button once it is there (found and clicked in one go)."""
    selector = f'#board tr[data-alarm-id="{alarm_id}"] button[data-action="{action}"]'
    script = "const b = document.querySelector(arguments[0]); if (b) b.click(); return !!b;"
    wait(driver, lambda d: d.execute_script(script, selector))


def _lifecycle(driver: WebDriver, alarm_id: str) -> str:
    return next((r["lifecycle"] for r in _rows(driver) if r["id"] == alarm_id), "")


def test_acknowledge_shelve_and_dispose_from_the_board(
    browser: WebDriver, console: Console
) -> None:
    browser.get(f"{console.base}/console/mines/{console.mine}/board")
    rows = {r["rule"]: r["id"] for r in _rows(browser)}
    red, orange = rows["power_off"], rows["upper_alarm"]
    _click(browser, red, "acknowledge")
    wait(browser, lambda d: "已确认" in _lifecycle(d, red))
    _click(browser, red, "dispose")
    browser.find_element(By.ID, "dispose-cause").send_keys("回风巷瓦斯涌出")
    browser.find_element(By.ID, "dispose-measures").send_keys("撤人、加强通风")
    browser.find_element(By.ID, "dispose-open-reason").send_keys("现场已处理")
    browser.find_element(By.ID, "dispose-submit").click()
    wait(browser, lambda d: "处置: wang" in _lifecycle(d, red))
    # Shelving the orange alarm (acknowledged first, its grade's rule) hides it from the board.
    _click(browser, orange, "acknowledge")
    wait(browser, lambda d: "已确认" in _lifecycle(d, orange))
    _click(browser, orange, "shelve")
    browser.find_element(By.ID, "shelve-reason").send_keys("传感器检修")
    browser.find_element(By.ID, "shelve-submit").click()
    wait(browser, lambda d: orange not in {r["id"] for r in _rows(d)})
    shoot(browser, "03-board-after-steps")

    browser.find_element(By.CSS_SELECTOR, f'tr[data-alarm-id="{red}"] a').click()
    wait(browser, lambda d: d.current_url.endswith(f"/console/alarms/{red}"))
    assert browser.find_element(By.ID, "handled-by").text == USER
    assert browser.find_element(By.ID, "cause").text == "回风巷瓦斯涌出"
    assert browser.find_element(By.ID, "measures").text == "撤人、加强通风"
    assert browser.find_element(By.ID, "acknowledged-by").text.startswith(USER)
    shoot(browser, "04-alarm-record")
    # The steps were taken by the signed-in person, and audited.
    actions = scalar(
        console.database_url,
        "SELECT string_agg(action, ',' ORDER BY id) "
        "FROM audit_log WHERE actor = %s AND alarm_id IS NOT NULL",
        (USER,),
    )
    assert actions == "acknowledged,disposed,acknowledged,shelved"


def test_acknowledge_and_dispose_an_incident_from_the_board(
    browser: WebDriver, console: Console
) -> None:
    browser.get(f"{console.base}/console/mines/{console.mine}/board")
    (incident,) = _incidents(browser)
    selector = f'#board div.incident[data-incident-id="{incident["id"]}"] button[data-action="%s"]'
    script = "const b = document.querySelector(arguments[0]); if (b) b.click(); return !!b;"
    wait(browser, lambda d: d.execute_script(script, selector % "incident-acknowledge"))
    wait(browser, lambda d: _incidents(d)[0]["state"] == "acknowledged")
    wait(browser, lambda d: d.execute_script(script, selector % "incident-dispose"))
    browser.find_element(By.ID, "dispose-cause").send_keys("工作面瓦斯涌出")
    browser.find_element(By.ID, "dispose-measures").send_keys("停电撤人、加强通风")
    browser.find_element(By.ID, "dispose-open-reason").send_keys("现场已处理")
    browser.find_element(By.ID, "dispose-submit").click()
    wait(browser, lambda d: _incidents(d) == [])  # a disposed incident leaves the board
    state = scalar(console.database_url, "SELECT state FROM incidents WHERE id = %s",
                   (int(str(incident["id"])),))  # fmt: skip
    assert state == "disposed"
    undisposed = scalar(
        console.database_url,
        "SELECT count(*) FROM incident_members m JOIN alarms a ON a.id = m.alarm_id "
        "WHERE m.incident_id = %s AND a.disposed_at IS NULL",
        (int(str(incident["id"])),),
    )
    assert undisposed == 0  # every member took the incident's disposal


def test_the_overview_shows_each_point_latest_value_unit_and_state(
    browser: WebDriver, console: Console
) -> None:
    browser.get(f"{console.base}/console/mines/{console.mine}/overview")
    row = browser.find_element(By.CSS_SELECTOR, f'#points tr[data-point="{console.point}"]')
    value = float(row.find_element(By.CSS_SELECTOR, "td.value").text)
    latest = scalar(
        console.database_url,
        "SELECT value FROM readings r JOIN points p ON "
        "p.id = r.point_id WHERE p.code = %s ORDER BY time DESC LIMIT 1",
        (console.point,),
    )
    assert value == pytest.approx(float(latest), rel=1e-2)  # type: ignore[arg-type]
    unit = scalar(console.database_url, "SELECT unit FROM points WHERE code = %s", (console.point,))
    assert row.find_element(By.CSS_SELECTOR, "td.unit").text == unit == "%CH4"
    assert "state-power_off" in (row.get_attribute("class") or "")  # >= 1.5 %: power off
    points = scalar(console.database_url, "SELECT count(*) FROM points")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#points tr.point")) == points
    shoot(browser, "05-mine-overview")


def test_a_point_curve_draws_its_threshold_lines_and_bands(
    browser: WebDriver, console: Console
) -> None:
    with psycopg.connect(console.database_url, autocommit=True) as conn:
        conn.execute(  # a declared calibration and a data interruption within the hour
            "INSERT INTO calibrations (point_id, started_at, ended_at, declared_by) SELECT id, "
            "now() - interval '50 min', now() - interval '40 min', '张工' FROM points "
            "WHERE code = %s",
            (console.point,),
        )
        conn.execute(
            "INSERT INTO alarms (mine_code, point_id, rule, abnormal_type, classification, "
            "started_at, ended_at, raised_at, start_value, max_value, max_at, min_value, "
            "min_at, value_sum, value_count) SELECT mine_code, id, 'data_interruption', 'M03', "
            "'data_interruption', now() - interval '30 min', now() - interval '25 min', "
            "now() - interval '30 min', 0, 0, now() - interval '30 min', 0, "
            "now() - interval '30 min', 0, 1 FROM points WHERE code = %s",
            (console.point,),
        )
    browser.get(f"{console.base}/console/mines/{console.mine}/overview")
    row = browser.find_element(By.CSS_SELECTOR, f'#points tr[data-point="{console.point}"]')
    row.find_element(By.LINK_TEXT, "曲线").click()
    chart = wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#chart[data-rendered]"))
    width_s = int((chart.get_attribute("data-bucket") or "").strip("PTS"))
    assert int(chart.get_attribute("data-rendered") or 0) >= CYCLES // width_s
    legend = browser.find_element(By.CSS_SELECTOR, "#chart .u-legend").text
    alarm, poweroff, restore = (
        chart.get_attribute(f"data-{k}") for k in ("alarm", "poweroff", "restore")
    )
    assert f"报警门限 {alarm}" in legend and f"断电门限 {poweroff}" in legend
    assert f"复电门限 {restore}" in legend
    assert browser.find_elements(By.CSS_SELECTOR, "#chart canvas")
    kinds = [
        r.get_attribute("data-kind")
        for r in browser.find_elements(By.CSS_SELECTOR, "#bands tr.band")
    ]
    assert kinds.count("calibration") == 1 and kinds.count("interruption") == 1
    assert kinds.count("episode") >= 2  # the power-off and the alarm of the exceedance
    drawn = wait(
        browser, lambda d: d.find_element(By.ID, "chart").get_attribute("data-bands-drawn")
    )
    assert int(drawn) == len(kinds)  # every band within the hour is drawn
    shoot(browser, "06-point-curve")

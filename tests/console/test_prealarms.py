"""Pre-alarms on the dispatcher's console in a real browser (issue 17): a face sensor's methane
rising towards its alarm level goes through the gateway's write path (engine, forecaster,
store); the board shows the pre-alarm live from the stream's ``prealarm`` event, with its
forecast, the expected time at the level and the lead; the point's curve draws the forecast
and the pre-alarm's band; falling back clears it from the board, again without a reload."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import orjson
import psycopg
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from minewatch.api.accounts import Hasher, Role, add_account
from minewatch.feeds import safety_topic
from minewatch.ingest.contract import SafetyMessage, parse_message
from minewatch.ingest.metrics import GatewayMetrics
from minewatch.ingest.time_limits import TimeLimits
from minewatch.ingest.writer import BatchWriter, PendingWrite
from minewatch.metadata import upsert_mine
from minewatch.simulators.config import example_mine_path, load_mine_config
from minewatch.simulators.model import SimulatedMine
from tests.console.conftest import in_background, shoot, sign_in, wait
from tests.helpers import running_api, scalar

PASSWORD = "correct horse battery"
USER = "zhao"
#: The mine's pre-alarm settings (data per mine): a 10-minute horizon, a fast trend.
SETTINGS = '{"horizon_s": 600, "tau_s": 60, "slow_tau_s": 0, "confirm": 5, "min_weight": 30}'
RISE_FROM = 300  # seconds of flat readings before the rise
RISE_PER_S = 0.0015  # %CH4 per second: 0.09 %/min, from 0.3 % to 0.75 % in 300 s


@dataclass(frozen=True)
class Console:
    base: str
    database_url: str
    mine: str
    points: list[str]  # substation 001's points, in message order
    face: int  # index of the rising methane point (CH4_T1, alarm level 1.0)
    start: dt.datetime  # time of the first reading: 11 minutes ago


async def _accounts(database_url: str, mine: str) -> None:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        await add_account(conn, Hasher(1, 1024), USER, PASSWORD, Role.DISPATCHER, mine, "调度员 赵")


@pytest.fixture(scope="module")
def console(module_database: str, browser: WebDriver) -> Iterator[Console]:
    definition = SimulatedMine(load_mine_config(example_mine_path("small"))).definition
    with psycopg.connect(module_database) as conn:
        upsert_mine(conn, definition)
        conn.execute("UPDATE mines SET prealarm = %s::jsonb", (SETTINGS,))
    mine = definition.mine.code
    asyncio.run(_accounts(module_database, mine))
    points = [p.code for p in definition.points if p.substation == "001"]
    face = next(i for i, p in enumerate(points) if p.endswith("A02"))
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=660)
    with in_background(lambda: running_api(module_database, signed_in=False)) as base:
        yield Console(str(base), module_database, mine, points, face, start)
        browser.get("about:blank")  # closes the board's stream: the API stops at once


def _messages(c: Console, first: int, face_values: list[float]) -> list[SafetyMessage]:
    out = []
    for k, value in enumerate(face_values, start=first):
        values = [0.3] * len(c.points)
        values[c.face] = value
        payload = {
            "v": 1, "mine": c.mine, "substation": "001", "boot": 1, "seq": k + 1,
            "ts": (c.start + dt.timedelta(seconds=k)).isoformat(), "points": c.points,
            "values": values, "status": [0] * len(c.points),
        }  # fmt: skip
        message = parse_message(safety_topic(c.mine, "001"), orjson.dumps(payload), 1 << 20)
        assert isinstance(message, SafetyMessage)
        out.append(message)
    return out


def _ack() -> None:
    """A pending write is flushed only while someone waits for its acknowledgement."""


async def _write(c: Console, batches: list[list[SafetyMessage]]) -> None:
    """Through the gateway's writer: the engine (with the forecaster) and the store, one
    transaction per batch of 20 polling cycles."""
    limits = TimeLimits(300_000_000, 86_400_000_000)
    async with BatchWriter(c.database_url, GatewayMetrics(), 30.0, limits) as writer:
        for messages in batches:
            for a in range(0, len(messages), 20):
                chunk = messages[a : a + 20]
                readings = len(c.points) * len(chunk)
                pending = PendingWrite(messages=chunk, acks=[_ack], readings=readings)
                assert all(writer.accepts(pending, message) for message in chunk)
                await writer.flush(pending)


_PREALARMS = """return Array.from(document.querySelectorAll('#board tr.prealarm')).map(r => ({
  point: r.dataset.point, predicted: r.dataset.predicted,
  cells: Array.from(r.querySelectorAll('td')).map(td => td.innerText)}));"""


def _prealarms(driver: WebDriver) -> list[dict[str, object]]:
    return driver.execute_script(_PREALARMS)  # type: ignore[no-any-return]


def test_a_pre_alarm_appears_on_the_board_live_and_its_forecast_on_the_curve(
    browser: WebDriver, console: Console
) -> None:
    sign_in(browser, console.base, USER, PASSWORD)
    assert browser.current_url.endswith(f"/console/mines/{console.mine}/board")
    wait(browser, lambda d: d.execute_script("return document.body.dataset.stream") == "open")
    assert _prealarms(browser) == []
    browser.execute_script("document.body.dataset.marker = 'same page'")

    # Flat for 5 minutes, then rising: 0.75 % after 10 minutes (a minute ago), 1.0 % about 3
    # minutes later at that rate.
    rise = [0.3 + RISE_PER_S * max(0, k - RISE_FROM) for k in range(600)]
    asyncio.run(_write(console, [_messages(console, 0, rise)]))
    face = console.points[console.face]
    assert scalar(console.database_url, "SELECT count(*) FROM prealarms") == 1
    (row,) = wait(browser, _prealarms)  # pushed by the stream: no reload
    assert browser.execute_script("return document.body.dataset.marker") == "same page"
    stored = scalar(
        console.database_url,
        "SELECT json_build_object('forecast', forecast, 'level', level, 'lead', "
        "EXTRACT(EPOCH FROM predicted_at - raised_at), 'predicted', "
        "EXTRACT(EPOCH FROM predicted_at)) FROM prealarms WHERE cleared_at IS NULL",
    )
    assert isinstance(stored, dict)
    assert row["point"] == face
    cells = row["cells"]
    assert isinstance(cells, list)
    point, _, raised, level, forecast, expected, left, lead = cells
    assert point == face and raised and expected.startswith(console.start.strftime("%Y-"))
    assert float(level) == stored["level"] == 1.0
    assert float(forecast.split()[0]) == pytest.approx(stored["forecast"], abs=0.01)
    assert float(forecast.split()[0]) > 1.0  # the forecast is above the alarm level
    assert float(lead.split()[0]) == pytest.approx(stored["lead"] / 60, abs=0.051)
    assert stored["lead"] > 60  # warned more than a minute before the fitted line's crossing
    assert left.endswith("分钟")  # the crossing is still ahead: the time left, in minutes
    assert float(str(row["predicted"])) == pytest.approx(stored["predicted"], abs=1e-3)
    # Not an alarm: the board has no alarm of the point.
    assert browser.find_elements(By.CSS_SELECTOR, "#board tr.alarm") == []
    shoot(browser, "20-board-prealarm")

    browser.find_element(By.LINK_TEXT, face).click()
    chart = wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, "#chart[data-rendered]"))
    assert chart.get_attribute("data-forecasts-drawn") == "1"
    legend = browser.find_element(By.CSS_SELECTOR, "#chart .u-legend").text
    assert "预警预测" in legend  # the forecast is a series of the chart
    kinds = [
        r.get_attribute("data-kind")
        for r in browser.find_elements(By.CSS_SELECTOR, "#bands tr.band")
    ]
    assert kinds.count("prealarm") == 1
    drawn = wait(
        browser, lambda d: d.find_element(By.ID, "chart").get_attribute("data-bands-drawn")
    )
    assert int(drawn) == len(kinds)  # the pre-alarm's band is drawn with the others
    # The chart's x axis runs on to the end of the forecast's horizon, into the future.
    horizon_end = scalar(
        console.database_url,
        "SELECT EXTRACT(EPOCH FROM raised_at) + horizon_s FROM prealarms WHERE cleared_at IS NULL",
    )
    assert float(chart.get_attribute("data-x-max") or 0) == pytest.approx(float(horizon_end))  # type: ignore[arg-type]
    assert float(horizon_end) > dt.datetime.now(dt.UTC).timestamp()  # type: ignore[arg-type]
    shoot(browser, "21-curve-forecast")

    # The gas goes on rising, faster, over the level (to 1.15 % in 80 s): an alarm and its
    # incident, which shows the pre-alarm before it with its lead; the pre-alarm stays up.
    browser.get(f"{console.base}/console/mines/{console.mine}/board")
    wait(browser, lambda d: d.execute_script("return document.body.dataset.stream") == "open")
    wait(browser, lambda d: len(_prealarms(d)) == 1)
    over = [0.75 + 0.005 * (k + 1) for k in range(80)]
    asyncio.run(_write(console, [_messages(console, 600, over)]))
    tags = wait(
        browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#board div.incident .tag.prealarm")
    )
    (tag,) = tags
    lead_s = scalar(
        console.database_url,
        "SELECT EXTRACT(EPOCH FROM i.started_at - pa.raised_at) FROM incidents i, prealarms pa",
    )
    assert float(lead_s) > 60  # type: ignore[arg-type]
    assert tag.get_attribute("data-point") == face
    assert float(tag.get_attribute("data-lead") or 0) == pytest.approx(float(lead_s))  # type: ignore[arg-type]
    assert f"早于事件 {round(float(lead_s) / 60, 1)} 分钟" in tag.text  # type: ignore[arg-type]
    assert len(_prealarms(browser)) == 1  # still up while the gas is over the level
    shoot(browser, "22-board-incident-prealarm")

    # The gas falls back: the forecast drops under the clear level and the board clears it.
    fall = [0.3] * 120
    asyncio.run(_write(console, [_messages(console, 680, fall)]))
    still_up = scalar(
        console.database_url, "SELECT count(*) FROM prealarms WHERE cleared_at IS NULL"
    )
    assert still_up == 0  # cleared by the next writer (a restart: open pre-alarms restored)
    wait(browser, lambda d: _prealarms(d) == [])
    assert browser.find_elements(By.CSS_SELECTOR, "#board div.incident .tag.prealarm")
    shoot(browser, "23-board-prealarm-cleared")

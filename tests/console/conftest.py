"""Browser tests of the console: one headless Chromium (Debian's chromium and chromium-driver,
driven by Selenium) per test module, against the real API, database and broker of the test
session. The API (and the gateway, when a test publishes) run in a thread with their own event
loop, so that the tests can drive the browser with Selenium's blocking calls."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TypeVar

import psycopg
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from minewatch.embedded import PostgresServer
from tests.fix_stack import TEMPLATE_DB

CHROMIUM = Path(os.environ.get("MINEWATCH_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("MINEWATCH_TEST_CHROMEDRIVER", "/usr/bin/chromedriver"))
#: Screenshots of every page the tests visit (test artefacts; build/ is not committed).
SCREENSHOTS = Path(os.environ.get("MINEWATCH_TEST_SCREENSHOTS", "build/screenshots"))
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--window-size=1400,1000",
    "--lang=zh-CN",
)
WAIT_S = 10.0

T = TypeVar("T")
_databases = itertools.count()


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    """One Chromium for the test module, with a fresh profile."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail(f"{CHROMIUM} and {CHROMEDRIVER} are needed: deploy/setup.sh installs them")
    profile = tempfile.mkdtemp(prefix="minewatch-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def module_database(pg_server: PostgresServer) -> str:
    """A fresh, migrated database for the whole test module (its tests share one API)."""
    name = f"console_{os.getpid()}_{next(_databases)}"
    with psycopg.connect(pg_server.url("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DB}"')
    return pg_server.url(name)


@contextlib.contextmanager
def in_background(make: Callable[[], AbstractAsyncContextManager[T]]) -> Iterator[T]:
    """Enter the async context ``make()`` on an event loop of its own thread, for the block."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="console-stack", daemon=True)
    thread.start()
    manager = make()
    try:
        value = asyncio.run_coroutine_threadsafe(manager.__aenter__(), loop).result(60)  # type: ignore[arg-type]
        try:
            yield value
        finally:
            exit_ = manager.__aexit__(None, None, None)
            asyncio.run_coroutine_threadsafe(exit_, loop).result(60)  # type: ignore[arg-type]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def run_async(coroutine_factory: Callable[[], object]) -> object:
    """Run a coroutine to its end on a loop of its own (e.g. the simulator publishing)."""
    return asyncio.run(coroutine_factory())  # type: ignore[arg-type]


def shoot(driver: WebDriver, name: str) -> Path:
    """Save a screenshot of the whole page as a test artefact."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, max(700, min(int(height) + 40, 3000)))
    driver.save_screenshot(str(path))
    driver.set_window_size(1400, 1000)
    return path


def sign_in(driver: WebDriver, base: str, username: str, password: str, page: str = "") -> None:
    """Sign in through the sign-in page; wait until the browser has left it."""
    driver.get(f"{base}/console/login" + (f"?next={page}" if page else ""))
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "login-submit").click()
    WebDriverWait(driver, WAIT_S).until(lambda d: "/console/login" not in d.current_url)


def wait(driver: WebDriver, condition: Callable[[WebDriver], T], timeout: float = WAIT_S) -> T:
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(condition)


@contextlib.asynccontextmanager
async def stacked(*managers: AbstractAsyncContextManager[object]) -> AsyncIterator[list[object]]:
    async with contextlib.AsyncExitStack() as stack:
        yield [await stack.enter_async_context(m) for m in managers]

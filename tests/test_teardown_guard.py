"""The teardown guard turns a task that ignores cancellation into an error naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]

LEAKY_TESTS = """
import asyncio
import pytest

@pytest.fixture
def anyio_backend():
    return "asyncio"

@pytest.mark.anyio
async def test_leaves_a_stubborn_task():
    async def stubborn():
        while True:
            try:
                await asyncio.sleep(100)
            except asyncio.CancelledError:
                pass  # the bug: a retry loop that takes the cancel for a fault
    asyncio.create_task(stubborn(), name="stubborn-retry-loop")

@pytest.mark.anyio
async def test_leaves_a_task_that_stops():
    asyncio.create_task(asyncio.sleep(100))

def test_after_it():
    pass
"""


def test_a_task_that_ignores_cancel_fails_its_test_and_the_run_goes_on(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makeconftest(
        'pytest_plugins = ["tests.teardown_guard"]\n'
        "def pytest_configure(config):\n"
        "    import tests.teardown_guard as guard\n"
        "    guard.DEADLINE_S = 0.5\n"
    )
    pytester.makepyfile(test_leaky=LEAKY_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=120)
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_leaves_a_stubborn_task*",
            "*test_leaves_a_stubborn_task did not stop when cancelled*",
        ]
    )
    result.stdout.fnmatch_lines(["*stubborn-retry-loop*", "*await asyncio.sleep(100)*"])

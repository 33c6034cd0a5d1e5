"""A task that does not end when cancelled fails its test instead of hanging the run.

When an async test ends, the event loop's runner cancels every task still alive and waits for
all of them (``asyncio.runners._cancel_all_tasks``), with no deadline: one task that swallows
its cancellation (a retry loop that takes a library's error for a transient fault) hangs the
whole suite, and pytest-timeout does not fire during that wait. The same task would keep a
``minewatch`` command from stopping, so it is a bug of the product, not of the test.

This plugin gives that wait a deadline. Tasks still alive after it are cancelled again a few
times (a second cancel reaches a loop that is sleeping before its next retry); whatever is left
is written to stderr with its stack, and the test that owned the loop gets an error that names
the tasks. The run goes on.
"""

from __future__ import annotations

import asyncio
import asyncio.runners
import io
import sys
from collections.abc import Generator

import pytest

DEADLINE_S = 20.0
EXTRA_CANCELS = 3

_leftovers: list[str] = []
_original = asyncio.runners._cancel_all_tasks  # type: ignore[attr-defined]


def describe(task: asyncio.Task[object]) -> str:
    """A task and where it waits."""
    out = io.StringIO()
    task.print_stack(file=out)
    return f"{task!r}\n{out.getvalue()}"


def _cancel_all_tasks_with_deadline(loop: asyncio.AbstractEventLoop) -> None:
    to_cancel = asyncio.all_tasks(loop)
    pending = set(to_cancel)
    for _ in range(1 + EXTRA_CANCELS):
        if not pending:
            break
        for task in pending:
            task.cancel()
        _, pending = loop.run_until_complete(asyncio.wait(pending, timeout=DEADLINE_S))
    if pending:
        report = "\n".join(describe(task) for task in pending)
        print(f"\n[teardown_guard] tasks that ignored cancellation:\n{report}", file=sys.stderr)
        _leftovers.append(report)
    for task in to_cancel - pending:  # as asyncio does: an error on the way out is reported
        if not task.cancelled() and task.exception() is not None:
            loop.call_exception_handler(
                {
                    "message": "unhandled exception during asyncio.run() shutdown",
                    "exception": task.exception(),
                    "task": task,
                }
            )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    result = yield
    if _leftovers:
        report = "\n".join(_leftovers)
        _leftovers.clear()
        pytest.fail(
            f"tasks left running after {item.nodeid} did not stop when cancelled:\n{report}",
            pytrace=False,
        )
    return result


def pytest_configure(config: pytest.Config) -> None:
    asyncio.runners._cancel_all_tasks = _cancel_all_tasks_with_deadline  # type: ignore[attr-defined]


def pytest_unconfigure(config: pytest.Config) -> None:
    asyncio.runners._cancel_all_tasks = _original  # type: ignore[attr-defined]

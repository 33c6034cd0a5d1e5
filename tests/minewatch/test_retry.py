"""Retry loops end when their task is cancelled, even when a library swallows the cancel."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from minewatch.retry import resume_cancellation, stop_if_cancelled

ROUNDS = 20


async def _reconnect_loop(started: asyncio.Event, check: bool) -> int:
    """A reconnect loop around a library that turns a cancellation into its own error (as
    aiomqtt's Client.__aexit__ does when the broker's goodbye does not come in time); it
    gives up after ``ROUNDS`` rounds so that the test ends either way."""
    rounds = 0
    while rounds < ROUNDS:
        try:
            started.set()
            try:
                await asyncio.sleep(0.01 if rounds else 3600)
            except asyncio.CancelledError:
                raise ConnectionError("gave up waiting for the broker") from None
        except ConnectionError as error:
            if check:
                stop_if_cancelled(error)
        rounds += 1
    return rounds


@pytest.mark.anyio
async def test_a_cancel_replaced_by_another_error_still_stops_the_loop() -> None:
    started = asyncio.Event()
    task = asyncio.create_task(_reconnect_loop(started, check=True))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)


@pytest.mark.anyio
async def test_without_the_check_the_cancel_is_lost() -> None:
    started = asyncio.Event()
    task = asyncio.create_task(_reconnect_loop(started, check=False))
    await started.wait()
    task.cancel()
    assert await asyncio.wait_for(task, 2) == ROUNDS  # went round again: what the check stops


@pytest.mark.anyio
async def test_outside_a_cancellation_nothing_happens() -> None:
    stop_if_cancelled(ConnectionError("broker gone"))


@pytest.mark.anyio
async def test_a_cancel_lost_by_a_library_is_raised_again_at_the_next_loop_turn() -> None:
    """What Python 3.11's wait_for does when the cancel and the result arrive together: the
    CancelledError is dropped but the task stays "cancelling"; the loop must still end."""
    turns = 0

    async def loop_that_loses_a_cancel() -> None:
        nonlocal turns
        while True:
            resume_cancellation()
            turns += 1
            with contextlib.suppress(asyncio.CancelledError):  # lost, as in 3.11's wait_for
                await asyncio.sleep(0.01)

    task = asyncio.create_task(loop_that_loses_a_cancel())
    await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.wait({task}, timeout=5)  # without the check the task would run on for ever
    assert task.cancelled() and turns > 1

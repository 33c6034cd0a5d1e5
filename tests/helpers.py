"""Test helpers that run real components (gateway, API server) for the length of a block."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import psycopg

from minewatch.api import create_app
from minewatch.api.accounts import Hasher, Role, add_key
from minewatch.api.server import serve
from minewatch.embedded import free_port
from minewatch.ingest.gateway import Gateway
from minewatch.ingest.sources.base import Source
from minewatch.settings import ApiSettings, AuthSettings, GatewaySettings
from tests.teardown_guard import describe


async def _until_set(event: asyncio.Event, task: asyncio.Task[None], limit_s: float) -> None:
    waiter = asyncio.create_task(event.wait())
    done, _ = await asyncio.wait({waiter, task}, timeout=limit_s, return_when="FIRST_COMPLETED")
    waiter.cancel()
    if task in done:
        task.result()  # re-raises the component's error
        raise AssertionError("component stopped before it was ready")
    if waiter not in done:
        raise TimeoutError(f"component not ready within {limit_s}s")


#: how long a server task (gateway, API) may take to stop once cancelled (the gateway's last
#: flush is bounded by MINEWATCH_GATEWAY__STOP_FLUSH_S, 5 s by default)
STOP_DEADLINE_S = 60.0


@contextlib.asynccontextmanager
async def running_task(
    work: Awaitable[None], ready: asyncio.Event, name: str
) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``work`` for the block once ``ready`` is set; it must still run at the end."""
    task = asyncio.create_task(work, name=name)  # type: ignore[arg-type]
    try:
        await _until_set(ready, task, 20)
        yield task
        assert not task.done(), f"{name} stopped"
    finally:
        task.cancel()
        # A clean stop is part of the contract: a task that does not end on its cancel fails
        # the test with every task's stack, rather than hanging the run.
        done, _ = await asyncio.wait({task}, timeout=STOP_DEADLINE_S)
        if not done:
            raise AssertionError(
                f"{name} did not stop within {STOP_DEADLINE_S:.0f}s of its cancel:\n"
                + "\n".join(describe(t) for t in asyncio.all_tasks())
            )
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def running_gateway(
    database_url: str,
    mqtt_url: str,
    client_id: str,
    sources: list[Source] | None = None,
    **settings: object,
) -> AsyncIterator[Gateway]:
    """A gateway for the block: the configured sources, or ``sources`` (then no MQTT JSON
    subscription unless ``topics`` is given)."""
    if sources is not None:
        settings.setdefault("topics", [])
    config = GatewaySettings(**{"client_id": client_id, "batch_max_delay_ms": 20, **settings})  # type: ignore[arg-type]
    gateway = Gateway(config, database_url, mqtt_url, sources=sources)
    async with running_task(gateway.run(), gateway.ready, "the gateway"):
        yield gateway


#: Cheap hashing for tests (the production defaults cost about 0.4 s per hash on 2 cores, by
#: design); cookies over the tests' plain HTTP.
TEST_AUTH = AuthSettings(hash_time_cost=1, hash_memory_kib=1024, cookie_secure=False)


async def api_key(database_url: str, role: Role = Role.ADMIN, scope: str | None = None) -> str:
    """A new API key of ``role`` and ``scope`` (an admin's sees every mine)."""
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        return await add_key(conn, Hasher(1, 1024), f"test {role}", role, scope)


@contextlib.asynccontextmanager
async def running_api(
    database_url: str, signed_in: bool = True, api: ApiSettings | None = None,
    auth: AuthSettings = TEST_AUTH,
) -> AsyncIterator[str]:  # fmt: skip
    """Serve the API on a free port over real HTTP; yields its base URL, which carries an
    admin's API key as Basic credentials (httpx sends them) unless ``signed_in`` is false."""
    port = free_port()
    started = asyncio.Event()
    work = serve(create_app(database_url, api=api, auth=auth), "127.0.0.1", port, started)
    credentials = f"key:{await api_key(database_url)}@" if signed_in else ""
    async with running_task(work, started, "the API"):
        yield f"http://{credentials}127.0.0.1:{port}"


def scalar(database_url: str, sql: str, params: tuple[object, ...] = ()) -> object:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(sql, params).fetchone()  # type: ignore[arg-type]
    return None if row is None else row[0]


async def eventually(
    check: Callable[[], Awaitable[bool]] | Callable[[], bool], limit_s: float = 60.0
) -> None:
    """Wait until ``check()`` is true; fail after ``limit_s`` seconds.

    The default is generous on purpose: a passing check returns at once, and the suite runs on
    2-core machines loaded by other work, where 20 s was seen to be too short.
    """
    deadline = time.monotonic() + limit_s
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {limit_s}s")
        await asyncio.sleep(0.05)


def processes_mentioning(text: str) -> list[str]:
    """Command lines of running processes that contain ``text`` (e.g. a private data dir)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if text in cmdline:
                found.append(f"{proc.name}: {cmdline}")
    return found

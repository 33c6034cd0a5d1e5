"""Helpers shared by the personnel, production and video tests: the feed pipeline and an API
with the feed routers, each running for the length of a block."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from api import create_app
from api.routers import personnel, production, video
from api.server import serve
from ingest.feeds import FeedPipeline, FeedSettings
from minewatch.embedded import free_port
from minewatch.timeutil import now_us
from tests.helpers import _until_set, scalar


@contextlib.asynccontextmanager
async def running_feeds(
    database_url: str, mqtt_url: str, client_id: str, clock: Callable[[], int] = now_us,
    **settings: object,
) -> AsyncIterator[FeedPipeline]:  # fmt: skip
    config = FeedSettings(client_id=client_id, batch_max_delay_ms=20, **settings)  # type: ignore[arg-type]
    pipeline = FeedPipeline(config, database_url, mqtt_url, clock)
    task = asyncio.create_task(pipeline.run(), name="feeds")
    try:
        await _until_set(pipeline.ready, task, 20)
        yield pipeline
        assert not task.done(), "the feed pipeline stopped"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def running_feed_api(database_url: str) -> AsyncIterator[str]:
    """The API with the personnel, production and video routers, on a free port."""
    app = create_app(database_url)
    for module in (personnel, production, video):
        if not any(getattr(r, "path", "").startswith(module.router.prefix) for r in app.routes):
            app.include_router(module.router)
    port = free_port()
    started = asyncio.Event()
    task = asyncio.create_task(serve(app, "127.0.0.1", port, started))
    try:
        await _until_set(started, task, 20)
        yield f"http://127.0.0.1:{port}"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def watermark(database_url: str, source: str) -> int:
    """The highest sequence number stored for ``source`` (0 if none)."""
    seq = scalar(database_url, "SELECT seq FROM source_watermarks WHERE source = %s", (source,))
    return int(seq) if seq is not None else 0  # type: ignore[call-overload]

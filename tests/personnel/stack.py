"""Helpers shared by the personnel, production and video tests: the feed pipeline and an API
with the feed routers, each running for the length of a block."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

from minewatch.ingest.feeds import FeedPipeline, FeedSettings
from minewatch.timeutil import now_us
from tests.helpers import running_api, running_task, scalar


@contextlib.asynccontextmanager
async def running_feeds(
    database_url: str, mqtt_url: str, client_id: str, clock: Callable[[], int] = now_us,
    **settings: object,
) -> AsyncIterator[FeedPipeline]:  # fmt: skip
    config = FeedSettings(client_id=client_id, batch_max_delay_ms=20, **settings)  # type: ignore[arg-type]
    pipeline = FeedPipeline(config, database_url, mqtt_url, clock)
    async with running_task(pipeline.run(), pipeline.ready, "the feed pipeline"):
        yield pipeline


def running_feed_api(database_url: str) -> contextlib.AbstractAsyncContextManager[str]:
    """The API (its app includes the personnel, production and video routers)."""
    return running_api(database_url)


def watermark(database_url: str, source: str) -> int:
    """The highest sequence number stored for ``source`` (0 if none)."""
    seq = scalar(database_url, "SELECT seq FROM source_watermarks WHERE source = %s", (source,))
    return int(seq) if seq is not None else 0  # type: ignore[call-overload]

"""Running the API under uvicorn inside a caller-owned event loop (the CLI owns signals)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # Ctrl-C is handled by whoever runs the event loop, which cancels us


async def serve(app: FastAPI, host: str, port: int, started: asyncio.Event | None = None) -> None:
    """Serve until cancelled; on cancellation shut down cleanly (lifespan exit included)."""
    server = _Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    task = asyncio.create_task(server.serve(), name="uvicorn")
    try:
        if started is not None:
            while not server.started and not task.done():  # noqa: ASYNC110 (uvicorn has no event)
                await asyncio.sleep(0.02)
            started.set()
        await asyncio.shield(task)
    except asyncio.CancelledError:
        server.should_exit = True
        await task
        raise

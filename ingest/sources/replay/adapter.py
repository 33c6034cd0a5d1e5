"""Trace replay: a recorded trace (minewatch/trace.py) fed through the gateway's own pipeline.

The trace's mine definition goes first (as a ``meta`` message would), then its readings in
time order as contract messages of at most ``message_readings`` readings, paced on the wall
clock at ``speed`` times real time, or as fast as the pipeline takes them (``speed=None``;
the bounded queue is the brake). ``rebase_to_us`` shifts every time so that the trace starts
there (a demo that should look live); otherwise readings keep their recorded event times.

Replayed readings are acknowledged like any other; :attr:`finished` is set once every one of
them is durable, so a caller knows when the replay is complete.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np

from minewatch.ingest.contract import MetaMessage, SafetyMessage
from minewatch.ingest.sources.base import Delivery, Source
from minewatch.ingest.sources.replay.settings import ReplaySettings
from minewatch.trace import ReadingChunk, Trace


class TraceReplaySource(Source):
    """Not in the source registry: ``minewatch replay`` builds it for a trace and hands it to
    its own gateway (``Gateway(..., sources=[source])``)."""

    def __init__(
        self,
        trace: Trace,
        *,
        speed: float | None = None,
        rebase_to_us: int | None = None,
        message_readings: int = 5_000,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.settings = ReplaySettings(  # a ValueError for a speed that is not positive
            speed=speed, rebase_to_us=rebase_to_us, message_readings=message_readings
        )
        self.trace = trace
        self._speed = self.settings.speed
        self._shift_us = 0 if rebase_to_us is None else rebase_to_us - trace.start_us
        self._max = self.settings.message_readings
        self._progress = progress or (lambda n: None)
        self._codes = np.array(trace.codes, dtype=object)
        self.connected = asyncio.Event()
        self.finished = asyncio.Event()
        self.yielded = 0  # readings handed to the pipeline
        self._sent = 0  # deliveries handed over
        self._acked = 0
        self._exhausted = False

    async def deliveries(self) -> AsyncIterator[Delivery[Any]]:
        loop = asyncio.get_running_loop()
        mine = self.trace.definition.mine.code
        source = f"{mine}/replay"
        boot = int(time.time() * 1000)
        self.connected.set()
        self._sent += 1
        yield Delivery(MetaMessage(source, self.trace.definition), self._ack, loop.time())
        wall_start, event_start = loop.time(), self.trace.start_us
        seq = 0
        for chunk in self.trace.chunks():
            for part in _slices(chunk, self._max):
                if self._speed is not None:
                    due = wall_start + (int(part.time_us[0]) - event_start) / 1e6 / self._speed
                    await asyncio.sleep(max(0.0, due - loop.time()))
                seq += 1
                message = self._message(part, mine, source, boot, seq)
                self._sent += 1
                self.yielded += len(part)
                yield Delivery(message, self._ack, loop.time())
        self._exhausted = True
        self._check_finished()

    def _message(
        self, part: ReadingChunk, mine: str, source: str, boot: int, seq: int
    ) -> SafetyMessage:
        return SafetyMessage(
            source=source,
            mine=mine,
            substation="replay",
            boot=boot,
            seq=seq,
            time_us=part.time_us + self._shift_us,
            codes=self._codes[part.point].tolist(),
            value=part.value,
            value_ok=np.ones(len(part), bool),
            status=part.status.astype(np.int64),
            raw_values=part.value.tolist(),
        )

    def _ack(self) -> None:
        self._acked += 1
        self._check_finished()

    def _check_finished(self) -> None:
        if self._exhausted and self._acked == self._sent:
            self.finished.set()
        self._progress(self.yielded)


def _slices(chunk: ReadingChunk, size: int) -> list[ReadingChunk]:
    return [
        ReadingChunk(
            chunk.time_us[lo : lo + size],
            chunk.point[lo : lo + size],
            chunk.value[lo : lo + size],
            chunk.status[lo : lo + size],
        )
        for lo in range(0, len(chunk), size)
    ]

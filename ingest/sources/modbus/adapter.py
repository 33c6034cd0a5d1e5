"""Modbus TCP source: polls every mapped device once per cycle, yields one SafetyMessage each.

``async with ModbusPoller(register_map, config) as poller: async for message in poller: ...``

One task per device, each with its own connection, so a slow or dead device delays nobody
else; a semaphore bounds the requests in flight and a bounded queue carries the messages, so
a consumer that falls behind pauses polling (cycles are then skipped, never queued without
bound). The register maths is :mod:`minewatch.modbus_map`; this module only does I/O.

Every device yields one message per cycle, also when it cannot be read: then each of its
points carries status 16 (分站故障), value 0.0 as a placeholder and ``value_ok`` True, so the
fault reaches storage and alarms like any reading (docs/modbus.md, "Faults"). Timeouts and
connection errors also close the connection; it is reopened with backoff while the fault
messages keep coming at the cycle's pace. A Modbus exception response (the device answered
"no") keeps the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
import tomllib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from minewatch.backoff import Backoff
from minewatch.codes import PointStatus
from minewatch.ingest.contract import SafetyMessage, message_from_bytes, message_to_bytes
from minewatch.ingest.metrics import GatewayMetrics
from minewatch.ingest.sources.base import Delivery, Source, SourceContext, no_ack
from minewatch.ingest.sources.modbus.settings import ModbusSettings
from minewatch.ingest.sources.modbus.spool import Spool, SpoolFull
from minewatch.modbus_map import ModbusMap, RegisterKind, RegisterPlan, compile_plan
from minewatch.retry import stop_if_cancelled
from minewatch.settings import GatewaySettings

log = logging.getLogger(__name__)

_WAITING = "waiting to reconnect"


class ModbusPollerConfig(BaseModel):
    """How the poller paces, bounds and retries (a section for ``Settings``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cycle_s: float = Field(1.0, gt=0, le=30, description="Polling cycle (AQ 6201: <= 30 s).")
    timeout_s: float = Field(
        0.8,
        gt=0,
        description="Deadline of one device's cycle (connect and every read); at most cycle_s, "
        "so that every device yields a message every cycle.",
    )
    max_in_flight: int = Field(
        64,
        ge=1,
        le=4096,
        description="Devices being connected to or read at the same time.",
    )
    queue_size: int = Field(1024, ge=1, le=1_000_000, description="Messages not yet consumed.")
    max_devices: int = Field(1024, ge=1, description="Refuse larger maps (one task each).")
    backoff_initial_s: float = Field(0.2, gt=0)
    backoff_max_s: float = Field(10.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> ModbusPollerConfig:
        if self.timeout_s > self.cycle_s:
            raise ValueError("timeout_s must not exceed cycle_s")
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError("backoff_max_s must not be below backoff_initial_s")
        return self


class ModbusPollerError(RuntimeError):
    """A device task failed for a reason that is not the device's fault (a bug)."""


class _DeviceFault(Exception):
    """This cycle of this device yields fault readings; ``reconnect``: drop the connection."""

    def __init__(self, detail: str, *, reconnect: bool) -> None:
        super().__init__(detail)
        self.reconnect = reconnect


@dataclass(frozen=True, slots=True)
class _Failed:
    error: BaseException


def source_of(mine: str, substation: str) -> str:
    """The sequence-numbering unit of a device's messages."""
    return f"{mine}/modbus/{substation}"


def fault_message(
    mine: str, plan: RegisterPlan, *, boot: int, seq: int, time_us: int
) -> SafetyMessage:
    """Every point of ``plan`` with status 分站故障 and the placeholder value 0.0."""
    n = len(plan)
    return SafetyMessage(
        source=source_of(mine, plan.substation),
        mine=mine,
        substation=plan.substation,
        boot=boot,
        seq=seq,
        time_us=np.full(n, time_us, np.int64),
        codes=list(plan.codes),
        value=np.zeros(n, np.float64),
        value_ok=np.ones(n, bool),
        status=np.full(n, int(PointStatus.SUBSTATION_FAULT), np.int64),
        raw_values=[None] * n,
    )


def readings_message(
    mine: str,
    plan: RegisterPlan,
    registers: list[list[int]],
    *,
    boot: int,
    seq: int,
    time_us: int,
) -> SafetyMessage:
    """The decoded answers to ``plan.blocks`` as a message (pure; raises ValueError)."""
    readings = plan.decode(plan.image_from_blocks(registers))
    n = len(plan)
    return SafetyMessage(
        source=source_of(mine, plan.substation),
        mine=mine,
        substation=plan.substation,
        boot=boot,
        seq=seq,
        time_us=np.full(n, time_us, np.int64),
        codes=list(plan.codes),
        value=readings.value,
        value_ok=np.ones(n, bool),  # NaN/inf are numbers: validation refuses them as NOT_FINITE
        status=readings.status,
        raw_values=readings.value.tolist(),
    )


class ModbusPoller:
    """Polls every device of ``register_map``; iterate it for :class:`SafetyMessage` objects.

    An async context manager: entering starts one named task per device, leaving cancels
    them and closes every connection. Messages still queued when leaving are dropped; there is
    nothing to acknowledge (a poll cannot be redelivered), the next cycle reads afresh.
    """

    def __init__(self, register_map: ModbusMap, config: ModbusPollerConfig | None = None) -> None:
        self.config = config or ModbusPollerConfig()
        if len(register_map.substations) > self.config.max_devices:
            raise ValueError(
                f"{len(register_map.substations)} devices > max_devices={self.config.max_devices}"
            )
        self.mine = register_map.mine
        self.plans = tuple(compile_plan(s) for s in register_map.substations)
        self.boot = 0
        self._queue: asyncio.Queue[SafetyMessage | _Failed] = asyncio.Queue(1)
        self._slots = asyncio.Semaphore(self.config.max_in_flight)
        self._tasks: list[asyncio.Task[None]] = []
        self._faulty: dict[str, str] = {}

    @property
    def faults(self) -> dict[str, str]:
        """Substations whose last cycle was a fault, with the reason."""
        return dict(self._faulty)

    async def __aenter__(self) -> ModbusPoller:
        if self._tasks:
            raise RuntimeError("the poller is already running")
        self.boot = time.time_ns() // 1_000_000
        self._queue = asyncio.Queue(self.config.queue_size)  # nothing left from an earlier run
        self._faulty = {}
        start = asyncio.get_running_loop().time()
        self._tasks = [
            asyncio.create_task(self._poll(plan, start), name=f"modbus-poll-{plan.substation}")
            for plan in self.plans
        ]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def __aiter__(self) -> AsyncIterator[SafetyMessage]:
        return self.messages()

    async def messages(self) -> AsyncIterator[SafetyMessage]:
        """Messages of every device, in the order they were polled; raises on a bug."""
        if not self._tasks:
            raise RuntimeError("enter the poller (async with) before iterating it")
        while True:
            item = await self._queue.get()
            if isinstance(item, _Failed):
                raise ModbusPollerError("a device task failed") from item.error
            yield item

    async def _poll(self, plan: RegisterPlan, start: float) -> None:
        """One device, forever: read or fault once per cycle, on the cycle's grid."""
        loop = asyncio.get_running_loop()
        cycle_s = self.config.cycle_s
        backoff = Backoff(initial_s=self.config.backoff_initial_s, max_s=self.config.backoff_max_s)
        client: AsyncModbusTcpClient | None = None
        retry_at = 0.0  # loop time before which no reconnection is tried
        seq = 0
        slot = start
        try:
            while True:
                time_us = time.time_ns() // 1000
                seq += 1
                try:
                    if client is None and loop.time() < retry_at:
                        raise _DeviceFault(_WAITING, reconnect=False)
                    async with self._slots, asyncio.timeout(self.config.timeout_s):
                        if client is None:
                            client = await self._connect(plan)
                        registers = await self._read(client, plan)
                    message = readings_message(
                        self.mine, plan, registers, boot=self.boot, seq=seq, time_us=time_us
                    )
                    backoff.reset()
                    if self._faulty.pop(plan.substation, None) is not None:
                        log.info("substation %s answers again", plan.substation)
                except (_DeviceFault, TimeoutError, ModbusException, OSError, ValueError) as exc:
                    stop_if_cancelled(exc)
                    fault = exc if isinstance(exc, _DeviceFault) else _classify(exc)
                    if fault.reconnect:
                        if client is not None:
                            client.close()
                            client = None
                        retry_at = loop.time() + backoff.next_delay()
                    self._note_fault(plan.substation, str(fault))
                    message = fault_message(
                        self.mine, plan, boot=self.boot, seq=seq, time_us=time_us
                    )
                await self._queue.put(message)
                slot += cycle_s
                now = loop.time()
                if slot < now:  # overran (slow consumer or slow device): skip missed cycles
                    slot += math.ceil((now - slot) / cycle_s) * cycle_s
                await asyncio.sleep(slot - now)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("modbus task of substation %s failed", plan.substation)
            await self._queue.put(_Failed(exc))
            raise
        finally:
            if client is not None:
                client.close()

    async def _connect(self, plan: RegisterPlan) -> AsyncModbusTcpClient:
        device = plan.device
        client = AsyncModbusTcpClient(
            device.host,
            port=device.port,
            name=f"{self.mine}/{plan.substation}",
            timeout=self.config.timeout_s,
            retries=0,
            reconnect_delay=0,  # reconnection is ours, with backoff
        )
        try:
            connected = await client.connect()
        except BaseException:
            client.close()
            raise
        if not connected:
            client.close()
            raise _DeviceFault(f"cannot connect to {device.host}:{device.port}", reconnect=True)
        return client

    async def _read(self, client: AsyncModbusTcpClient, plan: RegisterPlan) -> list[list[int]]:
        if not client.connected:
            raise _DeviceFault("connection lost", reconnect=True)
        read = (
            client.read_input_registers
            if plan.register_kind is RegisterKind.INPUT
            else client.read_holding_registers
        )
        answers = []
        for block in plan.blocks:
            response = await read(block.address, count=block.count, device_id=plan.device.unit_id)
            if response.isError():
                code = getattr(response, "exception_code", None)
                raise _DeviceFault(
                    f"exception {code} reading {block.count} registers at {block.address}",
                    reconnect=False,
                )
            answers.append(list(response.registers))
        return answers

    def _note_fault(self, substation: str, reason: str) -> None:
        if self._faulty.get(substation) is None:
            log.warning("substation %s unreadable: %s", substation, reason)
        if reason != _WAITING or substation not in self._faulty:
            self._faulty[substation] = reason  # keep why, not "waiting", while backing off


def _classify(exc: BaseException) -> _DeviceFault:
    if isinstance(exc, TimeoutError):
        return _DeviceFault("no answer in time", reconnect=True)
    if isinstance(exc, ValueError):  # an answer of the wrong length: resynchronise
        return _DeviceFault(f"malformed answer: {exc}", reconnect=True)
    return _DeviceFault(f"{type(exc).__name__}: {exc}", reconnect=True)


class ModbusSource(Source):
    """The poller as a gateway source.

    Devices keep no history, so every polled message is first appended to a durable spool
    (:mod:`.spool`) by a task that never waits for the database; the pipeline reads the
    spool in order and acknowledges each record once it is stored. Polling therefore goes on
    through a database outage, and a gateway crash loses nothing that was polled. Without a
    spool directory the messages go straight to the pipeline (tests, throwaway runs).
    """

    def __init__(
        self,
        register_map: ModbusMap,
        config: ModbusPollerConfig | None = None,
        spool_dir: Path | None = None,
    ) -> None:
        self._poller = ModbusPoller(register_map, config)
        self._spool_dir = spool_dir
        self._spool: Spool | None = None
        self.connected = asyncio.Event()

    def spool_depth(self) -> int:
        """Records in the durable spool not yet stored (0 without a spool, or before it opens)."""
        return 0 if self._spool is None else self._spool.unacked

    def bind_metrics(self, metrics: GatewayMetrics, name: str) -> None:
        """The spool's depth, read when /metrics is scraped."""
        metrics.spool_depth.labels(name).set_function(self.spool_depth)

    async def deliveries(self) -> AsyncIterator[Delivery[SafetyMessage]]:
        loop = asyncio.get_running_loop()
        async with self._poller as poller:
            if self._spool_dir is None:
                self.connected.set()
                async for message in poller:
                    yield Delivery(message, no_ack, loop.time())
                return
            spool = self._spool = Spool(self._spool_dir)
            writer = asyncio.create_task(_spool_polls(poller, spool), name="modbus-spool")
            self.connected.set()
            try:
                while True:
                    reading = asyncio.ensure_future(spool.next())
                    await asyncio.wait({reading, writer}, return_when=asyncio.FIRST_COMPLETED)
                    if not reading.done():
                        reading.cancel()
                        writer.result()  # the writer failed: raise its error here
                        raise ModbusPollerError("the spool writer stopped")
                    record, payload = reading.result()
                    ack = functools.partial(spool.ack, record)
                    yield Delivery(message_from_bytes(payload), ack, loop.time())
            finally:
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await writer
                spool.close()


async def _spool_polls(poller: ModbusPoller, spool: Spool) -> None:
    """Poller -> spool, never waiting for the pipeline; a full spool pauses polling."""
    async for message in poller:
        data = message_to_bytes(message)
        while True:
            try:
                spool.append(data)
                break
            except SpoolFull:
                log.error("spool %s is full: polling paused", spool.directory)
                await asyncio.sleep(1.0)


def create(gateway: GatewaySettings, context: SourceContext) -> ModbusSource | None:
    """The registry's factory: the poller of the configured register map, spooled."""
    settings = ModbusSettings.from_gateway(gateway)
    if settings is None:
        return None
    with open(settings.map_file, "rb") as handle:
        register_map = ModbusMap.model_validate(tomllib.load(handle))
    config = ModbusPollerConfig(cycle_s=settings.cycle_s, timeout_s=settings.timeout_s)
    return ModbusSource(register_map, config, settings.spool_dir)

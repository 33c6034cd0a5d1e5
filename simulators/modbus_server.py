"""Serves a simulated mine over Modbus TCP: each substation is its own device (docs/modbus.md).

Every substation gets a pymodbus ``ModbusTcpServer`` on 127.0.0.1 (a port the OS picks,
unless the register map names one) playing one ``SimDevice``. The registers follow the
register map (by default :func:`minewatch.modbus_map.default_register_map`) and hold the values
of the last cycle applied with :meth:`ModbusMineServer.step`, or of the cycle the background
clock last produced when ``realtime`` is set.

The device's registers are refreshed from our own image inside pymodbus's ``action`` hook,
at the moment a request is answered, so no pymodbus internals are touched; the same hook
delays answers to play a slow or dead device (:meth:`ModbusMineServer.set_delay`). The
registers are read-only to Modbus clients (writes get exception 2).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

import numpy as np
import numpy.typing as npt
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from minewatch.modbus_map import (
    DeviceAddress,
    ModbusMap,
    RegisterPlan,
    SubstationMap,
    WordOrder,
    compile_plan,
    default_register_map,
)
from minewatch.simulators.model import Cycle, SimulatedMine

log = logging.getLogger(__name__)

_READS = frozenset({3, 4})  # read holding / input registers
_STOP_WAIT_S = 2.0  # how long stopping waits for answers held back by a delay


@dataclass(eq=False)
class _Device:
    """One simulated device: its plan, its current image, how it misbehaves."""

    plan: RegisterPlan
    rows: npt.NDArray[np.intp]  # the mine's point index of each plan point
    host: str
    port: int
    image: list[int]
    delay_s: float = 0.0
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    held: int = 0  # requests being answered right now
    idle: asyncio.Event = field(default_factory=asyncio.Event)  # set while held == 0
    server: ModbusTcpServer | None = None


class ModbusMineServer:
    """Modbus TCP devices for every substation of ``mine``; an async context manager.

    ``register_map`` fixes hosts, ports, unit ids and the layout; when it is omitted the
    default layout is served on free ports of ``host`` (in ``word_order``) and
    :attr:`register_map` says where, once entered. Entering applies the mine's first cycle.
    """

    def __init__(
        self,
        mine: SimulatedMine,
        register_map: ModbusMap | None = None,
        *,
        host: str = "127.0.0.1",
        word_order: WordOrder = WordOrder.ABCD,
        realtime: bool = False,
    ) -> None:
        self.mine = mine
        self._given_map = register_map
        self._host = host
        self._word_order = word_order
        self._realtime = realtime
        self._map: ModbusMap | None = None
        self._devices: dict[str, _Device] = {}
        self._clock: asyncio.Task[None] | None = None
        self.cycle: Cycle | None = None  # the cycle the registers hold

    @property
    def register_map(self) -> ModbusMap:
        """Where each device listens and what it holds (available once entered)."""
        if self._map is None:
            raise RuntimeError("the server is not running")
        return self._map

    async def __aenter__(self) -> ModbusMineServer:
        try:
            await self._start()
        except BaseException:
            await self._stop_all()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stop_all()

    async def _start(self) -> None:
        mine_map = self._given_map
        if mine_map is None:
            # Layout first (ports do not change addresses), then bind port 0 and learn the port.
            placeholder = DeviceAddress(host=self._host, port=502)
            layout = default_register_map(
                self.mine.definition,
                {s.code: placeholder for s in self.mine.definition.substations},
                word_order=self._word_order,
            )
        else:
            layout = mine_map
        if layout.mine != self.mine.definition.mine.code:
            raise ValueError(f"register map of mine {layout.mine}, not of this mine")
        if mine_map is not None:
            endpoints = [(s.device.host, s.device.port) for s in mine_map.substations]
            if len(set(endpoints)) != len(endpoints):
                # One server per substation; a gateway serving several unit ids on one port
                # is not simulated.
                raise ValueError("each substation needs its own host:port to be simulated")
        index = {code: i for i, code in enumerate(self.mine.codes)}
        for station in layout.substations:
            plan = compile_plan(station)
            missing = [code for code in plan.codes if code not in index]
            if missing:
                raise ValueError(f"substation {station.substation}: unknown points {missing}")
            device = _Device(
                plan=plan,
                rows=np.array([index[code] for code in plan.codes], np.intp),
                host=station.device.host,
                port=0 if mine_map is None else station.device.port,
                image=[0] * plan.span,
            )
            self._devices[station.substation] = device
            await self._listen(device)
        if mine_map is None:
            mine_map = default_register_map(
                self.mine.definition,
                {
                    code: DeviceAddress(host=d.host, port=d.port, unit_id=d.plan.device.unit_id)
                    for code, d in self._devices.items()
                },
                word_order=self._word_order,
            )
        self._map = mine_map
        await self.step()
        if self._realtime:
            self._clock = asyncio.create_task(self._tick(), name="modbus-sim-clock")

    async def _listen(self, device: _Device) -> None:
        server = ModbusTcpServer(self._sim_device(device), address=(device.host, device.port))
        await server.serve_forever(background=True)
        listener = server.transport
        if not isinstance(listener, asyncio.Server):  # pragma: no cover - pymodbus internals
            raise RuntimeError("pymodbus server has no TCP listener")
        device.port = int(listener.sockets[0].getsockname()[1])
        device.server = server
        log.info("substation %s served on %s:%s", device.plan.substation, device.host, device.port)

    async def _tick(self) -> None:
        """Realtime: one cycle per ``simulation.cycle_s`` on the loop's clock."""
        loop = asyncio.get_running_loop()
        cycle_s = self.mine.config.simulation.cycle_s
        start = loop.time()
        ticks = 0
        while True:
            ticks += 1
            await asyncio.sleep(max(0.0, start + ticks * cycle_s - loop.time()))
            await self.step()

    def _sim_device(self, device: _Device) -> SimDevice:
        """A pymodbus device with read-only registers where the plan reads them."""
        plan = device.plan
        used = np.zeros(plan.span, bool)
        for block in plan.blocks:
            used[block.address - plan.start : block.address - plan.start + block.count] = True
        # Runs of read registers; the gaps between them answer exception 2, as devices do.
        edges = np.flatnonzero(np.diff(np.concatenate(([0], used.astype(np.int8), [0]))))
        simdata = [
            SimData(
                plan.start + int(first),
                values=[0] * int(end - first),
                datatype=DataType.REGISTERS,
                readonly=True,
            )
            for first, end in zip(edges[::2], edges[1::2], strict=True)
        ]
        return SimDevice(
            plan.device.unit_id, simdata=simdata, action=functools.partial(self._answer, device)
        )

    async def step(self) -> Cycle:
        """Advance the simulated mine by one cycle and make every device hold its values."""
        cycle = self.mine.next_cycle()
        self.apply(cycle)
        return cycle

    def apply(self, cycle: Cycle) -> None:
        """Make every device hold ``cycle``'s values (statuses of points with a register)."""
        for device in self._devices.values():
            status = np.where(device.plan.has_status, cycle.status[device.rows], 0)
            device.image = device.plan.encode(cycle.value[device.rows], status).tolist()
        self.cycle = cycle

    def set_delay(self, substation: str, seconds: float) -> None:
        """Answer ``substation``'s reads after ``seconds``; ``math.inf``: never answer.

        Requests already held back are woken and answered at once (their clients have
        usually given up); 0 restores a prompt device.
        """
        if seconds < 0 or math.isnan(seconds):
            raise ValueError("a delay is 0 or more seconds")
        device = self._devices[substation]
        device.delay_s = seconds
        device.wake.set()
        device.wake = asyncio.Event()

    def address(self, substation: str) -> DeviceAddress:
        return self.register_map.substation(substation).device

    async def stop_device(self, substation: str) -> None:
        """Take one device off the network (its port refuses connections) until restarted."""
        await self._stop(self._devices[substation])

    async def start_device(self, substation: str) -> None:
        """Bring a stopped device back on the same host and port."""
        device = self._devices[substation]
        if device.server is None:
            await self._listen(device)

    async def _answer(
        self,
        device: _Device,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """pymodbus's ``action`` hook: hold the answer back if asked, then fill the registers."""
        if set_values is not None or function_code not in _READS:
            return ExcCodes.ILLEGAL_FUNCTION
        device.held += 1
        device.idle.clear()
        try:
            if device.delay_s > 0:
                timeout = None if math.isinf(device.delay_s) else device.delay_s
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(device.wake.wait(), timeout)
            at = device.plan.start - start_address
            registers[at : at + len(device.image)] = device.image
            return None
        finally:
            device.held -= 1
            if not device.held:
                device.idle.set()

    async def _stop(self, device: _Device) -> None:
        server, device.server = device.server, None
        if server is None:
            return
        listener = server.transport
        device.wake.set()  # answers held back by a delay go out now, not after the loop ends
        device.wake = asyncio.Event()
        if device.held:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(device.idle.wait(), _STOP_WAIT_S)
        await asyncio.sleep(0)  # let pymodbus send what the hook just released
        await server.shutdown()
        if isinstance(listener, asyncio.Server):
            await listener.wait_closed()
        log.info("substation %s stopped", device.plan.substation)

    async def _stop_all(self) -> None:
        if self._clock is not None:
            self._clock.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._clock
            self._clock = None
        for device in self._devices.values():
            await self._stop(device)


# -- `minewatch simulate --modbus`: the simulated mine for a user's own poller --------------------


def fixed_port_map(
    mine: SimulatedMine, host: str, first_port: int, word_order: WordOrder = WordOrder.ABCD
) -> ModbusMap:
    """The default layout with substation ``k`` (in definition order) on ``first_port + k``."""
    stations = [s.code for s in mine.definition.substations]
    return default_register_map(
        mine.definition,
        {code: DeviceAddress(host=host, port=first_port + k) for k, code in enumerate(stations)},
        word_order=word_order,
    )


def mbpoll_commands(station_map: SubstationMap) -> list[str]:
    """mbpoll command lines (a Modbus client that is not pymodbus) that read one device of the
    default layout once: every register raw, then the first point's float32 value."""
    device = station_map.device
    first = station_map.points[0]
    kind = "3" if station_map.register_kind == "input" else "4"
    span = max(p.status_address or p.address for p in station_map.points) + 1
    order = "-B " if first.word_order == WordOrder.ABCD else ""
    common = f"-m tcp -a {device.unit_id} -0 -1 -p {device.port}"
    return [
        f"mbpoll {common} -t {kind} -r 0 -c {min(span, 125)} {device.host}",
        f"mbpoll {common} -t {kind}:float {order}-r {first.address} -c 1 {device.host}",
    ]


async def serve_until_cancelled(
    mine: SimulatedMine,
    register_map: ModbusMap | None,
    host: str,
    on_ready: Callable[[ModbusMap], None],
) -> None:
    """Serve ``mine`` in real time (one cycle per ``simulation.cycle_s``) until cancelled;
    ``on_ready`` gets the register map once every device listens."""
    async with ModbusMineServer(mine, register_map, host=host, realtime=True) as server:
        on_ready(server.register_map)
        await asyncio.Event().wait()

"""The Modbus poller against real pymodbus servers playing the simulated mine's substations."""

from __future__ import annotations

import asyncio
import contextlib
import math
import struct
import time
from collections.abc import AsyncIterator, Callable

import numpy as np
import pytest
from pydantic import ValidationError
from pymodbus.client import AsyncModbusTcpClient

import minewatch.ingest.sources.modbus.adapter as modbus_source
from minewatch.codes import PointStatus
from minewatch.embedded import free_port
from minewatch.ingest.contract import SafetyMessage
from minewatch.ingest.sources.modbus.adapter import (
    ModbusPoller,
    ModbusPollerConfig,
    ModbusPollerError,
)
from minewatch.modbus_map import (
    DataType,
    DeviceAddress,
    ModbusMap,
    PointRegister,
    RegisterKind,
    SubstationMap,
    WordOrder,
    default_register_map,
)
from minewatch.simulators.config import example_mine_path, load_mine_config
from minewatch.simulators.modbus_server import ModbusMineServer
from minewatch.simulators.model import SimulatedMine

pytestmark = pytest.mark.anyio

FAST = ModbusPollerConfig(cycle_s=0.05, timeout_s=0.05, backoff_initial_s=0.02, backoff_max_s=0.1)
FAULT = int(PointStatus.SUBSTATION_FAULT)
DEADLINE_S = 5.0  # a test waiting this long for messages has failed


def small_mine() -> SimulatedMine:
    return SimulatedMine(load_mine_config(example_mine_path()))


def now_us() -> int:
    return time.time_ns() // 1000


def station_rows(mine: SimulatedMine, station: str) -> np.ndarray:
    return np.flatnonzero(mine.substation_of == station)


async def collect(
    messages: AsyncIterator[SafetyMessage],
    done: Callable[[list[SafetyMessage]], bool],
) -> list[SafetyMessage]:
    """Messages until ``done`` says enough (fails the test after ``DEADLINE_S``)."""
    got: list[SafetyMessage] = []
    async with asyncio.timeout(DEADLINE_S):
        while not done(got):
            got.append(await anext(messages))
    return got


def polled_after(messages: list[SafetyMessage], station: str, after_us: int) -> list:
    return [m for m in messages if m.substation == station and m.time_us[0] > after_us]


def is_fault(message: SafetyMessage) -> bool:
    return bool(np.all(message.status == FAULT) and np.all(message.value == 0.0))


@pytest.mark.parametrize("order", list(WordOrder))
async def test_polled_values_equal_the_simulated_cycle_in_every_word_order(
    order: WordOrder,
) -> None:
    mine = small_mine()
    async with (
        ModbusMineServer(mine, word_order=order) as server,
        ModbusPoller(server.register_map, FAST) as poller,
        contextlib.aclosing(poller.messages()) as messages,
    ):
        stations = [s.code for s in mine.definition.substations]
        everything: list[SafetyMessage] = []
        for _ in range(3):
            # The poller stamps a message when it starts the cycle, before reading, and the
            # step does not yield: a message stamped after ``before`` read the new registers.
            before = now_us()
            cycle = await server.step()
            got = await collect(
                messages,
                lambda got, before=before: all(polled_after(got, s, before) for s in stations),
            )
            everything += got
            for station in stations:
                message = polled_after(got, station, before)[0]
                rows = station_rows(mine, station)
                assert message.source == f"{mine.definition.mine.code}/modbus/{station}"
                assert message.mine == mine.definition.mine.code
                assert message.boot == poller.boot
                assert message.codes == [mine.codes[i] for i in rows]
                assert message.value.tolist() == cycle.value[rows].tolist()  # exact
                assert message.status.tolist() == cycle.status[rows].tolist()
                assert message.value_ok.all()
                assert np.all(message.time_us == message.time_us[0])
    by_station: dict[str, list[int]] = {}
    for message in everything:
        by_station.setdefault(message.substation, []).append(message.seq)
    for seqs in by_station.values():
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # +1 per device and cycle


async def test_a_custom_map_of_scaled_integers_on_fixed_ports_polls_the_same_values() -> None:
    mine = small_mine()
    kinds = [
        {"data_type": DataType.UINT16, "scale": 0.01, "word_order": WordOrder.ABCD},
        {"data_type": DataType.INT16, "scale": 0.01, "offset": -10.0, "word_order": WordOrder.BADC},
        {"data_type": DataType.FLOAT32, "word_order": WordOrder.DCBA},
    ]
    stations = []
    for station in mine.definition.substations:
        codes = [mine.codes[i] for i in station_rows(mine, station.code)]
        points, address = [], 100  # not at 0, with a status register before each value
        for k, code in enumerate(codes):
            kind = kinds[k % len(kinds)]
            points.append(
                PointRegister(code=code, address=address + 1, status_address=address, **kind)
            )
            address += 1 + kind["data_type"].width
        stations.append(
            SubstationMap(
                substation=station.code,
                device=DeviceAddress(host="127.0.0.1", port=free_port(), unit_id=7),
                register_kind=RegisterKind.HOLDING,
                points=tuple(points),
            )
        )
    register_map = ModbusMap(mine=mine.definition.mine.code, substations=tuple(stations))
    async with (
        ModbusMineServer(mine, register_map) as server,
        ModbusPoller(register_map, FAST) as poller,
        contextlib.aclosing(poller.messages()) as messages,
    ):
        assert server.register_map == register_map
        before = now_us()
        cycle = await server.step()
        names = [s.code for s in mine.definition.substations]
        got = await collect(messages, lambda got: all(polled_after(got, s, before) for s in names))
    for name in names:
        rows = station_rows(mine, name)
        message = polled_after(got, name, before)[0]
        assert message.value.tolist() == cycle.value[rows].tolist()
        assert not message.status.any()


@pytest.mark.parametrize("order", list(WordOrder))
async def test_simulated_device_holds_the_bytes_where_the_word_order_puts_them(
    order: WordOrder,
) -> None:
    mine = small_mine()
    async with ModbusMineServer(mine, word_order=order) as server:
        address = server.address("001")
        client = AsyncModbusTcpClient(address.host, port=address.port, timeout=1, retries=0)
        try:
            assert await client.connect()
            n = len(station_rows(mine, "001"))
            answer = await client.read_input_registers(0, count=3 * n, device_id=address.unit_id)
            assert not answer.isError()
            assert server.cycle is not None
            for k, i in enumerate(station_rows(mine, "001")):
                a, b, c, d = struct.pack(">f", server.cycle.value[i])  # independent of our codec
                expected = {
                    WordOrder.ABCD: [a << 8 | b, c << 8 | d],
                    WordOrder.CDAB: [c << 8 | d, a << 8 | b],
                    WordOrder.BADC: [b << 8 | a, d << 8 | c],
                    WordOrder.DCBA: [d << 8 | c, b << 8 | a],
                }[order]
                assert answer.registers[3 * k : 3 * k + 2] == expected
                assert answer.registers[3 * k + 2] == server.cycle.status[i]
            beyond = await client.read_input_registers(3 * n, count=1, device_id=1)
            assert beyond.isError() and beyond.exception_code == 2  # unmapped: illegal address
            write = await client.write_registers(0, [1, 2], device_id=1)
            assert write.isError()  # the simulated registers are read-only
        finally:
            client.close()


async def test_an_unresponsive_device_does_not_delay_the_others() -> None:
    mine = small_mine()
    # The timeout is long next to a healthy answer (a few ms), so "not delayed by the dead
    # device" is told apart from scheduling jitter on a loaded machine.
    config = ModbusPollerConfig(
        cycle_s=0.6, timeout_s=0.4, backoff_initial_s=0.05, backoff_max_s=0.1
    )
    async with ModbusMineServer(mine) as server:
        server.set_delay("002", math.inf)  # accepts connections, never answers
        server.set_delay("004", 0.03)  # slow, but within the timeout
        loop = asyncio.get_running_loop()
        arrivals: list[tuple[float, SafetyMessage]] = []
        async with ModbusPoller(server.register_map, config) as poller:
            start = loop.time()
            async with contextlib.aclosing(poller.messages()) as messages:
                while loop.time() - start < 3.1:
                    message = await anext(messages)
                    arrivals.append((loop.time() - start, message))
            faults = poller.faults
    assert faults.keys() == {"002"} and "no answer in time" in faults["002"]
    for station in [s.code for s in mine.definition.substations]:
        mine_rows = station_rows(mine, station)
        seen = [(t, m) for t, m in arrivals if m.substation == station]
        assert len(seen) >= 5  # one message per 0.6 s cycle, the dead device included
        for t, message in seen:
            slot = (message.seq - 1) * config.cycle_s
            if station == "002":
                assert is_fault(message) and message.value_ok.all()
                assert t - slot < config.timeout_s + config.cycle_s / 2
            else:
                assert message.status.tolist() == [0] * len(mine_rows)
                assert t - slot < config.timeout_s, f"{station} waited {t - slot:.3f}s"


async def test_a_stopped_device_yields_fault_messages_and_the_poller_recovers() -> None:
    mine = small_mine()
    async with (
        ModbusMineServer(mine) as server,
        ModbusPoller(server.register_map, FAST) as poller,
        contextlib.aclosing(poller.messages()) as messages,
    ):
        stations = [s.code for s in mine.definition.substations]
        got = await collect(messages, lambda got: {m.substation for m in got} == set(stations))
        await server.stop_device("003")
        stopped = now_us()
        got += await collect(messages, lambda got: len(polled_after(got, "003", stopped)) >= 3)
        after_stop = polled_after(got, "003", stopped)
        assert all(is_fault(m) for m in after_stop[1:])  # the first may have been in flight
        fault = after_stop[-1]
        rows = station_rows(mine, "003")
        assert fault.codes == [mine.codes[i] for i in rows]
        assert fault.value_ok.all() and fault.raw_values == [None] * len(rows)
        assert "003" in poller.faults
        for station in set(stations) - {"003"}:
            assert not any(is_fault(m) for m in polled_after(got, station, 0))

        await server.start_device("003")
        before = now_us()
        cycle = await server.step()
        got += await collect(
            messages,
            lambda got: any(not is_fault(m) for m in polled_after(got, "003", before)),
        )
        recovered = next(m for m in polled_after(got, "003", before) if not is_fault(m))
        assert recovered.value.tolist() == cycle.value[rows].tolist()
        assert recovered.status.tolist() == [0] * len(rows)
        assert "003" not in poller.faults
    seqs = [m.seq for m in got if m.substation == "003"]
    assert seqs == list(range(1, len(seqs) + 1))  # faults are numbered like readings
    assert {m.boot for m in got} == {poller.boot}


async def test_an_exception_response_yields_faults_for_that_device_only() -> None:
    mine = small_mine()
    async with ModbusMineServer(mine) as server:
        served = server.register_map
        first = served.substations[0]
        ghost = PointRegister(code="GHOST", address=600)  # a register the device does not have
        broken = first.model_copy(update={"points": (*first.points, ghost)})
        register_map = served.model_copy(update={"substations": (broken, *served.substations[1:])})
        async with (
            ModbusPoller(register_map, FAST) as poller,
            contextlib.aclosing(poller.messages()) as messages,
        ):
            got = await collect(messages, lambda got: len(got) >= 4 * len(served.substations))
            faults = poller.faults
    assert faults.keys() == {first.substation}
    assert "exception 2" in faults[first.substation]
    for message in got:
        if message.substation == first.substation:
            assert is_fault(message) and message.codes[-1] == "GHOST"
        else:
            assert not is_fault(message)


async def test_a_stalled_consumer_pauses_polling_instead_of_queueing_without_bound() -> None:
    mine = small_mine()
    config = ModbusPollerConfig(cycle_s=0.02, timeout_s=0.02, queue_size=2)
    devices = len(mine.definition.substations)
    async with (
        ModbusMineServer(mine) as server,
        ModbusPoller(server.register_map, config) as poller,
    ):
        await asyncio.sleep(0.4)  # 20 cycles x 6 devices while nobody consumes
        released = now_us()
        async with contextlib.aclosing(poller.messages()) as messages:
            got = await collect(messages, lambda got: len(got) >= 60)
    waiting = [m for m in got if m.time_us[0] < released]
    assert len(waiting) <= config.queue_size + devices  # the queue plus one put per device
    for station in {m.substation for m in got}:
        seqs = [m.seq for m in got if m.substation == station]
        assert seqs == list(range(1, len(seqs) + 1))  # skipped cycles are not numbered


async def test_a_failing_device_task_surfaces_as_an_error_of_the_iteration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: object, **kwargs: object) -> SafetyMessage:
        raise RuntimeError("bug")

    monkeypatch.setattr(modbus_source, "readings_message", broken)
    mine = small_mine()
    async with ModbusMineServer(mine) as server, ModbusPoller(server.register_map, FAST) as poller:
        with pytest.raises(ModbusPollerError) as raised:
            async with asyncio.timeout(5), contextlib.aclosing(poller.messages()) as messages:
                await anext(messages)
    assert isinstance(raised.value.__cause__, RuntimeError)


async def test_iterating_a_poller_that_was_not_entered_is_an_error() -> None:
    mine = small_mine()
    async with ModbusMineServer(mine) as server:
        poller = ModbusPoller(server.register_map, FAST)
        with pytest.raises(RuntimeError):
            await anext(poller.messages())


@pytest.mark.parametrize(
    "fields",
    [
        {"cycle_s": 31},  # AQ 6201: a polling cycle of at most 30 s
        {"cycle_s": 1, "timeout_s": 2},
        {"backoff_initial_s": 5, "backoff_max_s": 1},
        {"max_in_flight": 0},
    ],
)
def test_poller_config_refuses_settings_that_break_the_cycle(fields: dict) -> None:
    with pytest.raises(ValidationError):
        ModbusPollerConfig.model_validate(fields)


def test_a_map_with_more_devices_than_allowed_is_refused() -> None:
    mine = small_mine()
    devices = {s.code: DeviceAddress(host="127.0.0.1") for s in mine.definition.substations}
    with pytest.raises(ValueError):
        ModbusPoller(
            default_register_map(mine.definition, devices), ModbusPollerConfig(max_devices=2)
        )


async def test_a_realtime_server_steps_the_mine_on_its_own() -> None:
    config = load_mine_config(example_mine_path())
    fast = config.model_copy(
        update={"simulation": config.simulation.model_copy(update={"cycle_s": 0.02})}
    )
    async with ModbusMineServer(SimulatedMine(fast), realtime=True) as server:
        await asyncio.sleep(0.15)
        assert server.cycle is not None and server.cycle.index >= 3

"""The two outputs of one simulated cycle agree: what a real pymodbus client reads from a
substation's registers equals the MQTT payload of that cycle captured from a real broker."""

from __future__ import annotations

import asyncio
import datetime as dt
import struct

import aiomqtt
import numpy as np
import orjson
import pytest
from pymodbus.client import AsyncModbusTcpClient

from minewatch.feeds import broker_address, safety_topic
from minewatch.modbus_map import WordOrder
from minewatch.simulators.config import MineConfig, example_mine_path, load_mine_config
from minewatch.simulators.modbus_server import ModbusMineServer
from minewatch.simulators.model import SimulatedMine
from minewatch.simulators.mqtt_publisher import cycle_messages

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("order", [WordOrder.ABCD, WordOrder.CDAB])
async def test_register_reads_equal_the_captured_mqtt_payload_of_the_same_cycle(
    mqtt_url: str, unique_id: str, order: WordOrder
) -> None:
    # a calibration on 001 puts status bit 4 and a non-trivial value into the cycle
    data = load_mine_config(example_mine_path("small")).model_dump(mode="json")
    data["scenarios"] = [{"kind": "calibration", "substation": "001", "sensor": "CH4_T2",
                          "start_s": 0, "duration_s": 60, "peak": 2.0}]  # fmt: skip
    mine = SimulatedMine(MineConfig.model_validate(data))
    host, port = broker_address(mqtt_url)
    station = "001"
    async with (
        ModbusMineServer(mine, word_order=order) as server,
        aiomqtt.Client(host, port, identifier=f"{unique_id}-sub") as subscriber,
        aiomqtt.Client(host, port, identifier=f"{unique_id}-pub") as publisher,
    ):
        cycle = server.cycle
        assert cycle is not None
        await subscriber.subscribe(safety_topic(mine.definition.mine.code, station), qos=1)
        start = dt.datetime(2024, 3, 1, 8, tzinfo=dt.UTC)
        for topic, payload in cycle_messages(mine, cycle, start, 1, {}):
            await publisher.publish(topic, payload, qos=1)
        async with asyncio.timeout(5):
            message = await anext(subscriber.messages)
        captured = orjson.loads(message.payload)  # type: ignore[arg-type]

        address = server.address(station)
        client = AsyncModbusTcpClient(address.host, port=address.port, timeout=1, retries=0)
        try:
            assert await client.connect()
            n = len(captured["points"])
            answer = await client.read_input_registers(0, count=3 * n, device_id=address.unit_id)
            assert not answer.isError()
        finally:
            client.close()
    words = np.array(answer.registers, np.uint16).reshape(n, 3)
    high_first = order == WordOrder.ABCD
    values = [
        struct.unpack(">f", struct.pack(">HH", *((a, b) if high_first else (b, a))))[0]
        for a, b in words[:, :2].tolist()
    ]
    assert captured["points"] == [c for c in mine.codes if c[14:17] == station]
    # the registers hold float32: the payload's values rounded to float32, bit for bit
    assert values == [float(np.float32(v)) for v in captured["values"]]
    assert words[:, 2].tolist() == captured["status"]
    assert 4 in captured["status"]  # the calibration's status bit made it through both

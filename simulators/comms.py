"""The communications system of a simulated mine (通信联络: underground base stations, dispatch
phones, broadcast), live over MQTT (docs/feeds.md, "Communications"; docs/simulator.md).

Devices, numbered 1, 2, ... in this order: a base station at the shaft, the dispatch room's
phone and the broadcast, then per working a base station and a phone (in its personnel area).
Every ``comms.heartbeat_s`` one ``device_status`` batch reports each device online; a
``device_offline`` scenario leaves its device out over its window (it times out), a
``device_fault`` one reports the device online with its ``fault``. The scenarios are the labels.
Deterministic: the same config and window give the same messages.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass

import aiomqtt
import orjson

from minewatch.broker_auth import login_options
from minewatch.feeds import broker_address, comms_meta_topic, comms_topic
from minewatch.simulators.feed_config import CommsScenarioConfig
from minewatch.simulators.feeds import MineFeeds
from minewatch.simulators.personnel import CST, US

SYSTEM = "txlx"  # the communications system's id in the envelope (source <mine>/comms/txlx)


@dataclass(frozen=True, slots=True)
class Device:
    code: str
    kind: str  # base_station / phone / broadcast
    name: str
    area: str
    location: str


def devices(feeds: MineFeeds) -> list[Device]:
    """The mine's devices in number order (see the module's docstring)."""
    mine = feeds.config.mine.code
    shaft = feeds.area_codes[0]
    out = [
        Device(f"{mine}C001", "base_station", "井口基站", shaft, "主井井口"),
        Device(f"{mine}C002", "phone", "调度室电话", shaft, "调度室"),
        Device(f"{mine}C003", "broadcast", "井下广播", shaft, "主运输大巷"),
    ]
    for i, working in enumerate(feeds.camera_working[1:]):
        area = feeds.area_codes[3 + i]
        n = len(out)
        out.append(Device(f"{mine}C{n + 1:03d}", "base_station", f"{working}基站", area, working))
        out.append(Device(f"{mine}C{n + 2:03d}", "phone", f"{working}电话", area, working))
    return out


@dataclass(frozen=True, slots=True)
class CommsLabel:
    """A scenario as played: the device, the window (seconds from simulation.start)."""

    kind: str
    device: str
    start_s: float
    end_s: float
    fault: str | None


def labels(feeds: MineFeeds) -> list[CommsLabel]:
    codes = [d.code for d in devices(feeds)]
    out = []
    for sc in feeds.config.comms.scenarios:
        if sc.device > len(codes):
            raise ValueError(f"comms scenario {sc.kind}: no device {sc.device} (of {len(codes)})")
        fault = sc.fault if sc.kind == "device_fault" else None
        out.append(CommsLabel(sc.kind, codes[sc.device - 1], sc.start_s, sc.end_s, fault))
    return out


def meta_document(feeds: MineFeeds, ts: dt.datetime) -> dict[str, object]:
    config = feeds.config
    timeout = config.comms.heartbeat_timeout_s
    return {
        "v": 1, "mine": config.mine.code, "mine_name": config.mine.name, "ts": ts.isoformat(),
        "devices": [
            {"code": d.code, "kind": d.kind, "name": d.name, "area": d.area,
             "location": d.location, "heartbeat_timeout_s": timeout}
            for d in devices(feeds)
        ],
    }  # fmt: skip


def _active(scenarios: list[CommsScenarioConfig], offset_s: float, kind: str) -> dict[int, str]:
    return {
        sc.device: sc.fault
        for sc in scenarios
        if sc.kind == kind and sc.start_s <= offset_s < sc.end_s
    }


def batches(feeds: MineFeeds, t0: int, t1: int) -> Iterator[tuple[int, dict[str, list[object]]]]:
    """The status batches of [t0, t1) (µs): (time, columns), on the grid of ``heartbeat_s``
    from simulation.start."""
    step = feeds.config.comms.heartbeat_s * US
    scenarios = feeds.config.comms.scenarios
    all_devices = devices(feeds)
    first = feeds.start_us + max(0, -(-(t0 - feeds.start_us) // step)) * step
    for t in range(first, t1, step):
        offset_s = (t - feeds.start_us) / US
        silent = _active(scenarios, offset_s, "device_offline")
        faults = _active(scenarios, offset_s, "device_fault")
        reporting = [(n, d) for n, d in enumerate(all_devices, start=1) if n not in silent]
        yield (
            t,
            {
                "devices": [d.code for _, d in reporting],
                "online": [True for _ in reporting],
                "faults": [faults.get(n) for n, _ in reporting],
            },
        )


@dataclass
class CommsPublishReport:
    batches: int = 0
    messages: int = 0  # the definition and the batches


async def publish_comms(
    feeds: MineFeeds,
    mqtt_url: str,
    start: dt.datetime,
    end: dt.datetime | None,
    *,
    realtime: bool = False,
    client_id: str | None = None,
    boot: int | None = None,
) -> CommsPublishReport:
    """Publish the device definition (retained), then the status batches of [start, end)
    (forever when ``end`` is None), paced on the wall clock when ``realtime``."""
    host, port = broker_address(mqtt_url)
    boot = boot if boot is not None else int(time.time() * 1000)
    mine = feeds.config.mine.code
    report = CommsPublishReport()
    t0 = round(start.timestamp() * US)
    stop = None if end is None else round(end.timestamp() * US)
    hour = 3600 * US
    async with aiomqtt.Client(
        host, port, identifier=client_id or f"minewatch-sim-comms-{mine}",
        max_inflight_messages=1000, **login_options(mqtt_url),
    ) as client:  # fmt: skip
        ts = start - dt.timedelta(days=1)  # the definition is valid before the first batch
        await client.publish(comms_meta_topic(mine), orjson.dumps(meta_document(feeds, ts)),
                             qos=1, retain=True)  # fmt: skip
        report.messages += 1
        loop = asyncio.get_running_loop()
        wall0 = loop.time()
        chunk = t0
        while stop is None or chunk < stop:
            upper = chunk + hour if stop is None else min(chunk + hour, stop)
            for t, columns in batches(feeds, chunk, upper):
                if realtime:
                    await asyncio.sleep(max(0.0, wall0 + (t - t0) / US - loop.time()))
                report.batches += 1
                stamp = dt.datetime.fromtimestamp(t / US, CST).isoformat(timespec="milliseconds")
                message = {"v": 1, "mine": mine, "system": SYSTEM, "boot": boot,
                           "seq": report.batches, "kind": "device_status", "ts": stamp,
                           **columns}  # fmt: skip
                await client.publish(comms_topic(mine), orjson.dumps(message), qos=1)
                report.messages += 1
            chunk = upper
    return report

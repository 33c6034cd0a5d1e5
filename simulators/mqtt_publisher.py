"""Publishes a simulated mine over MQTT in the JSON contract (docs/feeds.md).

The mine's definition is published first (retained); then, per polling cycle, one message per
substation with columnar readings and a per-source sequence number. Each call stamps its k-th
cycle ``start + k * cycle_s`` (k from 0, also when the same :class:`SimulatedMine` goes on from
an earlier call); ``realtime`` paces the cycles on the wall clock, otherwise they are sent at
full speed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from dataclasses import dataclass

import aiomqtt
import numpy as np
import orjson

from minewatch.broker_auth import login_options
from minewatch.feeds import broker_address, meta_topic, safety_topic
from minewatch.simulators.model import Cycle, SimulatedMine


@dataclass
class PublishReport:
    messages: int = 0
    readings: int = 0
    cycles: int = 0


def cycle_messages(
    mine: SimulatedMine, cycle: Cycle, start: dt.datetime, boot: int, seqs: dict[str, int]
) -> list[tuple[str, bytes]]:
    """(topic, payload) per substation for one cycle; advances ``seqs``."""
    stamp = (start + dt.timedelta(seconds=cycle.offset_s)).isoformat(timespec="milliseconds")
    mine_code = mine.definition.mine.code
    out = []
    for station in mine.definition.substations:
        in_station = mine.substation_of == station.code
        if cycle.present is not None:  # silent scenarios: readings never sent
            in_station &= cycle.present
        rows = np.flatnonzero(in_station)
        if not len(rows):
            continue
        seqs[station.code] = seqs.get(station.code, 0) + 1
        payload = {
            "v": 1,
            "mine": mine_code,
            "substation": station.code,
            "boot": boot,
            "seq": seqs[station.code],
            "ts": stamp,
            "points": [mine.codes[i] for i in rows],
            "values": cycle.value[rows].tolist(),
            "status": cycle.status[rows].tolist(),
        }
        out.append((safety_topic(mine_code, station.code), orjson.dumps(payload)))
    return out


async def publish_mine(
    mine: SimulatedMine,
    mqtt_url: str,
    *,
    cycles: int | None,
    realtime: bool,
    start: dt.datetime | None = None,
    client_id: str | None = None,
) -> PublishReport:
    """Publish ``cycles`` cycles (forever when None); returns what was published."""
    host, port = broker_address(mqtt_url)
    boot = int(time.time() * 1000)
    start = start or dt.datetime.now(dt.UTC)
    report = PublishReport()
    seqs: dict[str, int] = {}
    async with aiomqtt.Client(
        host, port, identifier=client_id or f"minewatch-sim-{mine.definition.mine.code}",
        max_inflight_messages=1000, **login_options(mqtt_url),
    ) as client:  # fmt: skip
        await client.publish(
            meta_topic(mine.definition.mine.code),
            mine.definition.model_dump_json().encode(),
            qos=1,
            retain=True,
        )
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        first_s: float | None = None  # the mine's offset of this call's first cycle
        while cycles is None or report.cycles < cycles:
            cycle = mine.next_cycle()
            if first_s is None:
                # The cycle's offset runs on from the simulation's beginning; a caller that
                # goes on with ``start`` moved by the cycles it published before would otherwise
                # have its stamps run twice as fast as its clock (issue 16: the outage test's
                # readings ran into the future, refused at the mine, taken later at the city).
                first_s = cycle.offset_s
            if realtime:
                await asyncio.sleep(max(0.0, t0 + cycle.offset_s - first_s - loop.time()))
            origin = start - dt.timedelta(seconds=first_s)  # cycle_messages adds offset_s
            messages = cycle_messages(mine, cycle, origin, boot, seqs)
            await asyncio.gather(*(client.publish(t, p, qos=1) for t, p in messages))
            report.cycles += 1
            report.messages += len(messages)
            report.readings += len(cycle.value)
    return report

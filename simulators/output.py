"""A simulated belt scale (皮带秤): a cumulative output point (产量, type 3001, LJ) that follows
the shifts, with an optional counter reset and a counter that wraps at its range.

The 0点班 is the maintenance shift (检修班, nothing produced), the 8点班 and 4点班 produce at
their own rate with noise. Tonnage is kept in integer hundredths of a tonne, so the ground
truth per day is exact. The increment produced in (t[i-1], t[i]] belongs to the day (mine
local time) of t[i], which is the rule the production totals use (docs/feeds.md, Output).
The readings travel in the safety feed (minewatch/v1/<mine>/safety/<substation>), where the
output point is defined like any other point.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field

import aiomqtt
import numpy as np
import orjson

from minewatch.broker_auth import login_options
from minewatch.feeds import broker_address, meta_topic, safety_topic
from minewatch.metadata import MineDefinition, MineInfo, PointDefinition, SubstationDefinition
from minewatch.simulators.personnel import CST

US = 1_000_000


@dataclass
class BeltScale:
    mine_code: str = "141024010001"
    mine_name: str = "洪洞示范煤矿"
    approved_capacity_t: float = 1_200_000.0
    substation: str = "OUT"
    cycle_s: int = 300
    rates_t_per_h: tuple[float, float, float] = (0.0, 320.0, 280.0)  # 0点班, 8点班, 4点班
    start_counter_t: float = 0.0
    wrap_at_t: float = 100_000.0  # the counter's rollover value (published as range_high)
    reset_at: dt.datetime | None = None  # the counter restarts from 0 at the first cycle here
    seed: int = 1
    readings: list[tuple[int, float]] = field(default_factory=list)  # (µs, value) published

    @property
    def point_code(self) -> str:
        return f"{self.mine_code}01{self.substation}L01"

    def definition(self) -> MineDefinition:
        return MineDefinition(
            mine=MineInfo(code=self.mine_code, name=self.mine_name,
                          approved_capacity_t=self.approved_capacity_t),
            substations=(SubstationDefinition(code=self.substation, location="主斜井皮带"),),
            points=(PointDefinition(
                code=self.point_code, substation=self.substation, sensor_type="3001",
                unit="t", location="主斜井皮带秤", range_low=0.0, range_high=self.wrap_at_t,
            ),),
        )  # fmt: skip

    def series(
        self, start: dt.datetime, end: dt.datetime
    ) -> tuple[list[int], list[float], dict[dt.date, float]]:
        """Cycle times (µs), counter values (t) and the truth: tonnes per local day, from
        the first reading on (the first reading only sets the baseline)."""
        rng = np.random.default_rng(self.seed)
        cycle = self.cycle_s * US
        t = -(-int(start.timestamp() * US) // cycle) * cycle
        wrap = round(self.wrap_at_t * 100)
        counter = round(self.start_counter_t * 100)
        reset_us = None if self.reset_at is None else int(self.reset_at.timestamp() * US)
        times: list[int] = []
        values: list[float] = []
        truth: dict[dt.date, int] = {}
        first = True
        while t < int(end.timestamp() * US):
            local = dt.datetime.fromtimestamp(t / US, CST)
            if not first:
                previous = dt.datetime.fromtimestamp((t - cycle) / US, CST)
                rate = self.rates_t_per_h[previous.hour // 8]
                mean = rate * self.cycle_s / 3600 * 100
                produced = max(0, round(mean * rng.uniform(0.8, 1.2)))
                if reset_us is not None and t >= reset_us:
                    counter, reset_us = 0, None  # restarted: the reading shows what came since
                counter += produced
                if counter >= wrap:
                    counter -= wrap
                day = local.date()
                truth[day] = truth.get(day, 0) + produced
            times.append(t)
            values.append(counter / 100)
            first = False
            t += cycle
        return times, values, {day: hundredths / 100 for day, hundredths in truth.items()}

    def messages(self, times: list[int], values: list[float], boot: int) -> list[tuple[str, bytes]]:
        """One safety-feed message per reading (topic, payload)."""
        out = []
        for seq, (t, value) in enumerate(zip(times, values, strict=True), start=1):
            payload = {
                "v": 1, "mine": self.mine_code, "substation": self.substation, "boot": boot,
                "seq": seq, "ts": dt.datetime.fromtimestamp(t / US, CST).isoformat(),
                "points": [self.point_code], "values": [value], "status": [0],
            }  # fmt: skip
            out.append((safety_topic(self.mine_code, self.substation), orjson.dumps(payload)))
        return out


async def publish_output(
    scale: BeltScale,
    mqtt_url: str,
    start: dt.datetime,
    end: dt.datetime,
    *,
    publish_definition: bool = True,
    client_id: str | None = None,
) -> dict[dt.date, float]:
    """Publish the belt scale's readings over [start, end) at full speed, stamped with the
    simulated time; returns the truth (tonnes per local day).

    ``publish_definition`` publishes a definition holding only this point on the mine's
    retained meta topic: right for a mine that has no other definition (tests, demos); for a
    mine that has one, add :meth:`BeltScale.definition`'s point to it instead."""
    host, port = broker_address(mqtt_url)
    times, values, truth = scale.series(start, end)
    boot = int(time.time() * 1000)
    async with aiomqtt.Client(
        host, port, identifier=client_id or f"minewatch-sim-output-{scale.mine_code}",
        max_inflight_messages=1000, **login_options(mqtt_url),
    ) as client:  # fmt: skip
        if publish_definition:
            definition = scale.definition().model_dump_json().encode()
            await client.publish(meta_topic(scale.mine_code), definition, qos=1, retain=True)
        for topic, payload in scale.messages(times, values, boot):
            await client.publish(topic, payload, qos=1)
    scale.readings = list(zip(times, values, strict=True))
    return truth

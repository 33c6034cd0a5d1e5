"""Simulated video dispatch (视频调度): cameras with heartbeats and AI analytic events.

Cameras send a heartbeat every ``heartbeat_s``; analytic events (未戴安全帽, 区域入侵, ...) arrive
at random with a confidence and a snapshot reference. :meth:`SimulatedCameras.silence` makes a
camera stop sending anything, as a cut cable or a dead encoder would: the platform must notice
by the clock alone.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

import aiomqtt
import numpy as np
import orjson

from minewatch.broker_auth import login_options
from minewatch.feeds import broker_address, video_meta_topic, video_topic

EVENT_TYPES = ("no_helmet", "intrusion", "belt_deviation", "smoke", "overcrowding", "sleeping")


@dataclass
class SimulatedCameras:
    mine_code: str = "141024010001"
    mine_name: str = "洪洞示范煤矿"
    count: int = 4
    areas: tuple[str | None, ...] = ()  # area code per camera (cycled); empty: none
    heartbeat_timeout_s: float | None = None  # per-camera timeout published in the definition
    events_per_minute: float = 2.0
    seed: int = 1
    system: str = "nvr"
    silenced: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.codes = [f"{self.mine_code}V{n + 1:03d}" for n in range(self.count)]
        self._rng = np.random.default_rng(self.seed)

    def area_of(self, n: int) -> str | None:
        return self.areas[n % len(self.areas)] if self.areas else None

    def silence(self, code: str) -> None:
        """The camera stops sending heartbeats and events from now on."""
        self.silenced.add(code)

    def restore(self, code: str) -> None:
        self.silenced.discard(code)

    def meta_document(self, ts: dt.datetime) -> dict[str, object]:
        return {
            "v": 1, "mine": self.mine_code, "mine_name": self.mine_name, "ts": ts.isoformat(),
            "cameras": [
                {"code": code, "name": f"{n + 1}号摄像机", "area": self.area_of(n),
                 "location": f"井下{n + 1}号点", "stream_url": f"rtsp://nvr.local/ch{n + 1}",
                 "heartbeat_timeout_s": self.heartbeat_timeout_s}
                for n, code in enumerate(self.codes)
            ],
        }  # fmt: skip

    def _envelope(self, kind: str, at: dt.datetime, boot: int, seq: int) -> dict[str, object]:
        return {"v": 1, "mine": self.mine_code, "system": self.system, "boot": boot,
                "seq": seq, "kind": kind, "ts": at.isoformat()}  # fmt: skip

    def heartbeat_message(self, at: dt.datetime, boot: int, seq: int) -> bytes | None:
        live = [c for c in self.codes if c not in self.silenced]
        if not live:
            return None
        doc = self._envelope("heartbeats", at, boot, seq)
        doc.update(cameras=live, online=[True] * len(live))
        return orjson.dumps(doc)

    def events_message(
        self, at: dt.datetime, period_s: float, boot: int, seq: int
    ) -> tuple[bytes | None, list[dict[str, Any]]]:
        """Random analytic events in (at - period_s, at]; returns the payload and the events
        (ground truth)."""
        n = int(self._rng.poisson(self.events_per_minute * period_s / 60))
        live = [(i, c) for i, c in enumerate(self.codes) if c not in self.silenced]
        if not n or not live:
            return None, []
        events = []
        for _ in range(n):
            i, code = live[int(self._rng.integers(0, len(live)))]
            offset_ms = -int(self._rng.integers(0, max(1, int(period_s * 1000))))
            kind = EVENT_TYPES[int(self._rng.integers(0, len(EVENT_TYPES)))]
            stamp = at + dt.timedelta(milliseconds=offset_ms)
            events.append({
                "camera": code, "type": kind, "area": self.area_of(i), "offset_ms": offset_ms,
                "confidence": round(float(self._rng.uniform(0.5, 0.99)), 2),
                "snapshot": f"s3://video/{code}/{stamp:%Y%m%dT%H%M%S%f}.jpg",
                "id": f"{code}-{stamp.timestamp():.3f}", "time": stamp,
            })  # fmt: skip
        doc = self._envelope("events", at, boot, seq)
        doc.update(
            cameras=[e["camera"] for e in events], types=[e["type"] for e in events],
            confidence=[e["confidence"] for e in events], areas=[e["area"] for e in events],
            snapshots=[e["snapshot"] for e in events], ids=[e["id"] for e in events],
            offsets_ms=[e["offset_ms"] for e in events],
        )  # fmt: skip
        return orjson.dumps(doc), events


@dataclass
class VideoPublishReport:
    messages: int = 0
    events: list[dict[str, object]] = field(default_factory=list)
    last_heartbeat: dict[str, dt.datetime] = field(default_factory=dict)


async def publish_video(
    cameras: SimulatedCameras,
    mqtt_url: str,
    *,
    duration_s: float | None,
    heartbeat_s: float = 30.0,
    client_id: str | None = None,
    report: VideoPublishReport | None = None,
) -> VideoPublishReport:
    """Publish the cameras (retained), then heartbeats and events every ``heartbeat_s`` of
    wall-clock time, stamped now, for ``duration_s`` (forever when None). Heartbeats are
    about liveness, so they run on the real clock; pass ``report`` to watch progress."""
    host, port = broker_address(mqtt_url)
    boot = int(time.time() * 1000)
    report = report if report is not None else VideoPublishReport()
    seq = 0
    async with aiomqtt.Client(
        host,
        port,
        identifier=client_id or f"minewatch-sim-video-{cameras.mine_code}",
        **login_options(mqtt_url),
    ) as client:
        now = dt.datetime.now(dt.UTC)
        meta = orjson.dumps(cameras.meta_document(now - dt.timedelta(seconds=1)))
        await client.publish(video_meta_topic(cameras.mine_code), meta, qos=1, retain=True)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        n = 0
        while duration_s is None or n * heartbeat_s <= duration_s:
            await asyncio.sleep(max(0.0, t0 + n * heartbeat_s - loop.time()))
            now = dt.datetime.now(dt.UTC)
            heartbeat = cameras.heartbeat_message(now, boot, seq + 1)
            if heartbeat is not None:
                seq += 1
                await client.publish(video_topic(cameras.mine_code), heartbeat, qos=1)
                report.messages += 1
                for code in cameras.codes:
                    if code not in cameras.silenced:
                        report.last_heartbeat[code] = now
            if n:
                payload, events = cameras.events_message(now, heartbeat_s, boot, seq + 1)
                if payload is not None:
                    seq += 1
                    await client.publish(video_topic(cameras.mine_code), payload, qos=1)
                    report.messages += 1
                    report.events.extend(events)
            n += 1
    return report

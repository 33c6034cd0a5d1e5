"""The personnel and video systems of a simulated mine, live over MQTT, playing the feed
scenarios of its config (docs/simulator.md, "Live feeds").

A :class:`~simulators.feeds.MineFeeds` holds the schedule (explicit ``[[feed_scenarios]]``
and the random ones from the seed); :func:`publish_feeds` publishes what a trace of the same
mine records over the same window (:mod:`simulators.feed_tables`): per positioning cycle the
``positions`` batch of the positioning system that plays the personnel scenarios (support
crews, overtime, detours into the 限制区域, early leaders, ``sos`` calls), every
``video.heartbeat_s`` a heartbeat of each camera that a ``camera_offline`` scenario does not
silence, and the analytic events. The definitions go first, retained: the personnel one with
the mine's limits (``MineFeeds.limits_document``), so the alarm rules use the config's.

Times are the feeds' own (offset 0 at ``simulation.start``, see
:func:`~simulators.national_files.feeds_starting_at`); ``realtime`` paces them on the wall
clock, otherwise they are sent as fast as the broker takes them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import aiomqtt
import orjson

from minewatch.broker_auth import login_options
from minewatch.feeds import (
    broker_address,
    personnel_meta_topic,
    personnel_topic,
    video_meta_topic,
    video_topic,
)
from minewatch.simulators import feed_tables
from minewatch.simulators.feeds import MineFeeds
from minewatch.simulators.personnel import CST, US

CHUNK_US = 3600 * US  # the video events are drawn per hour of the schedule


@dataclass
class FeedsPublishReport:
    positions: int = 0  # positions batches (one per positioning cycle)
    heartbeats: int = 0  # heartbeat batches (one per heartbeat instant with a live camera)
    events: int = 0  # analytic events
    messages: int = 0


def personnel_document(feeds: MineFeeds, ts: dt.datetime) -> dict[str, object]:
    """The personnel definition with the mine's limits, as a trace's ``feeds.json`` holds it."""
    return feeds.personnel.meta_document(ts) | {"limits": feeds.limits_document()}


def cameras_document(feeds: MineFeeds, ts: dt.datetime) -> dict[str, object]:
    """The video definition: the shaft camera, then one per working (its key area)."""
    config = feeds.config
    return {
        "v": 1, "mine": config.mine.code, "mine_name": config.mine.name, "ts": ts.isoformat(),
        "cameras": [
            {"code": code, "name": f"{n + 1}号摄像机", "area": feeds.camera_area[n],
             "location": feeds.camera_working[n] or "主井井口",
             "heartbeat_timeout_s": config.video.heartbeat_timeout_s}
            for n, code in enumerate(feeds.camera_codes)
        ],
    }  # fmt: skip


class _Video:
    """The video batches of [t0, t1): (time µs, kind, columns), from the feed tables."""

    def __init__(self, feeds: MineFeeds) -> None:
        self.feeds = feeds

    def batches(self, t0: int, t1: int) -> Iterator[tuple[int, str, dict[str, list[Any]]]]:
        beats = feed_tables.heartbeats(self.feeds, t0, t1).to_pydict()
        events = feed_tables.events(self.feeds, t0, t1).to_pydict()
        out: dict[tuple[int, str], dict[str, list[object]]] = {}
        for t, camera in zip(beats["time_us"], beats["camera"], strict=True):
            doc = out.setdefault((t, "heartbeats"), {"cameras": [], "online": []})
            doc["cameras"].append(camera)
            doc["online"].append(True)
        columns = ("cameras", "types", "confidence", "areas", "ids")
        names = ("camera", "type", "confidence", "area", "id")
        for row in zip(events["time_us"], *(events[n] for n in names), strict=True):
            doc = out.setdefault((row[0], "events"), {c: [] for c in columns})
            for column, value in zip(columns, row[1:], strict=True):
                doc[column].append(value)
        for (t, kind), doc in sorted(out.items()):
            yield t, kind, doc


def _envelope(mine: str, system: str, kind: str, t: int, boot: int, seq: int) -> dict[str, object]:
    stamp = dt.datetime.fromtimestamp(t / US, CST).isoformat(timespec="milliseconds")
    return {"v": 1, "mine": mine, "system": system, "boot": boot, "seq": seq, "kind": kind,
            "ts": stamp}  # fmt: skip


async def publish_feeds(
    feeds: MineFeeds,
    mqtt_url: str,
    start: dt.datetime,
    end: dt.datetime | None,
    *,
    realtime: bool = False,
    client_id: str | None = None,
    boot: int | None = None,
    report: FeedsPublishReport | None = None,
) -> FeedsPublishReport:
    """Publish the definitions (retained), then the positions, heartbeats and events of
    [start, end) (forever when ``end`` is None) in time order, an hour of the schedule at a
    time. Pass ``report`` to watch progress."""
    host, port = broker_address(mqtt_url)
    boot = boot if boot is not None else int(time.time() * 1000)
    report = report if report is not None else FeedsPublishReport()
    mine = feeds.config.mine.code
    sim, video = feeds.personnel, _Video(feeds)
    seqs = {"rydw": 0, "nvr": 0}
    t0 = round(start.timestamp() * US)
    stop = None if end is None else round(end.timestamp() * US)
    async with aiomqtt.Client(
        host, port, identifier=client_id or f"minewatch-sim-feeds-{mine}",
        max_inflight_messages=1000, **login_options(mqtt_url),
    ) as client:  # fmt: skip
        ts = start - dt.timedelta(days=1)  # the definitions are valid before the first batch
        await client.publish(
            personnel_meta_topic(mine),
            orjson.dumps(personnel_document(feeds, ts)),
            qos=1,
            retain=True,
        )
        await client.publish(video_meta_topic(mine), orjson.dumps(cameras_document(feeds, ts)),
                             qos=1, retain=True)  # fmt: skip
        loop = asyncio.get_running_loop()
        wall0 = loop.time()
        chunk = t0
        while stop is None or chunk < stop:
            upper = chunk + CHUNK_US if stop is None else min(chunk + CHUNK_US, stop)
            timeline: list[tuple[int, int, str, dict[str, list[Any]] | None]] = [
                (t, 0, "positions", None)
                for t in sim.cycles(dt.datetime.fromtimestamp(chunk / US, CST),
                                    dt.datetime.fromtimestamp(upper / US, CST))
            ]  # fmt: skip
            timeline += [(t, 1, kind, doc) for t, kind, doc in video.batches(chunk, upper)]
            for t, _, kind, doc in sorted(timeline, key=lambda x: (x[0], x[1])):
                if realtime:
                    await asyncio.sleep(max(0.0, wall0 + (t - t0) / US - loop.time()))
                if doc is None:
                    seqs["rydw"] += 1
                    payload = sim.positions_message(t, boot, seqs["rydw"])
                    await client.publish(personnel_topic(mine), payload, qos=1)
                    report.positions += 1
                else:
                    seqs["nvr"] += 1
                    message = _envelope(mine, "nvr", kind, t, boot, seqs["nvr"]) | doc
                    await client.publish(video_topic(mine), orjson.dumps(message), qos=1)
                    if kind == "heartbeats":
                        report.heartbeats += 1
                    else:
                        report.events += len(doc["cameras"])
                report.messages += 1
            chunk = upper
    return report

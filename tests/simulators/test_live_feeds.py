"""The live personnel and video publisher (simulators/live.py) plays the config's feed
scenarios over a real broker: the restricted-area detour is in the published positions exactly
in its label window, the silenced camera sends no heartbeat in its, and the positions are the
rows a trace records for the same window."""

from __future__ import annotations

import asyncio
import datetime as dt

import aiomqtt
import orjson
import pytest

from minewatch.feeds import broker_address, personnel_meta_topic, personnel_topic, video_topic
from minewatch.national import CHINA_TZ
from minewatch.simulators import feed_tables
from minewatch.simulators.live import publish_feeds
from minewatch.simulators.national_files import feeds_starting_at
from minewatch.simulators.personnel import US
from tests.helpers import eventually
from tests.simulators.helpers import feed_day_config

pytestmark = pytest.mark.anyio

START = dt.datetime(2025, 1, 1, 8, tzinfo=CHINA_TZ)
BOOT = 4242


def _us(stamp: str) -> int:
    return round(dt.datetime.fromisoformat(stamp).timestamp() * US)


async def test_the_live_feeds_carry_the_restricted_entry_and_the_silent_camera(
    mqtt_url: str, unique_id: str
) -> None:
    feeds = feeds_starting_at(feed_day_config(), START)
    mine = feeds.config.mine.code
    (restricted,) = [g for g in feeds.labels if g.kind == "restricted_area"]
    (offline,) = [g for g in feeds.labels if g.kind == "camera_offline"]
    t0, t1 = feeds.start_us + 5700 * US, feeds.start_us + 6900 * US  # 20 minutes around both
    host, port = broker_address(mqtt_url)
    received: list[dict[str, object]] = []
    meta: list[dict[str, object]] = []

    async with aiomqtt.Client(host, port, identifier=f"{unique_id}-sub") as subscriber:
        for topic in (personnel_topic(mine), video_topic(mine), personnel_meta_topic(mine)):
            await subscriber.subscribe(topic, qos=1)

        async def listen() -> None:
            async for message in subscriber.messages:
                doc = orjson.loads(message.payload)  # type: ignore[arg-type]
                if "kind" not in doc:
                    meta.append(doc)
                elif doc["boot"] == BOOT:
                    received.append(doc)

        listener = asyncio.create_task(listen())
        try:
            report = await publish_feeds(
                feeds, mqtt_url, dt.datetime.fromtimestamp(t0 / US, CHINA_TZ),
                dt.datetime.fromtimestamp(t1 / US, CHINA_TZ), client_id=f"{unique_id}-pub",
                boot=BOOT,
            )  # fmt: skip
            await eventually(lambda: len(received) == report.messages)
        finally:
            listener.cancel()

    assert report.positions == 40 and report.heartbeats == 40
    positions = [d for d in received if d["kind"] == "positions"]
    beats = [d for d in received if d["kind"] == "heartbeats"]
    # The worker is in the 限制区域 exactly over the label's window.
    card, area = restricted.subject, restricted.related
    inside = set()
    for doc in positions:
        t = _us(str(doc["ts"]))
        where = dict(zip(doc["cards"], doc["areas"], strict=True))  # type: ignore[call-overload]
        assert card in where  # underground all along
        if where[card] == area:
            inside.add((t - feeds.start_us) // US)
    assert inside == set(range(round(restricted.start_s), round(restricted.end_s), 30))
    # The working's camera sends no heartbeat over its label's window, the others do.
    silent = set()
    for doc in beats:
        cameras = set(doc["cameras"])  # type: ignore[call-overload]
        assert cameras | {offline.subject} == set(feeds.camera_codes)
        if offline.subject not in cameras:
            silent.add((_us(str(doc["ts"])) - feeds.start_us) // US)
    assert silent == set(range(round(offline.start_s), round(offline.end_s), 30))
    # What was published is what a trace of the same window records.
    table = feed_tables.positions(feeds, t0, t1).to_pydict()
    recorded = set(zip(table["time_us"], table["card"], table["area"], table["in_mine"],
                       strict=True))  # fmt: skip
    published = {
        (_us(str(d["ts"])) + o * 1000, c, a, m)
        for d in positions
        for c, a, m, o in zip(d["cards"], d["areas"], d["in_mine"], d["offsets_ms"], strict=True)  # type: ignore[call-overload]
    }
    assert published == recorded
    # The personnel definition carries the config's limits.
    (definition,) = [m for m in meta if m.get("mine") == mine and "people" in m][-1:]
    assert definition["limits"] == feeds.limits_document()

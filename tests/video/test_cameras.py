"""Cameras over MQTT: heartbeats keep them online, a camera silenced in the simulator is
reported offline by the clock within its timeout (no message needed), analytic events are
queryable over a time range."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time

import httpx
import psycopg
import pytest

from minewatch.ingest.feeds.watchdog import sweep_offline
from minewatch.simulators.video import SimulatedCameras, VideoPublishReport, publish_video
from tests.helpers import eventually
from tests.personnel.stack import running_feed_api, running_feeds

pytestmark = pytest.mark.anyio

TIMEOUT_S = 1.0
SWEEP_S = 0.1


async def test_a_silenced_camera_goes_offline_within_its_timeout(
    database_url: str, mqtt_url: str, unique_id: str
) -> None:
    cameras = SimulatedCameras(count=3, heartbeat_timeout_s=TIMEOUT_S, events_per_minute=240)
    mine = cameras.mine_code
    silenced = cameras.codes[1]
    report = VideoPublishReport()
    started = dt.datetime.now(dt.UTC)
    async with (
        running_feeds(database_url, mqtt_url, f"feeds-{unique_id}",
                      watchdog_interval_s=SWEEP_S, heartbeat_timeout_s=60.0),
        running_feed_api(database_url) as base,
        httpx.AsyncClient(base_url=f"{base}/api/v1/video/mines/{mine}") as api,
    ):  # fmt: skip
        publisher = asyncio.create_task(
            publish_video(cameras, mqtt_url, duration_s=None, heartbeat_s=0.2,
                          client_id=f"sim-{unique_id}", report=report)
        )  # fmt: skip
        try:

            async def statuses() -> dict[str, dict[str, object]]:
                response = await api.get("/cameras")
                # the mine is known once a camera's first message is stored
                if response.status_code == 404:
                    return {}
                assert response.status_code == 200, response.text
                return {c["camera_code"]: c for c in response.json()}

            async def all_online() -> bool:
                found = await statuses()
                return len(found) == 3 and all(c["status"] == "online" for c in found.values())

            await eventually(all_online, limit_s=10)
            await asyncio.sleep(0.5)
            cameras.silence(silenced)
            silenced_at = time.monotonic()

            async def offline() -> bool:
                return (await statuses())[silenced]["status"] == "offline"

            await eventually(offline, limit_s=10)
            waited = time.monotonic() - silenced_at
            found = await statuses()
            last_sent = report.last_heartbeat[silenced]
            cameras.restore(silenced)
            await eventually(all_online, limit_s=10)
            end = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
            window = {"start": started.isoformat(), "end": end.isoformat()}
            await asyncio.sleep(0.3)
            events = (await api.get("/events", params={**window, "limit": 10_000})).json()
            changes = (await api.get(f"/cameras/{silenced}/status-changes", params=window)).json()
        finally:
            publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await publisher

    # Offline within timeout + one sweep (+ delivery slack), by the clock alone.
    assert waited <= TIMEOUT_S + SWEEP_S + 0.7, waited
    camera = found[silenced]
    assert camera["status_reason"] == "timeout" and camera["heartbeat_timeout_s"] == TIMEOUT_S
    since = dt.datetime.fromisoformat(camera["status_since"])
    last = dt.datetime.fromisoformat(camera["last_heartbeat_at"])
    assert since - last == dt.timedelta(seconds=TIMEOUT_S)
    assert last_sent == last
    assert all(found[c]["status"] == "online" for c in cameras.codes if c != silenced)
    assert camera["stream_url"] == "rtsp://nvr.local/ch2"
    assert [(c["online"], c["reason"]) for c in changes] == [
        (True, "heartbeat"), (False, "timeout"), (True, "heartbeat"),
    ]  # fmt: skip
    published = {e["id"] for e in report.events}
    assert published and {e["event_id"] for e in events} <= published
    stored_types = {e["event_id"]: e["event_type"] for e in events}
    assert all(stored_types[e["id"]] == e["type"] for e in report.events if e["id"] in stored_types)


async def test_the_sweep_follows_the_clock_it_is_given(database_url: str) -> None:
    """Explicit timestamps: no waiting on the wall clock."""
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO video_camera_status (mine_code, camera_code, online, since, "
            "last_heartbeat_at, reason) VALUES ('141024010001', 'C1', true, %s, %s, 'heartbeat'),"
            " ('141024010001', 'C2', true, %s, %s, 'heartbeat')",
            (t0, t0, t0, t0 + dt.timedelta(seconds=50)),
        )
    us = int(t0.timestamp() * 1_000_000)
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        assert await sweep_offline(conn, us + 30_000_000, 30.0) == []
        assert await sweep_offline(conn, us + 30_000_001, 30.0) == [("141024010001", "C1")]
        assert await sweep_offline(conn, us + 60_000_000, 30.0) == []
        assert await sweep_offline(conn, us + 80_000_001, 30.0) == [("141024010001", "C2")]
        cur = await conn.execute(
            "SELECT camera_code, time FROM video_status_changes ORDER BY camera_code"
        )
        assert await cur.fetchall() == [
            ("C1", t0 + dt.timedelta(seconds=30)), ("C2", t0 + dt.timedelta(seconds=80)),
        ]  # fmt: skip

"""The communications feed (通信联络) end to end: the simulator publishes the devices and their
status reports over a real broker with a fault and a silent device, the feed pipeline stores
them, and the API answers each device's status over real HTTP (the silent one timed out)."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from minewatch.ingest.feeds.contract import FeedBatch
from minewatch.ingest.feeds.parsing import parse_feed_message
from minewatch.ingest.feeds.screening import screen
from minewatch.ingest.quarantine import QuarantineReason, Rejection
from minewatch.ingest.time_limits import TimeLimits
from minewatch.simulators import comms
from minewatch.simulators.config import MineConfig, example_mine_path, load_mine_config
from minewatch.simulators.national_files import feeds_starting_at
from tests.helpers import eventually, scalar
from tests.personnel.stack import running_feed_api, running_feeds

pytestmark = pytest.mark.anyio

WINDOW_S = 600


def _config() -> MineConfig:
    data = load_mine_config(example_mine_path("small")).model_dump(mode="json")
    data["comms"] = {
        "heartbeat_s": 30,
        "heartbeat_timeout_s": 90,
        "scenarios": [  # device 4 reports a fault at the end; device 5 falls silent at 300 s
            {"kind": "device_fault", "device": 4, "start_s": 500, "duration_s": 600,
             "fault": "电源故障"},
            {"kind": "device_offline", "device": 5, "start_s": 300, "duration_s": 900},
        ],
    }  # fmt: skip
    return MineConfig.model_validate(data)


async def test_devices_with_a_fault_and_a_silent_one(
    database_url: str, mqtt_url: str, unique_id: str
) -> None:
    end = dt.datetime.now(dt.UTC).replace(microsecond=0)
    start = end - dt.timedelta(seconds=WINDOW_S)
    feeds = feeds_starting_at(_config(), start)
    mine = feeds.config.mine.code
    devices = comms.devices(feeds)
    faulty, silent = devices[3].code, devices[4].code
    async with (
        running_feeds(database_url, mqtt_url, f"feeds-{unique_id}"),
        running_feed_api(database_url) as base,
        httpx.AsyncClient(base_url=f"{base}/api/v1/comms/mines/{mine}") as api,
    ):
        report = await comms.publish_comms(
            feeds, mqtt_url, start, end, client_id=f"sim-{unique_id}", boot=7
        )
        assert report.batches == WINDOW_S // 30
        await eventually(lambda: scalar(
            database_url, "SELECT seq FROM source_watermarks WHERE source = %s",
            (f"{mine}/comms/{comms.SYSTEM}",),
        ) == report.batches)  # fmt: skip
        answer = await api.get("/devices")
    assert answer.status_code == 200, answer.text
    found = {d["device_code"]: d for d in answer.json()}
    assert set(found) == {d.code for d in devices}
    assert found[faulty]["status"] == "fault" and found[faulty]["fault"] == "电源故障"
    assert found[silent]["status"] == "offline" and found[silent]["status_reason"] == "timeout"
    last = dt.datetime.fromisoformat(found[silent]["last_report_at"])
    assert last == start + dt.timedelta(seconds=270)  # the last report before its window
    others = [d for code, d in found.items() if code not in (faulty, silent)]
    assert {d["status"] for d in others} == {"online"}
    assert {d["kind"] for d in found.values()} == {"base_station", "phone", "broadcast"}
    reports = scalar(database_url, "SELECT count(*) FROM comms_status_reports WHERE mine_code = %s",
                     (mine,))  # fmt: skip
    expected = sum(len(cols["devices"]) for _, cols in comms.batches(
        feeds, feeds.start_us, feeds.start_us + WINDOW_S * 1_000_000))  # fmt: skip
    assert reports == expected


def test_a_row_with_an_empty_device_code_is_refused_alone() -> None:
    topic = "minewatch/v1/141024010001/comms"
    payload = (
        b'{"v": 1, "mine": "141024010001", "boot": 1, "seq": 1, "kind": "device_status", '
        b'"ts": "2026-12-01T08:00:00+08:00", "devices": ["C1", ""], "online": [true, false]}'
    )
    batch = parse_feed_message(topic, payload, 1 << 20)
    assert isinstance(batch, FeedBatch) and len(batch) == 2
    day = 86_400 * 1_000_000
    kept, refused = screen(batch, batch.time_us, TimeLimits(day, day))
    assert list(kept.columns["devices"]) == ["C1"]
    assert [r.reason for r in refused] == [QuarantineReason.INVALID_CODE]
    bad = parse_feed_message(topic, payload.replace(b'"device_status"', b'"heartbeats"'), 1 << 20)
    assert isinstance(bad, Rejection) and bad.reason == QuarantineReason.SCHEMA_VIOLATION

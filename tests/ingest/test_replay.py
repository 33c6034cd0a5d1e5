"""Trace replay through the gateway's own pipeline into TimescaleDB."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import pytest

from minewatch.ingest.gateway import Gateway
from minewatch.ingest.sources.replay.adapter import TraceReplaySource
from minewatch.settings import GatewaySettings
from minewatch.simulators.config import example_mine_path, load_mine_config
from minewatch.simulators.model import SimulatedMine
from minewatch.simulators.trace import record
from minewatch.trace import Trace
from tests.helpers import scalar

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> Trace:
    path = tmp_path_factory.mktemp("trace") / "small.trace"
    record(SimulatedMine(load_mine_config(example_mine_path("small"))), path, cycles=180)
    return Trace(path)


async def _replay(
    database_url: str, mqtt_url: str, client_id: str, source: TraceReplaySource
) -> None:
    settings = GatewaySettings(client_id=client_id, topics=[], max_past_age_s=1e10, tick_s=None)
    gateway = Gateway(settings, database_url, mqtt_url, sources=[source])
    runner = asyncio.create_task(gateway.run())
    try:
        await asyncio.wait_for(source.finished.wait(), 60)
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner


async def test_a_replayed_trace_is_stored_whole_with_its_alarms(
    database_url: str, mqtt_url: str, unique_id: str, trace: Trace
) -> None:
    source = TraceReplaySource(trace, speed=None, message_readings=1000)
    await _replay(database_url, mqtt_url, f"gw-{unique_id}", source)
    assert scalar(database_url, "SELECT count(*) FROM readings") == trace.manifest["readings"]
    assert scalar(database_url, "SELECT count(*) FROM quarantine") == 0
    truth = trace.ground_truth[0]
    rules = scalar(
        database_url,
        "SELECT string_agg(DISTINCT a.rule, ',' ORDER BY a.rule) FROM alarms a "
        "JOIN points p ON p.id = a.point_id WHERE p.code = %s",
        (truth.point,),
    )
    assert rules is not None and "upper_alarm" in str(rules)


async def test_replay_at_a_chosen_speed_follows_event_time(
    database_url: str, mqtt_url: str, unique_id: str, trace: Trace
) -> None:
    """180 s of trace at 90x real time take about 2 s on the wall clock."""
    source = TraceReplaySource(trace, speed=90.0, message_readings=46)
    started = time.monotonic()
    await _replay(database_url, mqtt_url, f"gw-{unique_id}", source)
    elapsed = time.monotonic() - started
    assert 1.9 <= elapsed < 10
    assert scalar(database_url, "SELECT count(*) FROM readings") == trace.manifest["readings"]


def test_rebasing_moves_the_trace_to_the_chosen_start(trace: Trace, tmp_path: Path) -> None:
    source = TraceReplaySource(trace, rebase_to_us=trace.start_us + 3_600_000_000)
    first = next(iter(trace.chunks()))
    message = source._message(first, "m", "m/replay", 1, 1)
    assert int(message.time_us[0]) == trace.start_us + 3_600_000_000

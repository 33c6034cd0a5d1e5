"""The benchmarks' measuring code on tiny sizes: what it computes from what it observed, the
CPU it reads from /proc, the storage layouts against a real database, and (slow) a latency
run through a real broker, gateway, database and API."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from bench import storage
from bench.latency import Plan, alarm_latencies, commit_latencies, excursions, layout, run_rate
from bench.procs import all_stats, percentiles, tree_usage
from minewatch.embedded import MosquittoServer, PostgresServer


def test_commit_latency_is_the_first_poll_that_shows_the_message_committed() -> None:
    plan = Plan(rate=100, seconds=3, per_message=50)  # 100 points: 2 stations, 3 cycles
    lay = layout(plan)
    sent = np.array([[10.0, 10.5], [11.0, 11.5], [12.0, np.nan]])
    a, b = (f"{m}/{s}" for m, s in zip(lay.station_mine, lay.station_code, strict=True))
    seen = [(10.2, a, 1), (10.9, b, 1), (12.4, a, 3), (11.8, b, 2)]
    got = commit_latencies(sent, lay, seen)
    expected = np.array([[0.2, 0.4], [1.4, 0.3], [0.4, np.nan]])
    np.testing.assert_allclose(got, expected)


def test_each_excursion_gets_a_point_of_its_own() -> None:
    plan = Plan(rate=100, seconds=60, per_message=50, every_s=1.0)  # more excursions than stations
    points = [e.point for e in excursions(plan, layout(plan))]
    assert len(points) > 2 * layout(plan).stations
    assert len(set(points)) == len(points)


def test_alarm_latency_takes_each_points_first_raise_and_checks_its_start() -> None:
    plan = Plan(rate=100, seconds=15, per_message=50, every_s=2.0)
    lay = layout(plan)
    found = excursions(plan, lay)
    assert len(found) >= 2
    start_at = 1_000_000.0
    sent = np.full((plan.cycles, lay.stations), np.nan)
    events = []
    for n, e in enumerate(found):
        sent[e.cycle, e.station] = start_at + e.cycle + 0.01
        stamp = start_at + e.cycle * plan.cycle_s + float(lay.phase_s[e.station])
        if n == 1:
            stamp += 1.0  # raised a cycle late: a confirmation sample, or the wrong reading
        started = dt.datetime.fromtimestamp(stamp, dt.UTC).isoformat()
        events.append((start_at + e.cycle + 0.26, {"point": e.point, "started_at": started}))
        events.append((start_at + e.cycle + 5.0, {"point": e.point, "started_at": started}))
    got, other_start, missed = alarm_latencies(events[2:], plan, lay, sent, start_at)
    assert math.isnan(got[0]) and missed == 1  # the first excursion's events were left out
    np.testing.assert_allclose(got[1:], 0.25)
    assert other_start == 1


def test_percentiles() -> None:
    stats = percentiles([*range(1, 101), float("nan")])
    assert stats["n"] == 100 and stats["max"] == 100
    assert stats["p50"] == pytest.approx(50.5) and stats["p99"] == pytest.approx(99.01)
    assert percentiles([])["n"] == 0


def test_a_tree_counts_the_cpu_of_children_it_has_waited_for() -> None:
    before = tree_usage(os.getpid(), all_stats())
    burn = "import time\nwhile time.process_time() < 0.3: pass"
    subprocess.run([sys.executable, "-c", burn], check=True)
    after = tree_usage(os.getpid(), all_stats())
    assert before is not None and after is not None
    assert after.cpu_s - before.cpu_s >= 0.25  # the child's 0.3 s, at clock-tick resolution


def test_storage_layouts_hold_the_same_readings_and_report_their_sizes(
    pg_server: PostgresServer,
) -> None:
    out = storage.run(pg_server.url("postgres"), points=20, minutes=2, chunk=1000)
    assert out["readings"] == 20 * 120
    layouts = out["layouts"]
    assert isinstance(layouts, dict)
    for name in ("readings", "narrow", "minute"):
        figures = layouts[name]
        assert isinstance(figures, dict)
        assert figures["bytes_per_reading"] > 0
        assert figures["sizes"]["total"] >= figures["sizes"]["table"] > 0
    # run() checked that every layout returns the same series (storage.check_equal); a
    # mismatch raises, so reaching here is the proof; the arrays are the smaller per reading
    assert (
        layouts["minute"]["table_bytes_per_reading"] < layouts["narrow"]["table_bytes_per_reading"]
    )


@pytest.mark.slow
def test_a_tiny_latency_run_sees_every_alarm_and_every_reading(
    pg_server: PostgresServer, mqtt_server: MosquittoServer
) -> None:
    plan = Plan(rate=200, seconds=15, per_message=50, every_s=2.0)
    with tempfile.TemporaryDirectory(prefix="minewatch-latency-test-") as tmp:
        result = asyncio.run(
            run_rate(
                pg_server.url("postgres"), mqtt_server.url, mqtt_server.url, plan, 20, Path(tmp)
            )
        )
    assert result["stored_readings"] == result["published_readings"] == 200 * 15
    assert result["uncommitted_messages"] == 0
    assert result["excursions"] >= 2
    assert result["sse_missed"] == result["mqtt_missed"] == 0
    assert result["sse_other_start"] == result["mqtt_other_start"] == 0
    assert result["clean_stops"] == "2/2"

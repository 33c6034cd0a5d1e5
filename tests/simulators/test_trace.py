"""Traces: byte-identical for the same seed, and read back exactly, in time order."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from minewatch.simulators.config import MineConfig, example_mine_path, load_mine_config
from minewatch.simulators.model import SimulatedMine
from minewatch.simulators.trace import record
from minewatch.trace import FORMAT, VERSION, Trace, TraceError
from tests.simulators.helpers import run, showcase_mine

CYCLES = 1500  # three blocks, the last one partial


def _files(path: Path) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in sorted(path.iterdir())}


def test_the_same_config_and_seed_give_byte_identical_traces(tmp_path: Path) -> None:
    record(showcase_mine(), tmp_path / "a", CYCLES)
    record(showcase_mine(), tmp_path / "b", CYCLES)
    first, second = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert set(first) == {"manifest.json", "mine.json", "config.json", "ground_truth.json",
                          "calibrations.json", "readings.parquet", "near_limit.json",
                          "personnel_positions.parquet", "video_heartbeats.parquet",
                          "video_events.parquet", "output.parquet", "feeds.json",
                          "feed_ground_truth.json"}  # fmt: skip
    assert first == second


def test_a_trace_holds_the_feeds_and_their_labels(tmp_path: Path) -> None:
    data = showcase_mine().config.model_dump(mode="json")
    data["feed_scenarios"] = [{"kind": "sos", "start_s": 60, "duration_s": 120}]
    mine = SimulatedMine(MineConfig.model_validate(data))
    manifest = record(mine, tmp_path / "t", 600)
    trace = Trace(tmp_path / "t")
    assert [g.kind for g in trace.feed_labels] == ["sos"]
    positions = trace.feed_table("positions")
    assert positions is not None and positions.num_rows > 0
    times = positions.column("time_us").to_numpy()
    assert times.min() >= trace.start_us and times.max() < trace.start_us + 600 * 1_000_000
    assert positions.filter(positions["sos"]).num_rows == 120 // 30
    beats = trace.feed_table("heartbeats")
    assert beats is not None and beats.num_rows == 20 * len(trace.feeds["cameras"])
    out = trace.feed_table("output")
    assert (
        out is not None
        and out.column("point").to_pylist()[0] == trace.feeds["output_point"]["code"]
    )
    assert manifest["files"]["positions"] == "personnel_positions.parquet"  # type: ignore[index]
    assert trace.near_limit == mine.near_limit


def test_another_seed_gives_another_trace(tmp_path: Path) -> None:
    config = load_mine_config(example_mine_path("small"))
    other = config.model_copy(
        update={"simulation": config.simulation.model_copy(update={"seed": 99})}
    )
    record(SimulatedMine(config), tmp_path / "a", 100)
    record(SimulatedMine(other), tmp_path / "b", 100)
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert a["readings.parquet"] != b["readings.parquet"]
    assert a["mine.json"] == b["mine.json"]


def test_a_trace_reads_back_what_the_mine_produced_in_time_order(tmp_path: Path) -> None:
    manifest = record(showcase_mine(), tmp_path / "t", CYCLES)
    expected = run(showcase_mine(), CYCLES)
    trace = Trace(tmp_path / "t")
    assert trace.manifest == manifest
    assert manifest["format"] == FORMAT and manifest["version"] == VERSION
    chunks = list(trace.chunks())
    assert len(chunks) == 3
    time_us = np.concatenate([c.time_us for c in chunks])
    point = np.concatenate([c.point for c in chunks])
    value = np.concatenate([c.value for c in chunks])
    status = np.concatenate([c.status for c in chunks])
    n = len(trace.codes)
    cycle = (time_us - trace.start_us) // 1_000_000
    keep = expected.present.ravel()
    assert manifest["readings"] == len(time_us) == int(keep.sum())
    assert np.all(np.diff(cycle * n + point) > 0)  # time order, then point order
    assert np.array_equal(cycle, np.repeat(np.arange(CYCLES), n)[keep])
    assert np.array_equal(point, np.tile(np.arange(n), CYCLES)[keep])
    assert np.array_equal(value, expected.value.ravel()[keep])
    assert np.array_equal(status, expected.status.ravel()[keep])
    assert value.dtype == np.float64 and status.dtype == np.int16 and point.dtype == np.int32


def test_a_trace_keeps_the_definition_labels_and_declarations(tmp_path: Path) -> None:
    mine = showcase_mine()
    record(mine, tmp_path / "t", 60)
    trace = Trace(tmp_path / "t")
    assert trace.definition == mine.definition
    assert trace.codes == mine.codes
    assert trace.ground_truth == mine.ground_truth
    assert trace.calibrations == mine.calibration_declarations
    assert trace.config is not None
    assert MineConfig.model_validate(trace.config) == mine.config
    raw = json.loads((tmp_path / "t" / "ground_truth.json").read_text("utf-8"))
    assert raw[0]["start_us"] == trace.start_us + round(raw[0]["start_s"] * 1e6)
    assert trace.start_us == 1709251200000000  # 2024-03-01 08:00 +08:00


def test_the_reader_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    with pytest.raises(TraceError):
        Trace(tmp_path)
    record(showcase_mine(), tmp_path / "t", 10)
    manifest = tmp_path / "t" / "manifest.json"
    data = json.loads(manifest.read_text("utf-8"))
    manifest.write_text(json.dumps(data | {"version": 99}), "utf-8")
    with pytest.raises(TraceError, match="version"):
        Trace(tmp_path / "t")
    with pytest.raises(TraceError, match="already"):
        record(showcase_mine(), tmp_path / "t", 10)

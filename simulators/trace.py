"""Recording a simulated mine as a trace: the writer of the format that minewatch/trace.py
defines and reads (docs/simulator.md, "Trace format").

The simulator writes its readings, the feeds' tables and their labels; nothing depends on the
wall clock or the machine, so the same config and seed give byte-identical traces. Real data
of another shape (e.g. the Mendeley methane set: 28 sensors at 1 s) fits the same tables with
a hand-written mine.json and empty labels.

``python -m minewatch.simulators.trace record --mine large --hours 24 --out /tmp/large.trace``
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from minewatch.simulators import feed_tables
from minewatch.simulators.config import example_mine_path, load_mine_config
from minewatch.simulators.feeds import MineFeeds
from minewatch.simulators.model import BLOCK_CYCLES, SimulatedMine
from minewatch.simulators.personnel import CST
from minewatch.trace import (
    FORMAT,
    SCHEMA,
    VERSION,
    Trace,
    TraceError,
)


def _dump(path: Path, obj: object) -> None:
    text = json.dumps(obj, ensure_ascii=False, indent=1, sort_keys=True)
    path.write_text(text + "\n", encoding="utf-8")


def record(mine: SimulatedMine, path: Path, cycles: int) -> dict[str, object]:
    """Run ``mine`` for ``cycles`` cycles from where it is, write a trace at ``path``.

    Returns the manifest. ``path`` is created (it must not hold a trace already).
    """
    path.mkdir(parents=True, exist_ok=True)
    if (path / "manifest.json").exists():
        raise TraceError(f"{path} already holds a trace")
    codes = pa.array(mine.codes, pa.utf8())
    n = len(mine.codes)
    point_row = np.arange(n, dtype=np.int32)
    start_us = mine.start_us
    cycle_us = round(mine.config.simulation.cycle_s * 1_000_000)
    first = None
    readings = 0
    done = 0
    with pq.ParquetWriter(
        path / "readings.parquet", SCHEMA, compression="zstd", compression_level=3
    ) as writer:
        while done < cycles:
            block = mine.next_block(min(BLOCK_CYCLES, cycles - done))
            first = block.first if first is None else first
            done += len(block)
            times = start_us + (block.first + np.arange(len(block), dtype=np.int64)) * cycle_us
            keep = block.present.ravel()
            table = pa.Table.from_arrays(
                [
                    pa.array(np.repeat(times, n)[keep]),
                    pa.DictionaryArray.from_arrays(
                        pa.array(np.tile(point_row, len(block))[keep]), codes
                    ),
                    pa.array(block.value.ravel()[keep]),
                    pa.array(block.status.ravel()[keep]),
                ],
                schema=SCHEMA,
            )
            writer.write_table(table, row_group_size=len(table) or 1)
            readings += len(table)
    truth = [
        dataclasses.asdict(g)
        | {"start_us": start_us + round(g.start_s * 1e6), "end_us": start_us + round(g.end_s * 1e6)}
        for g in mine.ground_truth
    ]
    calibrations = [
        dataclasses.asdict(c)
        | {"start_us": start_us + round(c.start_s * 1e6), "end_us": start_us + round(c.end_s * 1e6),
           "declared_at_us": start_us + round(c.declared_at_s * 1e6)}
        for c in mine.calibration_declarations
    ]  # fmt: skip
    _dump(path / "ground_truth.json", truth)
    _dump(path / "near_limit.json", [
        dataclasses.asdict(g)
        | {"start_us": start_us + round(g.start_s * 1e6), "end_us": start_us + round(g.end_s * 1e6)}
        for g in mine.near_limit
    ])  # fmt: skip
    t0 = start_us + (first or 0) * cycle_us
    feed_files = _record_feeds(mine, path, t0, t0 + done * cycle_us)
    _dump(path / "calibrations.json", calibrations)
    _dump(path / "mine.json", mine.definition.model_dump(mode="json"))
    _dump(path / "config.json", mine.config.model_dump(mode="json"))
    manifest: dict[str, object] = {
        "format": FORMAT,
        "version": VERSION,
        "mine": mine.definition.mine.code,
        "start_us": start_us,
        "cycle_us": cycle_us,
        "first_cycle": first or 0,
        "cycles": done,
        "points": n,
        "readings": readings,
        "seed": mine.config.simulation.seed,
        "files": {
            "readings": "readings.parquet",
            "mine": "mine.json",
            "config": "config.json",
            "ground_truth": "ground_truth.json",
            "calibrations": "calibrations.json",
            "near_limit": "near_limit.json",
            **feed_files,
        },
    }
    _dump(path / "manifest.json", manifest)
    return manifest


FEED_FILES = {
    "positions": "personnel_positions.parquet",
    "heartbeats": "video_heartbeats.parquet",
    "events": "video_events.parquet",
    "output": "output.parquet",
    "feeds": "feeds.json",
    "feed_ground_truth": "feed_ground_truth.json",
}


def _record_feeds(mine: SimulatedMine, path: Path, t0: int, t1: int) -> dict[str, str]:
    """The personnel, video and output feeds of the same mine over [t0, t1), their
    definitions and their labels (docs/simulator.md, "Traces")."""
    feeds = MineFeeds(mine.config, mine.ground_truth)
    tables = {
        "positions": feed_tables.positions(feeds, t0, t1),
        "heartbeats": feed_tables.heartbeats(feeds, t0, t1),
        "events": feed_tables.events(feeds, t0, t1),
        "output": feed_tables.output(feeds, t1),
    }
    for name, table in tables.items():
        pq.write_table(table, path / FEED_FILES[name], compression="zstd", compression_level=3,
                       row_group_size=1 << 20)  # fmt: skip
    ts = mine.config.simulation.start.astimezone(CST)
    personnel = feeds.personnel.meta_document(ts) | {"limits": feeds.limits_document()}
    cameras = [
        {"code": code, "name": f"{n + 1}号摄像机", "area": feeds.camera_area[n],
         "location": feeds.camera_working[n] or "主井井口",
         "heartbeat_timeout_s": mine.config.video.heartbeat_timeout_s}
        for n, code in enumerate(feeds.camera_codes)
    ]  # fmt: skip
    output_point = {"code": feeds.output_point, "substation": "OUT", "sensor_type": "3001",
                    "unit": "t", "location": "主斜井皮带秤", "range_low": 0.0,
                    "range_high": mine.config.output.wrap_at_t}  # fmt: skip
    _dump(path / FEED_FILES["feeds"], {
        "personnel": personnel, "cameras": cameras, "output_point": output_point,
        "approved_capacity_t": mine.config.mine.approved_capacity_t,
        "output_month_share": mine.config.output.month_share,
        "rows": {k: t.num_rows for k, t in tables.items()},
    })  # fmt: skip
    start_us = mine.start_us
    _dump(path / FEED_FILES["feed_ground_truth"], [
        dataclasses.asdict(g)
        | {"start_us": start_us + round(g.start_s * 1e6), "end_us": start_us + round(g.end_s * 1e6)}
        for g in feeds.labels
    ])  # fmt: skip
    return dict(FEED_FILES)


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m minewatch.simulators.trace", description=__doc__
    )
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="simulate a mine and write a trace")
    rec.add_argument("--mine", default="small", help="example name or path to a TOML file")
    rec.add_argument("--hours", type=float, default=1.0)
    rec.add_argument("--cycle-s", type=float, help="override the mine's polling cycle")
    rec.add_argument("--seed", type=int, help="override the mine's seed ([simulation] seed)")
    rec.add_argument("--out", type=Path, required=True)
    info = sub.add_parser("info", help="summarise a trace")
    info.add_argument("path", type=Path)
    args = parser.parse_args(argv)
    if args.command == "info":
        trace = Trace(args.path)
        kinds: dict[str, int] = {}
        for g in trace.ground_truth:
            kinds[g.kind] = kinds.get(g.kind, 0) + 1
        print(json.dumps(trace.manifest | {"labels": kinds}, ensure_ascii=False, indent=1))
        return 0
    path = Path(args.mine) if args.mine.endswith(".toml") else example_mine_path(args.mine)
    config = load_mine_config(path)
    if args.cycle_s:
        config = config.model_copy(
            update={"simulation": config.simulation.model_copy(update={"cycle_s": args.cycle_s})}
        )
    if args.seed is not None:
        config = config.model_copy(
            update={"simulation": config.simulation.model_copy(update={"seed": args.seed})}
        )
    began = time.perf_counter()
    mine = SimulatedMine(config)
    setup = time.perf_counter() - began
    cycles = round(args.hours * 3600 / config.simulation.cycle_s)
    manifest = record(mine, args.out, cycles)
    took = time.perf_counter() - began
    size = sum(f.stat().st_size for f in args.out.iterdir())
    # record() returns the manifest as written to JSON (values of several types); this one is an int
    readings = int(manifest["readings"])  # type: ignore[call-overload]
    print(
        f"{manifest['mine']}: {manifest['points']} points, {cycles} cycles of "
        f"{config.simulation.cycle_s:g} s ({args.hours:g} h simulated), {readings:,} readings, "
        f"{len(mine.ground_truth)} labels\n"
        f"setup {setup:.1f} s, total {took:.1f} s = {args.hours * 3600 / took:,.0f}x real time, "
        f"{readings / took / 1e6:.2f} M readings/s, {size / 1e6:,.1f} MB on disk"
    )
    return 0


if __name__ == "__main__":
    sys.exit(_main())

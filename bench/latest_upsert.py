"""Benchmark: what ``write_latest`` (each point's newest reading, migration 0029) adds to a
write batch, next to the batch's binary COPY into ``readings``, in the same transactions.

Each of ``--batches`` write batches holds ``--points`` points x ``--per-point`` readings
(1 s apart, moving forward batch after batch, like a live feed); per batch, in one transaction:
the COPY (encoding included), then ``write_latest``; both timed. Prints the median, mean,
minimum and maximum of each over all batches (the first ``--warmup`` left out).

    .venv/bin/python -m bench.latest_upsert [--points 2000] [--per-point 10] [--batches 60]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import psycopg

from minewatch.batch import ReadingBatch
from minewatch.db import migrate
from minewatch.embedded import stack_for
from minewatch.ingest.pgcopy import COPY_READINGS_SQL, encode_readings
from minewatch.ingest.repository import write_latest
from minewatch.settings import Settings
from minewatch.timeutil import now_us


def _batch(points: int, per_point: int, start_us: int, rng: np.random.Generator) -> ReadingBatch:
    n = points * per_point
    time_us = start_us + np.repeat(np.arange(per_point, dtype=np.int64), points) * 1_000_000
    point_id = np.tile(np.arange(1, points + 1, dtype=np.int32), per_point)
    return ReadingBatch(time_us, point_id, rng.random(n), np.zeros(n, np.int16),
                        np.zeros(n, np.int16))  # fmt: skip


async def run(url: str, args: argparse.Namespace) -> dict[str, list[float]]:
    rng = np.random.default_rng(1)
    took: dict[str, list[float]] = {"copy": [], "write_latest": []}
    start = now_us() - args.batches * args.per_point * 1_000_000
    async with await psycopg.AsyncConnection.connect(url) as conn:
        for i in range(args.batches):
            batch = _batch(args.points, args.per_point, start + i * args.per_point * 1_000_000,
                           rng)  # fmt: skip
            async with conn.transaction(), conn.cursor() as cur:
                t0 = time.perf_counter()
                async with cur.copy(COPY_READINGS_SQL) as copy:
                    await copy.write(encode_readings(batch))
                t1 = time.perf_counter()
                await write_latest(cur, batch)
                t2 = time.perf_counter()
            if i >= args.warmup:
                took["copy"].append((t1 - t0) * 1000)
                took["write_latest"].append((t2 - t1) * 1000)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=2000)
    parser.add_argument("--per-point", type=int, default=10)
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()
    settings = Settings()
    if settings.database_url is None:
        var = Path(tempfile.mkdtemp(prefix="minewatch-bench-"))
        var.chmod(0o755)
        settings = settings.model_copy(update={"var_dir": var})
    with stack_for(settings) as stack:
        migrate(stack.database_url)
        took = asyncio.run(run(stack.database_url, args))
    print(f"{args.points} points x {args.per_point} readings a batch, "
          f"{len(took['copy'])} batches measured (ms):")  # fmt: skip
    for name, values in took.items():
        print(
            f"  {name:13s} median {statistics.median(values):7.2f}  mean "
            f"{statistics.fmean(values):7.2f}  min {min(values):7.2f}  max {max(values):7.2f}"
        )
    share = statistics.median(took["write_latest"]) / statistics.median(took["copy"])
    print(f"  write_latest / copy (medians): {share:.0%}")


if __name__ == "__main__":
    main()

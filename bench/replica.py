"""Replica benchmark (issue 16 section 2): does a report running on the streaming replica slow
the gateway writing to the primary?

    .venv/bin/python -m bench.replica [--points 1000] [--cycles 300] [--runs 3]

A private primary cluster and broker (the embedded stack), a streaming replica made from the
primary with ``pg_basebackup -R``, both on loopback on this machine. Each run publishes the
same workload (bench/ingest.py's synthetic mine) to a fresh database while ``minewatch
gateway`` (its own process) stores it, and measures readings committed per second, twice: with
nothing on the replica (baseline) and with the reports running in a loop on the replica's copy
of the same database (the remote-inspection reports and a 1-minute history of every point over
the whole range, what the API sends to MINEWATCH_API__REPLICA_URL); with ``--primary`` also a
third time with the same reports on the primary, for comparison. Runs alternate the modes, so
that a change of the machine's load meanwhile falls on each.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import pwd
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
from rich.console import Console

from bench.ingest import (
    Workload,
    build_workload,
    fresh_database,
    machine,
    messages,
    publish_all,
    start_gateway,
    stop_gateway,
    wait_committed,
    wait_subscribed,
)
from minewatch.api import report_repository
from minewatch.embedded import PostgresServer, embedded_postgres, free_port, stack_for
from minewatch.settings import Settings

console = Console()

_HISTORY = """
SELECT point_id, time_bucket(INTERVAL '1 minute', time), avg(value), min(value), max(value),
       count(*)
FROM readings GROUP BY 1, 2
"""


def _basebackup(bin_dir: Path, url: str, target: Path) -> None:
    """``pg_basebackup -R`` (a streaming replica's data directory) as the cluster's user."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    owner = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
    target.parent.mkdir(parents=True, exist_ok=True)
    if owner is not None:
        os.chown(target.parent, owner.pw_uid, owner.pw_gid)
    run_as = {} if owner is None else {"user": owner.pw_uid, "group": owner.pw_gid}
    subprocess.run(
        [str(bin_dir / "pg_basebackup"), "-h", str(info.get("host", "127.0.0.1")),
         "-p", str(info["port"]), "-U", "postgres", "-D", str(target), "-X", "stream",
         "-c", "fast", "-R"],
        check=True, capture_output=True, **run_as,  # type: ignore[call-overload]
    )  # fmt: skip


async def _reports(url: str, stop: asyncio.Event) -> int:
    """Run the reports on ``url`` in a loop until ``stop``; returns how many rounds ran."""
    rounds = 0
    end = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    start = end - dt.timedelta(days=2)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        while not stop.is_set():
            await report_repository.data_integrity(conn, None, None, start, end, "UTC", 1000)
            await report_repository.exceedance_ranking(conn, None, None, start, end, 1000)
            await report_repository.disposal_compliance(conn, None, None, start, end, 24.0)
            await (await conn.execute(_HISTORY)).fetchall()
            rounds += 1
    return rounds


async def _wait_replicated(replica_url: str) -> None:
    """Until the replica has the database (created on the primary just before)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            with psycopg.connect(replica_url) as conn:
                if conn.execute("SELECT count(*) FROM points").fetchone() != (0,):
                    return
        except psycopg.Error:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.2)


async def _one(
    admin_url: str, replica: PostgresServer, mqtt_url: str, publisher_url: str, name: str,
    items: list[tuple[str, bytes]], work: Workload, reports_on: str | None,
) -> tuple[float, int]:  # fmt: skip
    """(readings/s committed, report rounds on the replica meanwhile)."""
    url = fresh_database(admin_url, name, work)
    replica_url = replica.url(name)
    await _wait_replicated(replica_url)
    metrics_port = free_port()
    stops: list[bool] = []
    gateway = start_gateway(url, mqtt_url, f"bench-replica-{name}", metrics_port)
    stop = asyncio.Event()
    reports: asyncio.Task[int] | None = None
    try:
        await wait_subscribed(publisher_url, work, metrics_port)
        if reports_on is not None:
            target = replica_url if reports_on == "replica" else url
            reports = asyncio.create_task(_reports(target, stop))
            await asyncio.sleep(1.0)  # the reports are running when the load starts
        began = time.perf_counter()
        await publish_all(publisher_url, items)
        done = await wait_committed(url, work)
    finally:
        stop.set()
        rounds = await reports if reports is not None else 0
        stop_gateway(gateway, stops)
    return work.readings / (done - began), rounds


async def run(args: argparse.Namespace, admin_url: str, replica: PostgresServer,
              mqtt_url: str, publisher_url: str) -> dict[str, object]:  # fmt: skip
    work = build_workload(args.points, args.cycles, args.per_message)
    items = messages(work)
    results: dict[str, object] = {
        "machine": machine(), "readings": work.readings, "messages": len(items),
        "load_before": os.getloadavg(),
    }  # fmt: skip
    modes = [None, "replica"] + (["primary"] if args.primary else [])
    for k in range(args.runs):
        for mode in modes:
            name = f"bench_replica_{k}_{mode or 'base'}"
            rate, rounds = await _one(admin_url, replica, mqtt_url, publisher_url, name, items,
                                      work, mode)  # fmt: skip
            key = {None: "baseline", "replica": "with_reports", "primary": "reports_on_primary"}
            results.setdefault(key[mode], []).append(rate)  # type: ignore[attr-defined]
            if mode is not None:
                results.setdefault(f"report_rounds_{mode}", []).append(rounds)  # type: ignore[attr-defined]
            label = {None: "baseline", "replica": "reports on the replica",
                     "primary": "reports on the primary"}[mode]  # fmt: skip
            console.print(f"run {k + 1} {label:>24}: {rate:,.0f} readings/s"
                          + (f", {rounds} report rounds" if mode else ""))  # fmt: skip
    results["load_after"] = os.getloadavg()
    return results


def report(results: dict[str, object]) -> None:
    base: list[float] = results["baseline"]  # type: ignore[assignment]
    loaded: list[float] = results["with_reports"]  # type: ignore[assignment]
    changes = [(l_ - b_) / b_ for b_, l_ in zip(base, loaded, strict=True)]
    console.print(f"machine: {results['machine']}; load before {results['load_before']}, "
                  f"after {results['load_after']}")  # fmt: skip
    for k, change in enumerate(changes):
        console.print(f"run {k + 1}: baseline {base[k]:,.0f}/s, with reports {loaded[k]:,.0f}/s:"
                      f" rate {change:+.1%}")  # fmt: skip
    total = sum(loaded) / sum(base) - 1
    verdict = "met" if min(changes) >= -0.10 else "missed"
    console.print(f"all runs: rate with reports {total:+.1%} against the baseline; the target "
                  f"(no run more than 10 % slower) is {verdict}; baseline spread "
                  f"{min(base):,.0f}-{max(base):,.0f}/s")  # fmt: skip
    results["rate_change"] = changes
    if "reports_on_primary" in results:
        primary: list[float] = results["reports_on_primary"]  # type: ignore[assignment]
        on_primary = [(p_ - b_) / b_ for b_, p_ in zip(base, primary, strict=True)]
        console.print("for comparison, the same reports on the primary: rate "
                      + ", ".join(f"{c:+.1%}" for c in on_primary)
                      + f"; all runs {sum(primary) / sum(base) - 1:+.1%}")  # fmt: skip
        results["rate_change_primary"] = on_primary
    print(json.dumps(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--cycles", type=int, default=300)
    parser.add_argument("--per-message", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--primary", action="store_true", help="also run the reports on the primary (comparison)"
    )
    args = parser.parse_args()
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    var = Path(tempfile.mkdtemp(prefix="minewatch-bench-replica-"))
    var.chmod(0o755)
    settings = settings.model_copy(update={"var_dir": var, "database_url": None, "mqtt_url": None})
    with stack_for(settings) as stack:
        admin = stack.database_url.rsplit("/", 1)[0] + "/postgres"
        _basebackup(settings.pg_bin_dir, admin, var / "replica" / "data")
        with embedded_postgres(var / "replica" / "data", settings.pg_bin_dir) as replica:
            results = asyncio.run(run(args, admin, replica, stack.mqtt_url, stack.publisher_url))
    report(results)


if __name__ == "__main__":
    main()

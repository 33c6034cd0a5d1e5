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

``--pin`` (or ``--primary-cpus 0 --replica-cpus 1``) emulates a replica on its own machine as far
as one box allows: the benchmark process and every child it starts (primary cluster, broker,
gateway; the publisher is this process) are limited to the primary's CPUs, the replica cluster
(its postmaster, hence every backend and the report connections' server side) and the reports'
client (then a subprocess) to the replica's. Baseline and loaded runs use the same pinning.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import pwd
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
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


def _cpus(text: str) -> set[int]:
    """``"0"``, ``"0,1"``, ``"2-3"`` -> the CPU numbers."""
    cpus: set[int] = set()
    for part in text.split(","):
        low, _, high = part.partition("-")
        cpus.update(range(int(low), int(high or low) + 1))
    return cpus


def _cpu_list(cpus: set[int] | None) -> str:
    return "all" if cpus is None else ",".join(map(str, sorted(cpus)))


def cpus_allowed(pid: int) -> str:
    """``Cpus_allowed_list`` of ``pid`` (what the kernel lets it run on)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Cpus_allowed_list:"):
            return line.split(":", 1)[1].strip()
    return "?"


def _children() -> list[int]:
    """This process's direct children (the servers and the gateway it started)."""
    return [
        int(pid)
        for task in Path("/proc/self/task").iterdir()
        for pid in (task / "children").read_text().split()
    ]


def _comm(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


def _postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "postmaster.pid").read_text().split()[0])


@contextlib.contextmanager
def _affinity(cpus: set[int] | None) -> Iterator[None]:
    """This process (hence what it starts meanwhile) on ``cpus``, then back as it was."""
    if cpus is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


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


def _report_worker(url: str) -> None:
    """``--report-worker URL``: the reports in a loop until SIGTERM; prints JSON with the rounds
    and the CPUs this process and its connection's server backend may run on."""

    async def work() -> dict[str, object]:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            row = await (await conn.execute("SELECT pg_backend_pid()")).fetchone()
            backend = cpus_allowed(row[0]) if row else "?"
        print("ready", flush=True)
        rounds = await _reports(url, stop)
        return {"rounds": rounds, "client_cpus": cpus_allowed(os.getpid()), "backend_cpus": backend}

    print(json.dumps(asyncio.run(work())), flush=True)


async def _start_worker(url: str, cpus: set[int]) -> asyncio.subprocess.Process:
    """The reports from a subprocess limited to ``cpus``; returns once it has connected."""
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.replica", "--report-worker", url,
        stdout=asyncio.subprocess.PIPE, preexec_fn=lambda: os.sched_setaffinity(0, cpus),
    )  # fmt: skip
    assert worker.stdout is not None
    if (await worker.stdout.readline()).strip() != b"ready":
        raise RuntimeError("the report worker did not start")
    return worker


async def _stop_worker(worker: asyncio.subprocess.Process, shown: list[bool]) -> int:
    """SIGTERM, then the rounds it ran (it finishes the round under way, as the task does)."""
    worker.send_signal(signal.SIGTERM)
    out, _ = await worker.communicate()
    result = json.loads(out.decode().strip().splitlines()[-1])
    if not shown:
        shown.append(True)
        console.print(f"pinning: report client on CPUs {result['client_cpus']}, its server "
                      f"backend on the replica on CPUs {result['backend_cpus']}")  # fmt: skip
    return int(result["rounds"])


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
    pin: Pinning,
) -> tuple[float, int]:  # fmt: skip
    """(readings/s committed, report rounds on the replica meanwhile)."""
    url = fresh_database(admin_url, name, work)
    replica_url = replica.url(name)
    await _wait_replicated(replica_url)
    metrics_port = free_port()
    stops: list[bool] = []
    gateway = start_gateway(url, mqtt_url, f"bench-replica-{name}", metrics_port)
    pin.show(gateway.pid)
    stop = asyncio.Event()
    reports: asyncio.Task[int] | None = None
    worker: asyncio.subprocess.Process | None = None
    try:
        await wait_subscribed(publisher_url, work, metrics_port)
        if reports_on is not None:
            target = replica_url if reports_on == "replica" else url
            if pin.replica is None:
                reports = asyncio.create_task(_reports(target, stop))
            else:
                worker = await _start_worker(target, pin.replica)
            await asyncio.sleep(1.0)  # the reports are running when the load starts
        began = time.perf_counter()
        await publish_all(publisher_url, items)
        done = await wait_committed(url, work)
    finally:
        stop.set()
        rounds = await reports if reports is not None else 0
        if worker is not None:
            rounds = await _stop_worker(worker, pin.worker_shown)
        stop_gateway(gateway, stops)
    return work.readings / (done - began), rounds


class Pinning:
    """Which CPUs the primary side and the replica side may use (``None``: not pinned)."""

    def __init__(self, primary: set[int] | None, replica: set[int] | None) -> None:
        self.primary, self.replica = primary, replica
        self.pids: dict[str, int] = {}
        self.worker_shown: list[bool] = []

    def describe(self) -> str:
        if self.primary is None and self.replica is None:
            return "not pinned (every process may use every CPU)"
        primary, replica = _cpu_list(self.primary), _cpu_list(self.replica)
        return f"primary side on CPUs {primary}, replica side on CPUs {replica}"

    def show(self, gateway: int) -> None:
        """Once: the CPUs the kernel allows the processes that matter (read back from /proc)."""
        if "gateway" in self.pids:
            return
        self.pids = {"bench (publisher)": os.getpid(), **self.pids, "gateway": gateway}
        labels = {pid: name for name, pid in self.pids.items()}
        shown = list(labels) + [pid for pid in _children() if pid not in labels]
        console.print("pinning, read back: " + "; ".join(
            f"{labels.get(pid) or _comm(pid)} pid {pid} on CPUs {cpus_allowed(pid)}"
            for pid in shown
        ))  # fmt: skip


async def run(args: argparse.Namespace, admin_url: str, replica: PostgresServer,
              mqtt_url: str, publisher_url: str, pin: Pinning) -> dict[str, object]:  # fmt: skip
    work = build_workload(args.points, args.cycles, args.per_message)
    items = messages(work)
    results: dict[str, object] = {
        "machine": machine(), "readings": work.readings, "messages": len(items),
        "load_before": os.getloadavg(), "pinning": pin.describe(),
    }  # fmt: skip
    modes = [None, "replica"] + (["primary"] if args.primary else [])
    for k in range(args.runs):
        for mode in modes:
            name = f"bench_replica_{k}_{mode or 'base'}"
            rate, rounds = await _one(admin_url, replica, mqtt_url, publisher_url, name, items,
                                      work, mode, pin)  # fmt: skip
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
                  f"after {results['load_after']}; {results['pinning']}")  # fmt: skip
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
    parser.add_argument("--pin", action="store_true",
                        help="same as --primary-cpus 0 --replica-cpus 1")  # fmt: skip
    parser.add_argument(
        "--primary-cpus",
        type=_cpus,
        default=None,
        help="CPUs for this process and all it starts but the replica (e.g. 0)",
    )
    parser.add_argument(
        "--replica-cpus",
        type=_cpus,
        default=None,
        help="CPUs for the replica cluster and the reports' client (e.g. 1)",
    )
    parser.add_argument("--report-worker", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.report_worker:
        _report_worker(args.report_worker)
        return
    if args.pin:
        args.primary_cpus = args.primary_cpus or {0}
        args.replica_cpus = args.replica_cpus or {1}
    pin = Pinning(args.primary_cpus, args.replica_cpus)
    console.print(f"pinning: {pin.describe()}")
    if pin.primary is not None:
        os.sched_setaffinity(0, pin.primary)  # before any child starts: they inherit it
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    var = Path(tempfile.mkdtemp(prefix="minewatch-bench-replica-"))
    var.chmod(0o755)
    settings = settings.model_copy(update={"var_dir": var, "database_url": None, "mqtt_url": None})
    with stack_for(settings) as stack:
        admin = stack.database_url.rsplit("/", 1)[0] + "/postgres"
        _basebackup(settings.pg_bin_dir, admin, var / "replica" / "data")
        pin.pids["primary postmaster"] = _postmaster_pid(var / "pg")
        with contextlib.ExitStack() as replica_stack:
            with _affinity(pin.replica):  # its postmaster, hence its backends, inherit it
                replica = replica_stack.enter_context(
                    embedded_postgres(var / "replica" / "data", settings.pg_bin_dir)
                )
            pin.pids["replica postmaster"] = _postmaster_pid(replica.data_dir)
            results = asyncio.run(
                run(args, admin, replica, stack.mqtt_url, stack.publisher_url, pin)
            )
    report(results)


if __name__ == "__main__":
    main()

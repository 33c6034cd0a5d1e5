"""A city in real time on one box (issue 14, section 4): many simulated mines publishing at
their own poll cycles, with their scenarios, into one gateway or several split by mine.

    .venv/bin/python -m bench.city_soak [--mines 100] [--minutes 30] [--gateways 1]
        [--sizes 200,500,1000,2000] [--cycles 1,2,5] [--publishers 4] [--sample-s 10]
        [--stall-at-s S --stall-s 60]

The issue's run is 100 mines of about 100,000 points for 30 minutes, with ``--gateways 1``
and then ``--gateways 2``. Mines are generated (``minewatch.simulators.generator``) with
sizes and poll cycles taken in turn from ``--sizes`` and ``--cycles``, random scenarios of
every kind at ``--scenarios-per-hour`` per mine from the first minute, and published in real
time by ``--publishers`` processes (the contract messages of
``minewatch.simulators.mqtt_publisher.cycle_messages``), each mine at its own phase. With
``--gateways N`` mine ``i`` goes to gateway ``i % N``
(``MINEWATCH_GATEWAY__TOPICS``, one filter per mine); each gateway is ``minewatch gateway``
with its clock tick and its maintenance (retention, rollups), as in production.

Every ``--sample-s`` seconds (light: /proc, each gateway's /metrics, one size query):
readings stored, each gateway's receive-to-commit lag (``minewatch_lag_seconds``, the last
write's), the age of its newest committed reading (``minewatch_data_age_seconds``: what waits
in the broker shows here, not in the lag) and pending messages, each gateway's RSS, the CPU
seconds of every process (gateways, PostgreSQL with its backends, Mosquitto, publishers) and
their share of a core in the interval, the size of ``readings``, the size of the embedded
broker's persistence file (``mosquitto.db``: its queues) and the alarm records. At the end:
readings/s sustained, lag and RSS over time, bytes and CPU seconds per million readings, and
the alarms raised against the simulators' labels.

``--stall-at-s`` makes the interruption storm of issue 14 at will: every publisher stops
publishing at that second for ``--stall-s`` seconds (every point falls silent past its
interruption time), then sends the cycles it missed at once and goes on in real time.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import datetime as dt
import json
import logging
import multiprocessing
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import numpy as np
import psycopg
from rich.console import Console
from rich.table import Table

from bench import services
from bench.latency import machine
from bench.procs import Sampler, pressure_s, stack_roles
from minewatch.broker_auth import login_options
from minewatch.embedded import free_port, stack_for
from minewatch.feeds import broker_address, safety_subscriptions
from minewatch.settings import Settings
from minewatch.simulators.generator import generate_mine, mine_code
from minewatch.simulators.model import SimulatedMine
from minewatch.simulators.mqtt_publisher import cycle_messages

console = Console(width=200)
COUNTY = "141024"
PUBLISH_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class MineSpec:
    index: int
    points: int
    cycle_s: float
    scenarios_per_hour: float
    horizon_s: float

    @property
    def code(self) -> str:
        return mine_code(self.index, COUNTY, first=800001)

    @property
    def phase_s(self) -> float:
        """When in its cycle the mine starts: spread evenly (golden ratio), not all at once."""
        return (self.index * 0.6180339887) % 1.0 * self.cycle_s


def specs(args: argparse.Namespace) -> list[MineSpec]:
    sizes = [int(s) for s in args.sizes.split(",")]
    cycles = [float(c) for c in args.cycles.split(",")]
    horizon = args.minutes * 60 + 600
    return [
        MineSpec(
            i,
            sizes[i % len(sizes)],
            cycles[(i // len(sizes)) % len(cycles)],
            args.scenarios_per_hour,
            horizon,
        )
        for i in range(args.mines)
    ]


def build(spec: MineSpec) -> SimulatedMine:
    config = generate_mine(
        spec.code,
        spec.points,
        seed=spec.index + 1,
        cycle_s=spec.cycle_s,
        rate_per_hour=spec.scenarios_per_hour,
    )
    random = config.random_scenarios.model_copy(
        update={"start_after_s": 60.0, "horizon_s": spec.horizon_s}
    )
    return SimulatedMine(config.model_copy(update={"random_scenarios": random}))


# -- publishers (their own processes) ------------------------------------------------------------


def publish_process(
    url: str, specs_: list[MineSpec], minutes: float, out: str, ready: Any, go: Any, start_at: Any,
    stall: tuple[float, float] | None = None,
) -> None:  # fmt: skip
    """Build the mines, say ``ready``, wait for ``go``, then publish them from ``start_at``."""
    logging.getLogger("mqtt").setLevel(logging.ERROR)  # aiomqtt's pending-publish warnings
    mines = [build(s) for s in specs_]
    ready.set()
    go.wait()
    published: dict[str, int] = {}
    try:
        asyncio.run(_publish(url, specs_, mines, start_at.value, minutes, published, stall))
    finally:  # what was published, also when the publisher failed (reported, not hidden)
        Path(out).write_text(json.dumps(published))


async def _publish(
    url: str,
    specs_: list[MineSpec],
    mines: list[SimulatedMine],
    start_at: float,
    minutes: float,
    published: dict[str, int],
    stall: tuple[float, float] | None = None,
) -> None:
    """Each mine in real time from ``start_at`` plus its phase, for ``minutes``, one message
    per substation and cycle (``cycle_messages``, the simulators' contract messages); the
    readings published per mine. ``stall``: (seconds after the start, seconds) during which
    no mine publishes; the cycles due then are sent at its end, at once (they catch up).
    The definitions are not published again: the benchmark published them (retained)
    before, and a definition makes a gateway reload its registry."""
    host, port = broker_address(url)
    boot = int(time.time() * 1000)
    quiet = logging.getLogger("bench.city.publisher")
    quiet.setLevel(logging.ERROR)  # aiomqtt's warning past ten pending publishes

    async def one(client: aiomqtt.Client, spec: MineSpec, mine: SimulatedMine) -> None:
        begin = start_at + spec.phase_s
        start = dt.datetime.fromtimestamp(begin, dt.UTC)
        seqs: dict[str, int] = {}
        published[spec.code] = 0
        cycles = int(minutes * 60 / spec.cycle_s)
        for n in range(cycles):
            if time.time() > start_at + minutes * 60:  # behind: the window is over, stop
                published[f"{spec.code}:skipped_cycles"] = cycles - n
                break
            cycle = mine.next_cycle()
            due = begin + cycle.offset_s
            if stall is not None and start_at + stall[0] <= due < start_at + sum(stall):
                due = start_at + sum(stall)  # the publishers stalled (issue 14, session 7)
            await asyncio.sleep(max(0.0, due - time.time()))
            messages = cycle_messages(mine, cycle, start, boot, seqs)
            await asyncio.gather(*(client.publish(t, p, qos=1) for t, p in messages))
            sent = len(cycle.value) if cycle.present is None else int(cycle.present.sum())
            published[spec.code] += sent

    # A publish waits for the broker's acknowledgement: on a loaded machine 10 s (aiomqtt's
    # default) was not always enough (issue 14, session 6), and a timeout ends the publisher.
    async with aiomqtt.Client(
        host, port, max_inflight_messages=1000, logger=quiet, timeout=PUBLISH_TIMEOUT_S,
        **login_options(url),
    ) as client:  # fmt: skip
        await asyncio.gather(*(one(client, s, m) for s, m in zip(specs_, mines, strict=True)))


# -- the observer --------------------------------------------------------------------------------


@dataclass
class Sample:
    t: float
    stored: float
    lag_s: list[float]
    pending: list[float]
    rss_mib: list[float]
    readings_bytes: int
    pressure_cpu_s: float = float("nan")  # PSI totals: time some task waited for a CPU
    pressure_io_s: float = float("nan")
    broker_store_bytes: int = 0  # the embedded broker's mosquitto.db (0: not found)
    alarms: int = 0  # alarm records in the database so far
    data_age_s: list[float] = field(default_factory=list)  # per gateway: newest reading's age


def readings_bytes(url: str) -> tuple[int, int]:
    """The size of ``readings`` and the number of alarm records."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT (SELECT total_bytes FROM hypertable_detailed_size('readings')), "
            "(SELECT count(*) FROM alarms)"
        ).fetchone()
    return (int(row[0] or 0), int(row[1] or 0)) if row else (0, 0)


def file_bytes(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


async def observe(
    url: str, ports: list[int], sampler: Sampler, gateways: list[str], store: Path
) -> Sample:
    now = time.time()
    sampler.sample(now)
    stored, lags, pending, rss, ages = 0.0, [], [], [], []
    for port, name in zip(ports, gateways, strict=True):
        stored += await services.metric_value(port, "minewatch_readings_stored_total") or 0.0
        lags.append(await services.metric_value(port, "minewatch_lag_seconds") or float("nan"))
        pending.append(await services.metric_value(port, "minewatch_pending_messages") or 0.0)
        age = await services.metric_value(port, "minewatch_data_age_seconds")
        ages.append(float("nan") if age is None else age)
        series = sampler.series(name)
        rss.append(series[-1][2] if series else float("nan"))
    size, alarms = readings_bytes(url)
    return Sample(
        now, stored, lags, pending, rss, size, pressure_s("cpu"), pressure_s("io"),
        file_bytes(store), alarms, ages,
    )  # fmt: skip


def quarantine_by_reason(url: str) -> dict[str, int]:
    """Messages (or readings) the gateways kept aside, by reason: published - stored should be
    these, or still in the broker."""
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT reason, count(*) FROM quarantine GROUP BY 1").fetchall()
    return {str(reason): int(n) for reason, n in rows}


def labels_vs_alarms(
    url: str, mines: list[SimulatedMine], starts: dict[str, float], until: float
) -> dict[str, object]:
    """Per label kind: labels begun in the run, and how many have an alarm of their point (or
    substation) starting between the label's start - 5 s and its end + 120 s; alarms per
    rule, and how many fall in no label's window."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT p.mine_code, p.code, p.substation_code, a.rule, "
            "extract(epoch FROM a.started_at)::float8 FROM alarms a JOIN points p "
            "ON p.id = a.point_id"
        ).fetchall()
    by_point: dict[tuple[str, str], list[float]] = {}
    by_station: dict[tuple[str, str], list[float]] = {}
    rules: dict[str, int] = {}
    for mine, point, station, rule, started in rows:
        by_point.setdefault((mine, point), []).append(started)
        by_station.setdefault((mine, station or ""), []).append(started)
        rules[rule] = rules.get(rule, 0) + 1
    kinds: dict[str, list[int]] = {}
    windows: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for mine in mines:
        code = mine.definition.mine.code
        t0 = starts[code]
        for label in mine.ground_truth:
            a, b = t0 + label.start_s - 5, t0 + label.end_s + 120
            if label.point:
                key, index = (code, label.point), by_point
            else:
                key, index = (code, label.substation), by_station
            windows.setdefault(key, []).append((a, b))  # every label explains its alarms
            if t0 + label.start_s > until:  # too late in the run to be required
                continue
            hit = any(a <= s <= b for s in index.get(key, []))
            entry = kinds.setdefault(label.kind, [0, 0])
            entry[0] += 1
            entry[1] += int(hit)
    unexplained = 0
    for mine, point, station, _, started in rows:
        spans = windows.get((mine, point), []) + windows.get((mine, station or ""), [])
        unexplained += not any(a <= started <= b for a, b in spans)
    return {
        "labels": {k: {"labels": v[0], "with_alarm": v[1]} for k, v in sorted(kinds.items())},
        "alarms_by_rule": dict(sorted(rules.items())),
        "alarms": len(rows),
        "alarms_outside_labels": unexplained,
    }


async def soak(
    admin_url: str, mqtt_url: str, publisher_url: str, args: argparse.Namespace, var: Path
) -> dict[str, object]:
    plan = specs(args)
    console.print(f"building {len(plan)} mines ...")
    mines = [build(s) for s in plan]
    points = sum(len(m.definition.points) for m in mines)
    rate = sum(len(m.definition.points) / s.cycle_s for m, s in zip(mines, plan, strict=True))
    console.print(f"{len(mines)} mines, {points:,} points, {rate:,.0f} readings/s expected")
    url = services.fresh_database(
        admin_url, f"bench_city_{args.gateways}", [m.definition for m in mines]
    )
    extra = {"MINEWATCH_RETENTION__ENABLED": "true" if args.maintenance else "false"}
    gateways, ports, names = [], [], []
    stops: list[bool] = []
    publishers: list[multiprocessing.process.BaseProcess] = []
    try:
        for g in range(args.gateways):
            mine_codes = [s.code for s in plan if s.index % args.gateways == g]
            topics = [t for c in mine_codes for t in safety_subscriptions(c)]
            port = free_port()
            process = services.start_gateway(
                url, mqtt_url, f"bench-city-{g}-{os.getpid()}", port, topics, extra
            )
            gateways.append(process)
            ports.append(port)
            names.append(f"gateway{g + 1}")
            mine_defs = [m.definition for m in mines if m.definition.mine.code in mine_codes]
            began = time.monotonic()
            await services.wait_subscribed(
                publisher_url, mine_defs, port, process, args.start_limit_s
            )
            console.print(  # from its start: the definitions are published once it listens
                f"gateway {g + 1} took {len(mine_defs)} definitions "
                f"{time.monotonic() - began:.1f} s after it started"
            )
        sampler = Sampler(
            {
                **stack_roles(),
                **{n: p.pid for n, p in zip(names, gateways, strict=True)},
                "observer": os.getpid(),
            },
            alone=("observer",),
        )
        context = multiprocessing.get_context("spawn")
        go, shared_start = context.Event(), context.Value("d", 0.0)
        readies = []
        outs = []
        stall = None if args.stall_at_s is None else (args.stall_at_s, args.stall_s)
        for k in range(args.publishers):
            share = [s for s in plan if s.index % args.publishers == k]
            if not share:
                continue
            out = var / f"published-{k}.json"
            outs.append(out)
            ready = context.Event()
            readies.append(ready)
            p = context.Process(
                target=publish_process,
                args=(publisher_url, share, args.minutes, str(out), ready, go, shared_start, stall),
            )
            p.start()
            publishers.append(p)
            sampler.roles[f"publisher{k + 1}"] = p.pid or 0
        for ready in readies:  # every publisher has built its mines
            while not ready.is_set():
                if not any(p.is_alive() for p in publishers):
                    raise RuntimeError("the publishers ended before they were ready")
                await asyncio.sleep(0.5)
        start_at = time.time() + 1.0
        shared_start.value = start_at
        go.set()
        store = var / "mosquitto" / "mosquitto.db"  # the embedded broker's snapshot
        samples = [await observe(url, ports, sampler, names, store)]
        console.print(
            "  t s   readings/s   lag s (per gateway)   pending   RSS MiB   readings MiB"
            "   broker MiB   alarms   data age s   CPU % gateways/postgres/mosquitto/publishers"
        )
        publisher_roles = [r for r in sampler.roles if r.startswith("publisher")]
        while any(p.is_alive() for p in publishers):
            await asyncio.sleep(args.sample_s)
            samples.append(await observe(url, ports, sampler, names, store))
            a, b = samples[-2], samples[-1]
            shares = [
                sum(sampler.cpu_between(r, a.t, b.t) for r in group) / (b.t - a.t) * 100
                for group in (names, ["postgres"], ["mosquitto"], publisher_roles)
            ]
            console.print(
                f"{b.t - start_at:5.0f} {(b.stored - a.stored) / (b.t - a.t):12,.0f} "
                f"{' '.join(f'{x:.2f}' for x in b.lag_s):>21} {sum(b.pending):9.0f} "
                f"{' '.join(f'{x:.0f}' for x in b.rss_mib):>9} {b.readings_bytes / 2**20:14.1f}"
                f" {b.broker_store_bytes / 2**20:12.1f} {b.alarms:8d} "
                f"{' '.join(f'{x:.1f}' for x in b.data_age_s):>12}   "
                + " / ".join(f"{x:.0f}" for x in shares)
            )
        end_publish = time.time()
        published = 0
        skipped = 0  # cycles not sent: the publishers were behind when the window ended
        for out in outs:  # a publisher that died before writing it: counted as failed
            counts = json.loads(out.read_text()) if out.exists() else {}
            published += sum(v for k, v in counts.items() if ":" not in k)
            skipped += sum(v for k, v in counts.items() if k.endswith(":skipped_cycles"))
        failed = [f"publisher{k + 1}" for k, q in enumerate(publishers) if q.exitcode != 0]
        if failed:
            console.print(f"[red]publishers failed: {failed}[/red]")
        deadline = time.time() + 180
        while samples[-1].stored < published and time.time() < deadline:
            await asyncio.sleep(2)
            samples.append(await observe(url, ports, sampler, names, store))
        drained_s = max(0.0, samples[-1].t - end_publish)
        latency = {
            name: {h: await histogram_quantiles(port, h) for h in LATENCY_HISTOGRAMS}
            for port, name in zip(ports, names, strict=True)
        }
    finally:
        for p in publishers:
            if p.is_alive():
                p.kill()
        for process in gateways:
            stops.append(services.stop(process, 60))
    starts = {s.code: start_at + s.phase_s for s in plan}
    result = summarise(
        url,
        args,
        mines,
        plan,
        samples,
        start_at,
        end_publish,
        published,
        drained_s,
        sampler,
        names,
        starts,
        stops,
        points,
        rate,
    )
    result["publishers_failed"] = failed
    result["cycles_not_sent_publishers_behind"] = skipped
    result["latency_histograms"] = latency
    return result


LATENCY_HISTOGRAMS = ("minewatch_receive_to_commit_seconds", "minewatch_commit_to_notify_seconds")


async def histogram_quantiles(port: int, name: str) -> dict[str, float | None]:
    """A gateway's histogram over its whole run: its count, and the bucket bound under which
    50/95/99 % of the observations fall (an upper bound, as the buckets give it)."""
    try:
        async with httpx.AsyncClient() as http:
            text = (await http.get(f"http://127.0.0.1:{port}/metrics", timeout=5)).text
    except httpx.TransportError:
        return {}
    buckets = []
    for line in text.splitlines():
        if line.startswith(f"{name}_bucket{{"):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float(bound), float(line.rsplit(" ", 1)[1])))
    total = buckets[-1][1] if buckets else 0.0
    out: dict[str, float | None] = {"count": total}
    for q in (0.5, 0.95, 0.99):
        out[f"p{round(q * 100)}_at_most"] = next(
            (bound for bound, n in buckets if total and n >= q * total), None
        )
    return out


def summarise(
    url: str,
    args: argparse.Namespace,
    mines: list[SimulatedMine],
    plan: list[MineSpec],
    samples: list[Sample],
    start_at: float,
    end_publish: float,
    published: int,
    drained_s: float,
    sampler: Sampler,
    names: list[str],
    starts: dict[str, float],
    stops: list[bool],
    points: int,
    rate: float,
) -> dict[str, object]:
    # after the first minute, until the publishers' schedule ends
    steady = [s for s in samples if start_at + 60 <= s.t <= start_at + args.minutes * 60]
    first, last = (steady[0], steady[-1]) if len(steady) >= 2 else (samples[0], samples[-1])
    window_readings = last.stored - first.stored
    per_million = 1e6 / window_readings if window_readings > 0 else float("nan")
    cpu = {role: sampler.cpu_between(role, first.t, last.t) * per_million for role in sampler.roles}
    thirds = np.array_split(np.array([max(s.lag_s) for s in steady] or [np.nan]), 3)
    ages = np.array([max(s.data_age_s, default=np.nan) for s in steady] or [np.nan])
    age_thirds = np.array_split(ages, 3)
    store_mib = [s.broker_store_bytes / 2**20 for s in samples]
    rss = {n: [round(s.rss_mib[i]) for s in samples] for i, n in enumerate(names)}
    final = samples[-1]
    return {
        "machine": machine(),
        "mines": len(mines),
        "points": points,
        "gateways": args.gateways,
        "minutes": args.minutes,
        "expected_readings_s": rate,
        "published": published,
        "stored": final.stored,
        "drained_after_publish_s": drained_s,
        "sustained_readings_s": window_readings / (last.t - first.t) if last.t > first.t else 0,
        "lag_s_by_third_mean": [float(np.nanmean(t)) if len(t) else None for t in thirds],
        "lag_s_max": float(np.nanmax([max(s.lag_s) for s in steady] or [np.nan])),
        "data_age_s_by_third_mean": [
            float(np.nanmean(t)) if len(t) and not np.isnan(t).all() else None for t in age_thirds
        ],
        "data_age_s_max": float(np.nanmax(ages)) if not np.isnan(ages).all() else None,
        "broker_store_mib_start_max_end": [
            round(store_mib[0], 1),
            round(max(store_mib), 1),
            round(store_mib[-1], 1),
        ],
        "alarms_series": [[round(s.t - start_at), s.alarms] for s in samples],
        "pending_max": max(sum(s.pending) for s in samples),
        "rss_mib_series": rss,
        "readings_bytes_per_million": final.readings_bytes / final.stored * 1e6
        if final.stored
        else None,
        "cpu_s_per_million_readings": cpu,
        "cpu_share_of_a_core": {
            r: sampler.cpu_between(r, first.t, last.t) / (last.t - first.t) for r in sampler.roles
        }
        if last.t > first.t
        else {},
        "cpu_wait_share_of_a_core": {
            r: sampler.wait_between(r, first.t, last.t) / (last.t - first.t) for r in sampler.roles
        }
        if last.t > first.t
        else {},
        "machine_pressure": {
            "cpu": (last.pressure_cpu_s - first.pressure_cpu_s) / (last.t - first.t),
            "io": (last.pressure_io_s - first.pressure_io_s) / (last.t - first.t),
        }
        if last.t > first.t
        else {},
        "labels_vs_alarms": labels_vs_alarms(url, mines, starts, end_publish - 130),
        "quarantine_by_reason": quarantine_by_reason(url),
        "clean_stops": f"{sum(stops)}/{len(stops)}",
        "lag_series": [[round(s.t - start_at), [round(x, 2) for x in s.lag_s]] for s in samples],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mines", type=int, default=100)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--gateways", type=int, default=1)
    parser.add_argument("--sizes", default="200,500,1000,2000", help="points per mine, in turn")
    parser.add_argument("--cycles", default="1,2,5", help="poll cycles (s) of the mines, in turn")
    parser.add_argument("--scenarios-per-hour", type=float, default=6.0)
    parser.add_argument("--publishers", type=int, default=4)
    parser.add_argument("--sample-s", type=float, default=10.0)
    parser.add_argument(
        "--start-limit-s", type=float, default=120.0,
        help="how long a gateway may take to take its mines' definitions",
    )  # fmt: skip
    parser.add_argument("--no-maintenance", dest="maintenance", action="store_false")
    parser.add_argument(
        "--stall-at-s", type=float, default=None,
        help="every publisher stops this many seconds after the start (an interruption storm)",
    )  # fmt: skip
    parser.add_argument("--stall-s", type=float, default=60.0, help="for so long, then catches up")
    args = parser.parse_args()
    settings = Settings()
    var = Path(tempfile.mkdtemp(prefix="minewatch-city-"))  # removed at the end
    atexit.register(shutil.rmtree, var, True)
    var.chmod(0o755)
    if settings.database_url is None:
        settings = settings.model_copy(update={"var_dir": var})
    load_start = os.getloadavg()
    with stack_for(settings) as stack:
        admin = stack.database_url.rsplit("/", 1)[0] + "/postgres"
        out = asyncio.run(soak(admin, stack.mqtt_url, stack.publisher_url, args, var))
    out["load_start"] = [round(x, 2) for x in load_start]
    out["load_end"] = [round(x, 2) for x in os.getloadavg()]
    report(out)


def report(out: dict[str, object]) -> None:
    table = Table(title=f"city soak — {out['machine']}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key in (
        "mines",
        "points",
        "gateways",
        "minutes",
        "expected_readings_s",
        "sustained_readings_s",
        "published",
        "stored",
        "drained_after_publish_s",
        "lag_s_by_third_mean",
        "lag_s_max",
        "data_age_s_by_third_mean",
        "data_age_s_max",
        "broker_store_mib_start_max_end",
        "pending_max",
        "readings_bytes_per_million",
        "quarantine_by_reason",
        "clean_stops",
        "load_start",
        "load_end",
    ):
        value = out[key]
        table.add_row(key, f"{value:,.1f}" if isinstance(value, float) else str(value))
    console.print(table)
    for key in (
        "cpu_s_per_million_readings",
        "cpu_share_of_a_core",
        "cpu_wait_share_of_a_core",
        "machine_pressure",
        "rss_mib_series",
        "labels_vs_alarms",
        "latency_histograms",
        "publishers_failed",
        "cycles_not_sent_publishers_behind",
    ):
        console.print(key, out[key])
    print(json.dumps(out))


if __name__ == "__main__":
    main()

"""Latency from the mine to the screen (issue 14, section 3): publish -> reading committed, and
publish -> alarm event on a dispatcher's screen, at steady rates.

    .venv/bin/python -m bench.latency [--rates 5000,20000,50000] [--seconds 60]
        [--cycle-s 1.0] [--every 1] [--batch-delay-ms 100] [--publishers 2]

For each rate a fresh database holds ``rate x cycle-s`` methane points (mines of
``--mine-points``, a substation message per ``--per-message`` points); ``--publishers``
processes (the substations shared out between them) send every point once per ``--cycle-s``
through the broker, each substation at its own phase of the cycle (as many mines polling
unsynchronised would), so the load is steady, not a burst per cycle. Every ``--every``
seconds one more point rises (0.6, 0.8, 0.95, then 1.05 %CH4, above its 1.0 alarm level) for
a few cycles: a slow rise, which raises at its first reading at the level (no confirmation
sample, docs/alarms.md), and falls back.

The gateway (``minewatch gateway``) and the API (``minewatch api``) run as their own processes.
This process observes, using the same wall clock as the publishers:

- **publish -> committed**: every 25 ms it reads ``source_watermarks`` (each substation's
  newest seq, committed in the same transaction as the readings); a message counts as
  committed at the first poll that shows its seq. The figure is what a reader polling at that
  rate sees: up to 25 ms (plus the poll's own time) above the commit itself.
- **publish -> screen**: from the publish of the first reading at the level to the ``raised``
  alarm event received on the API's SSE stream (``/api/v1/dispatch/alarms/stream``) and on the
  gateway's MQTT alarm topic (``minewatch/v1/<mine>/alarms``).

CPU seconds of each process (publisher, gateway, API, PostgreSQL with its backends, Mosquitto,
this observer) are read from /proc during the run, so a rate that is not kept shows which
process ran out. Without MINEWATCH_DATABASE_URL / MINEWATCH_MQTT_URL it runs on a private
embedded stack.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import datetime as dt
import json
import logging
import math
import multiprocessing
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import numpy as np
import orjson
import psycopg
from rich.console import Console
from rich.table import Table

from bench import services
from bench.procs import Sampler, percentiles, pressure_s, stack_roles
from minewatch.broker_auth import login_options
from minewatch.embedded import free_port, stack_for
from minewatch.feeds import alarm_topic, broker_address, safety_subscriptions, safety_topic
from minewatch.metadata import MineDefinition, MineInfo, PointDefinition, SubstationDefinition
from minewatch.settings import Settings

console = Console(width=200)
COMMIT_POLL_S = 0.025
RAMP = (0.6, 0.8, 0.95)  # the cycles before the first reading at the level
AT_LEVEL = 1.05  # within the trend band above the 1.0 level: raises without confirmation
HOLD = 3  # cycles at the level


@dataclass(frozen=True)
class Plan:
    rate: int  # readings per second
    seconds: float
    cycle_s: float = 1.0
    mine_points: int = 2000
    per_message: int = 50
    every_s: float = 3.0
    seed: int = 1

    @property
    def points(self) -> int:
        return max(self.per_message, round(self.rate * self.cycle_s))

    @property
    def cycles(self) -> int:
        return max(1, int(self.seconds / self.cycle_s))


@dataclass(frozen=True)
class Layout:
    """Mines, substations and points of a plan; station ``s`` is the ``s``-th message of a
    cycle, sent at phase ``phase_s[s]`` of it."""

    definitions: list[MineDefinition]
    station_mine: list[str]
    station_code: list[str]
    station_points: list[list[str]]
    phase_s: np.ndarray

    @property
    def stations(self) -> int:
        return len(self.station_code)


def mine_code(index: int) -> str:
    return f"141024{990001 + index:06d}"


def layout(plan: Plan) -> Layout:
    definitions, s_mine, s_code, s_points = [], [], [], []
    left, m = plan.points, 0
    while left > 0:
        n = min(plan.mine_points, left)
        code = mine_code(m)
        stations = [f"{i + 1:03d}" for i in range((n + plan.per_message - 1) // plan.per_message)]
        points = []
        for i in range(n):
            station = stations[i // plan.per_message]
            points.append(
                PointDefinition(
                    code=f"{code}01{station}A{i:04d}",
                    substation=station,
                    sensor_type="0001",
                    unit="%CH4",
                    range_low=0.0,
                    range_high=4.0,
                    alarm_high=1.0,
                    alarm_high_clear=1.0,
                    poweroff_high=1.5,
                    restore_high=1.0,
                )
            )
        definitions.append(
            MineDefinition(
                mine=MineInfo(code=code, name=f"latency mine {m + 1}", gas_class="high"),
                substations=tuple(SubstationDefinition(code=s) for s in stations),
                points=tuple(points),
            )
        )
        for j, station in enumerate(stations):
            s_mine.append(code)
            s_code.append(station)
            s_points.append(
                [p.code for p in points[j * plan.per_message : (j + 1) * plan.per_message]]
            )
        left -= n
        m += 1
    phase = np.arange(len(s_code)) / len(s_code) * plan.cycle_s
    return Layout(definitions, s_mine, s_code, s_points, phase)


@dataclass(frozen=True)
class Excursion:
    station: int
    cycle: int  # the cycle of the first reading at the level
    point: str


def excursions(plan: Plan, lay: Layout) -> list[Excursion]:
    """One every ``every_s`` from 5 s on, while the rise, hold and fall fit in the run; each on
    another point (stations in a spread order, then the next point of each)."""
    out = []
    t, j = max(5.0, len(RAMP) * plan.cycle_s), 0
    while t + (HOLD + 2) * plan.cycle_s < plan.seconds:
        station = (j * 7919) % lay.stations  # spread over mines and stations
        points = lay.station_points[station]
        cycle = math.ceil((t - lay.phase_s[station]) / plan.cycle_s)
        out.append(Excursion(station, cycle, points[(j // lay.stations) % len(points)]))
        t += plan.every_s
        j += 1
    return out


# -- the publisher (its own process) -------------------------------------------------------------


def publish_process(
    publisher_url: str,
    plan: Plan,
    out: str,
    part: int,
    parts: int,
    ready: Any,
    go: Any,
    start_at: Any,
) -> None:
    """One of ``parts`` publisher processes: stations ``s % parts == part``. It connects,
    says ``ready``, and starts at ``start_at`` (shared) once ``go`` is set."""
    asyncio.run(_publish(publisher_url, plan, Path(out), part, parts, ready, go, start_at))


def _quiet() -> logging.Logger:
    """aiomqtt warns of every publish past the tenth pending one: a wide window is meant."""
    quiet = logging.getLogger("bench.latency.publisher")
    quiet.setLevel(logging.ERROR)
    return quiet


async def _publish(
    publisher_url: str,
    plan: Plan,
    out: Path,
    part: int,
    parts: int,
    ready: Any,
    go: Any,
    shared_start: Any,
) -> None:
    """Its stations once per cycle at their phase from ``start_at``; into ``out`` the wall
    time of each publish call (cycles x stations, NaN where not sent by this process)."""
    lay = layout(plan)
    hot: dict[tuple[int, int], list[tuple[int, float]]] = {}
    for e in excursions(plan, lay):
        index = lay.station_points[e.station].index(e.point)
        for i, v in enumerate((*RAMP, *[AT_LEVEL] * HOLD)):
            hot.setdefault((e.cycle - len(RAMP) + i, e.station), []).append((index, v))
    rng = np.random.default_rng([plan.seed, part])
    sent = np.full((plan.cycles, lay.stations), np.nan)
    mine = lay.station_mine
    topics = [safety_topic(m, s) for m, s in zip(mine, lay.station_code, strict=True)]
    # the parts of a message that never change, serialised once
    codes = [orjson.Fragment(orjson.dumps(p)) for p in lay.station_points]
    zeros = {n: orjson.Fragment(orjson.dumps([0] * n)) for n in map(len, lay.station_points)}
    boot = int(time.time() * 1000)
    mine_stations = [s for s in np.argsort(lay.phase_s, kind="stable") if s % parts == part]
    schedule = [
        (k * plan.cycle_s + float(lay.phase_s[s]), k, int(s))
        for k in range(plan.cycles)
        for s in mine_stations
    ]
    host, port = broker_address(publisher_url)
    pending: set[asyncio.Task[None]] = set()

    async def send(k: int, s: int, topic: str, payload: bytes) -> None:
        sent[k, s] = time.time()
        await client.publish(topic, payload, qos=1)

    async with aiomqtt.Client(
        host, port, max_inflight_messages=1000, logger=_quiet(), **login_options(publisher_url)
    ) as client:
        ready.set()
        await asyncio.to_thread(go.wait)
        start_at = float(shared_start.value)
        i = 0
        while i < len(schedule):
            now = time.time()
            if schedule[i][0] + start_at > now:
                await asyncio.sleep(min(0.005, schedule[i][0] + start_at - now))
                continue
            while i < len(schedule) and schedule[i][0] + start_at <= now:
                at, k, s = schedule[i]
                i += 1
                n = len(lay.station_points[s])
                values = np.round(0.3 + 0.05 * rng.standard_normal(n), 2).clip(0, 4)
                for index, value in hot.get((k, s), ()):
                    values[index] = value
                stamp = dt.datetime.fromtimestamp(start_at + at, dt.UTC)
                payload = orjson.dumps(
                    {
                        "v": 1,
                        "mine": mine[s],
                        "substation": lay.station_code[s],
                        "boot": boot,
                        "seq": k + 1,
                        "ts": stamp.isoformat(timespec="milliseconds"),
                        "points": codes[s],
                        "values": values,
                        "status": zeros[n],
                    },
                    option=orjson.OPT_SERIALIZE_NUMPY,
                )
                task = asyncio.create_task(send(k, s, topics[s], payload))
                pending.add(task)
                task.add_done_callback(pending.discard)
            if len(pending) > 5000:  # the broker does not keep up: wait rather than pile up
                await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        if pending:
            await asyncio.wait(pending)
    np.savez(out, sent=sent)


def lateness(sent: np.ndarray, plan: Plan, lay: Layout, start_at: float) -> np.ndarray:
    """Per message sent: how late on its schedule the publisher sent it (seconds)."""
    due = start_at + np.arange(sent.shape[0])[:, None] * plan.cycle_s + lay.phase_s[None, :]
    late = sent - due
    return late[np.isfinite(late)]


# -- the observer (this process) -----------------------------------------------------------------


@dataclass
class Observed:
    watermarks: list[tuple[float, str, int]]  # (time, source, seq) when seen to change
    sse: list[tuple[float, dict[str, object]]]  # (time, event) of raised alarms
    mqtt: list[tuple[float, dict[str, object]]]


async def watch_commits(url: str, seen: list[tuple[float, str, int]], stop: asyncio.Event) -> None:
    last: dict[str, int] = {}
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        while not stop.is_set():
            cur = await conn.execute("SELECT source, seq FROM source_watermarks")
            now = time.time()
            for source, seq in await cur.fetchall():
                if last.get(source) != seq:
                    last[source] = seq
                    seen.append((now, source, int(seq)))
            await asyncio.sleep(COMMIT_POLL_S)


async def watch_sse(
    base: str, key: str, seen: list[tuple[float, dict[str, object]]], connected: asyncio.Event
) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    async with (
        httpx.AsyncClient(timeout=None) as http,
        http.stream("GET", f"{base}/api/v1/dispatch/alarms/stream", headers=headers) as response,
    ):
        response.raise_for_status()
        kind = ""
        async for line in response.aiter_lines():
            if line.startswith(": connected"):
                connected.set()
            elif line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind == "alarm":
                event = orjson.loads(line[6:])
                if event.get("event") == "raised":
                    seen.append((time.time(), event))


async def watch_mqtt(
    mqtt_url: str,
    mines: list[str],
    seen: list[tuple[float, dict[str, object]]],
    subscribed: asyncio.Event,
) -> None:
    """The alarm topics, as a control-room screen reads them (here with the gateway's login,
    which may read every topic of its mines)."""
    host, port = broker_address(mqtt_url)
    async with aiomqtt.Client(
        host, port, identifier=f"bench-screen-{os.getpid()}", **login_options(mqtt_url)
    ) as client:
        for mine in mines:
            await client.subscribe(alarm_topic(mine), qos=1)
        subscribed.set()
        async for message in client.messages:
            event = orjson.loads(message.payload)  # type: ignore[arg-type]
            if event.get("event") == "raised":
                seen.append((time.time(), event))


def commit_latencies(
    sent: np.ndarray, lay: Layout, seen: list[tuple[float, str, int]]
) -> np.ndarray:
    """Per message sent: first time its seq was seen committed minus its publish time."""
    out = np.full(sent.shape, np.nan)
    by_source: dict[str, list[tuple[float, int]]] = {}
    for t, source, seq in seen:
        by_source.setdefault(source, []).append((t, seq))
    for s in range(lay.stations):
        rows = by_source.get(f"{lay.station_mine[s]}/{lay.station_code[s]}", [])
        if not rows:
            continue
        times = np.array([t for t, _ in rows])
        seqs = np.maximum.accumulate(np.array([q for _, q in rows]))
        first = np.searchsorted(seqs, np.arange(1, sent.shape[0] + 1), side="left")
        ok = first < len(rows)
        out[ok, s] = times[first[ok]] - sent[ok, s]
    return out


def alarm_latencies(
    events: list[tuple[float, dict[str, object]]],
    plan: Plan,
    lay: Layout,
    sent: np.ndarray,
    start_at: float,
) -> tuple[np.ndarray, int, int]:
    """Per excursion: its point's first ``raised`` event minus the publish of its first
    reading at the level (NaN: none arrived); how many of those events start at another time
    than that reading's stamp (a confirmation, or another reading taken as the start); how
    many excursions got no event."""
    first: dict[str, tuple[float, dict[str, object]]] = {}
    for t, event in events:
        first.setdefault(str(event["point"]), (t, event))
    out, other_start = [], 0
    for e in excursions(plan, lay):
        hit = first.get(e.point)
        if hit is None or e.cycle >= sent.shape[0]:
            out.append(np.nan)
            continue
        t, event = hit
        out.append(t - sent[e.cycle, e.station])
        started = dt.datetime.fromisoformat(str(event.get("started_at") or event.get("time")))
        stamp = start_at + e.cycle * plan.cycle_s + float(lay.phase_s[e.station])
        if abs(started.timestamp() - stamp) > 0.0015:  # stamps are to the millisecond
            other_start += 1
    arr = np.array(out, dtype=np.float64)
    return arr, other_start, int(np.isnan(arr).sum())


async def run_rate(
    admin_url: str,
    stack_mqtt: str,
    publisher_url: str,
    plan: Plan,
    batch_delay_ms: int | None,
    var: Path,
    publishers_n: int = 2,
) -> dict[str, object]:
    lay = layout(plan)
    name = f"bench_latency_{plan.rate}"
    url = services.fresh_database(admin_url, name, lay.definitions)
    mines = [d.mine.code for d in lay.definitions]
    metrics_port, api_port = free_port(), free_port()
    extra = (
        {}
        if batch_delay_ms is None
        else {"MINEWATCH_GATEWAY__BATCH_MAX_DELAY_MS": str(batch_delay_ms)}
    )
    topics = [t for m in mines for t in safety_subscriptions(m)]
    gateway = services.start_gateway(
        url, stack_mqtt, f"bench-latency-{os.getpid()}", metrics_port, topics, extra
    )
    api = None
    stopped: list[bool] = []
    try:
        await services.wait_subscribed(publisher_url, lay.definitions, metrics_port, gateway)
        key = await services.api_key(url)
        api = services.start_api(url, stack_mqtt, api_port)
        observed = Observed([], [], [])
        stop = asyncio.Event()
        sse_up, mqtt_up = asyncio.Event(), asyncio.Event()
        sampler = Sampler(
            {**stack_roles(), "gateway": gateway.pid, "api": api.pid, "observer": os.getpid()},
            alone=("observer",),
        )
        async with asyncio.TaskGroup() as tasks:
            watchers = [
                tasks.create_task(watch_commits(url, observed.watermarks, stop)),
                tasks.create_task(
                    watch_sse(f"http://127.0.0.1:{api_port}", key, observed.sse, sse_up)
                ),
                tasks.create_task(watch_mqtt(stack_mqtt, mines, observed.mqtt, mqtt_up)),
            ]
            await asyncio.wait_for(asyncio.gather(sse_up.wait(), mqtt_up.wait()), 60)
            context = multiprocessing.get_context("spawn")
            go, shared_start = context.Event(), context.Value("d", 0.0)
            publishers, readies, outs = [], [], []
            for part in range(publishers_n):
                ready = context.Event()
                out = var / f"sent-{plan.rate}-{part}.npz"
                process = context.Process(
                    target=publish_process,
                    args=(
                        publisher_url,
                        plan,
                        str(out),
                        part,
                        publishers_n,
                        ready,
                        go,
                        shared_start,
                    ),
                )
                process.start()
                publishers.append(process)
                readies.append(ready)
                outs.append(out)
                sampler.roles[f"publisher{part + 1}"] = process.pid or 0
            for ready in readies:
                while not ready.is_set():
                    if not all(p.is_alive() for p in publishers):
                        raise RuntimeError("a publisher ended before it was ready")
                    await asyncio.sleep(0.2)
            start_at = time.time() + 0.5
            shared_start.value = start_at
            go.set()
            psi = {k: pressure_s(k) for k in ("cpu", "io")}
            sampler.sample(time.time())
            while any(p.is_alive() for p in publishers):
                await asyncio.sleep(1.0)
                sampler.sample(time.time())
            psi = {k: (pressure_s(k) - v) / (time.time() - start_at) for k, v in psi.items()}
            if any(p.exitcode != 0 for p in publishers):
                raise RuntimeError("a publisher failed")
            # what was published is committed and its alarms are on screen, or 60 s passed
            deadline = time.time() + 60
            last_seq = plan.cycles
            while time.time() < deadline:
                marks = {s: q for _, s, q in observed.watermarks}
                if sum(q >= last_seq for q in marks.values()) >= lay.stations:
                    break
                await asyncio.sleep(0.2)
            sampler.sample(time.time())
            await asyncio.sleep(2.0)  # the last excursion's alarm events
            flush_s = await services.metric_value(metrics_port, "minewatch_flush_seconds_sum")
            flushes = await services.metric_value(metrics_port, "minewatch_flush_seconds_count")
            stop.set()
            for task in watchers[1:]:
                task.cancel()
        parts = [np.load(out)["sent"] for out in outs]
        sent = parts[0]
        for other in parts[1:]:
            sent = np.where(np.isnan(sent), other, sent)
        rss = float(max((m for _, _, m in sampler.series("gateway")), default=float("nan")))
    finally:
        if api is not None:
            stopped.append(services.stop(api))
        stopped.append(services.stop(gateway))
    publish_end = float(np.nanmax(sent))
    commits = commit_latencies(sent, lay, observed.watermarks)
    sse, wrong_sse, missed_sse = alarm_latencies(observed.sse, plan, lay, sent, start_at)
    mqtt, wrong_mqtt, missed_mqtt = alarm_latencies(observed.mqtt, plan, lay, sent, start_at)
    published = int(np.isfinite(sent).sum()) * plan.per_message
    with psycopg.connect(url) as conn:
        stored = conn.execute("SELECT count(*) FROM readings").fetchone()
    wall = float(np.nanmax(sent) - np.nanmin(sent))
    cpu = {role: sampler.cpu_between(role, start_at, publish_end) for role in sampler.roles}
    return {
        "rate": plan.rate,
        "points": plan.points,
        "mines": len(mines),
        "stations": lay.stations,
        "cycle_s": plan.cycle_s,
        "seconds": plan.seconds,
        "batch_delay_ms": batch_delay_ms,
        "published_readings": published,
        "stored_readings": int(stored[0]) if stored else 0,
        "published_rate": published / wall if wall > 0 else float("nan"),
        "publisher_late_ms": _ms(percentiles(lateness(sent, plan, lay, start_at))),
        "excursions": len(excursions(plan, lay)),
        "commit_ms": _ms(percentiles(commits[np.isfinite(commits)])),
        "uncommitted_messages": int(np.isfinite(sent).sum() - np.isfinite(commits).sum()),
        "sse_ms": _ms(percentiles(sse)),
        "sse_missed": missed_sse,
        "sse_other_start": wrong_sse,
        "mqtt_ms": _ms(percentiles(mqtt)),
        "mqtt_missed": missed_mqtt,
        "mqtt_other_start": wrong_mqtt,
        "cpu_share": {r: c / (publish_end - start_at) for r, c in cpu.items()},
        "cpu_wait_share": {
            r: sampler.wait_between(r, start_at, publish_end) / (publish_end - start_at)
            for r in sampler.roles
        },
        "machine_pressure": psi,
        "gateway_flushes": flushes,
        "gateway_flush_mean_ms": 1000 * flush_s / flushes if flush_s and flushes else None,
        "gateway_peak_rss_mib": rss,
        "clean_stops": f"{sum(stopped)}/{len(stopped)}",
    }


def _ms(stats: dict[str, float]) -> dict[str, float]:
    return {k: (v if k == "n" else round(v * 1000, 1)) for k, v in stats.items()}


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    return f"{os.cpu_count()} cores, {cpu}"


def report(results: list[dict[str, object]]) -> None:
    table = Table(title=f"publish -> commit and publish -> screen (ms) — {machine()}")
    for column in (
        "rate/s",
        "sent/s",
        "publisher late p50/p95/p99/max",
        "commit p50/p95/p99/max",
        "SSE p50/p95/p99/max",
        "MQTT p50/p95/p99/max",
        "missed SSE/MQTT",
        "load",
    ):
        table.add_column(column, justify="right")

    def q(stats: object) -> str:
        d = stats if isinstance(stats, dict) else {}
        return "/".join(f"{d.get(k, float('nan')):,.0f}" for k in ("p50", "p95", "p99", "max"))

    for r in results:
        table.add_row(
            f"{r['rate']:,}",
            f"{float(r['published_rate']):,.0f}",  # type: ignore[arg-type]
            q(r["publisher_late_ms"]),
            q(r["commit_ms"]),
            q(r["sse_ms"]),  # type: ignore[arg-type]
            q(r["mqtt_ms"]),
            f"{r['sse_missed']}/{r['mqtt_missed']} of {r['excursions']}",
            f"{r['load_start']} -> {r['load_end']}",
        )
    console.print(table)
    for r in results:
        shares, waits = r["cpu_share"], r["cpu_wait_share"]
        assert isinstance(shares, dict) and isinstance(waits, dict)
        console.print(
            f"{r['rate']:,}/s: share of one core used (and spent waiting for one): "
            + ", ".join(
                f"{role} {share:.0%} ({waits.get(role, float('nan')):.0%})"
                for role, share in sorted(shares.items(), key=lambda x: -x[1])
            )
            + f"; gateway: {r['gateway_flushes']} writes, mean {r['gateway_flush_mean_ms']} ms"
            + f"; share of the time some task waited for CPU / IO: {r['machine_pressure']}"
        )
    for r in results:
        print(json.dumps(r))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rates", default="5000,20000,50000")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--cycle-s", type=float, default=1.0)
    parser.add_argument("--every", type=float, default=1.0, help="seconds between excursions")
    parser.add_argument("--mine-points", type=int, default=2000)
    parser.add_argument("--per-message", type=int, default=50)
    parser.add_argument("--publishers", type=int, default=2, help="publisher processes")
    parser.add_argument(
        "--batch-delay-ms",
        type=int,
        default=None,
        help="MINEWATCH_GATEWAY__BATCH_MAX_DELAY_MS (unset: its default)",
    )
    args = parser.parse_args()
    settings = Settings()
    var = Path(tempfile.mkdtemp(prefix="minewatch-latency-"))  # removed at the end
    atexit.register(shutil.rmtree, var, True)
    var.chmod(0o755)
    if settings.database_url is None:
        settings = settings.model_copy(update={"var_dir": var})
    results = []
    with stack_for(settings) as stack:
        admin = stack.database_url.rsplit("/", 1)[0] + "/postgres"
        for rate in (int(r) for r in args.rates.split(",")):
            plan = Plan(
                rate, args.seconds, args.cycle_s, args.mine_points, args.per_message, args.every
            )
            load_start = os.getloadavg()[0]
            result = asyncio.run(
                run_rate(
                    admin,
                    stack.mqtt_url,
                    stack.publisher_url,
                    plan,
                    args.batch_delay_ms,
                    var,
                    args.publishers,
                )
            )
            result["load_start"] = round(load_start, 2)
            result["load_end"] = round(os.getloadavg()[0], 2)
            results.append(result)
            console.print(json.dumps(result))
    report(results)


if __name__ == "__main__":
    main()

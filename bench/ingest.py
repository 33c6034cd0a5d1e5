"""Ingest benchmark: MQTT -> gateway -> TimescaleDB (alarms evaluated) against raw COPY and a
naive one-INSERT-per-reading bridge, all in one run on the same hypertable.

    .venv/bin/python -m bench.ingest [--points 2000] [--cycles 500] [--per-message 50]

Without MINEWATCH_DATABASE_URL / MINEWATCH_MQTT_URL it runs on a private embedded stack. Each
phase starts from an empty ``readings`` table in a fresh database. Figures are rates of
readings committed per second; the ratios are what to compare across machines.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import httpx
import numpy as np
import orjson
import psycopg
from rich.console import Console
from rich.table import Table

from bench.procs import read_stat
from minewatch.batch import ReadingBatch
from minewatch.broker_auth import login_options
from minewatch.db import migrate
from minewatch.embedded import Stack, free_port, stack_for
from minewatch.feeds import broker_address, meta_topic, safety_subscriptions, safety_topic
from minewatch.ingest.pgcopy import COPY_READINGS_SQL, encode_readings
from minewatch.metadata import (
    MineDefinition,
    MineInfo,
    PointDefinition,
    SubstationDefinition,
    upsert_mine,
)
from minewatch.settings import Settings
from minewatch.timeutil import datetime_to_us

console = Console()
MINE = "141024019999"


@dataclass(frozen=True)
class Workload:
    definition: MineDefinition
    codes: np.ndarray  # point codes, point order
    substation: np.ndarray  # substation code per point
    values: np.ndarray  # cycles x points
    start_us: int
    cycle_s: float

    @property
    def readings(self) -> int:
        return int(self.values.size)


def build_workload(points: int, cycles: int, per_message: int, seed: int = 1) -> Workload:
    """A synthetic mine of methane points with plausible values and a few real exceedances."""
    stations = [f"{i:03d}" for i in range(1, (points + per_message - 1) // per_message + 1)]
    substation = np.array([stations[i // per_message] for i in range(points)], dtype=object)
    codes = np.array([f"{MINE}01{substation[i]}A{i:04d}" for i in range(points)], dtype=object)
    definition = MineDefinition(
        mine=MineInfo(code=MINE, name="bench mine", gas_class="high"),
        substations=tuple(SubstationDefinition(code=s) for s in stations),
        points=tuple(
            PointDefinition(
                code=str(codes[i]),
                substation=str(substation[i]),
                sensor_type="0001",
                unit="%CH4",
                range_low=0.0,
                range_high=4.0,
                alarm_high=1.0,
                alarm_high_clear=1.0,
                poweroff_high=1.5,
                restore_high=1.0,
            )
            for i in range(points)
        ),
    )
    rng = np.random.default_rng(seed)
    values = np.round(0.3 + 0.05 * rng.standard_normal((cycles, points)), 2).clip(0, 4)
    hot = rng.choice(points, size=max(1, points // 200), replace=False)
    values[cycles // 3 : cycles // 3 + 30, hot] = 1.7  # exceedances: alarms raised and cleared
    start = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=cycles + 60)
    return Workload(definition, codes, substation, values, datetime_to_us(start), 1.0)


def messages(work: Workload) -> list[tuple[str, bytes]]:
    """All contract messages of the workload, cycle by cycle, substation by substation."""
    groups = [
        (s.code, np.flatnonzero(work.substation == s.code)) for s in work.definition.substations
    ]
    start = dt.datetime.fromtimestamp(work.start_us / 1e6, dt.UTC)
    out = []
    for k in range(work.values.shape[0]):
        ts = (start + dt.timedelta(seconds=k * work.cycle_s)).isoformat(timespec="milliseconds")
        for seq_station, rows in groups:
            payload = {
                "v": 1, "mine": MINE, "substation": seq_station, "boot": 1, "seq": k + 1,
                "ts": ts, "points": work.codes[rows].tolist(),
                "values": work.values[k, rows].tolist(), "status": [0] * len(rows),
            }  # fmt: skip
            out.append((safety_topic(MINE, seq_station), orjson.dumps(payload)))
    return out


def fresh_database(admin_url: str, name: str, work: Workload) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    migrate(url)
    with psycopg.connect(url) as conn:
        upsert_mine(conn, work.definition)
    return url


def point_ids(url: str, work: Workload) -> np.ndarray:
    with psycopg.connect(url) as conn:
        rows = dict(conn.execute("SELECT code, id FROM points").fetchall())
    return np.array([rows[c] for c in work.codes], dtype=np.int32)


def count(url: str) -> int:
    with psycopg.connect(url) as conn:
        return int(conn.execute("SELECT count(*) FROM readings").fetchone()[0])  # type: ignore[index]


# -- phase 1: the ceiling, raw binary COPY -------------------------------------------------------


def raw_copy(url: str, work: Workload, chunk: int) -> float:
    ids = point_ids(url, work)
    cycles, points = work.values.shape
    times = work.start_us + (np.arange(cycles, dtype=np.int64) * 1_000_000)
    batch = ReadingBatch(
        np.repeat(times, points), np.tile(ids, cycles), work.values.reshape(-1),
        np.zeros(work.readings, np.int16), np.zeros(work.readings, np.int16),
    )  # fmt: skip
    began = time.perf_counter()
    with psycopg.connect(url) as conn:
        for lo in range(0, work.readings, chunk):
            part = batch.take(np.arange(lo, min(lo + chunk, work.readings)))
            with conn.transaction(), conn.cursor() as cur, cur.copy(COPY_READINGS_SQL) as copy:
                copy.write(encode_readings(part))
    elapsed = time.perf_counter() - began
    assert count(url) == work.readings
    return work.readings / elapsed


# -- phase 2: minewatch end to end ---------------------------------------------------------------


def start_gateway(
    url: str, mqtt_url: str, client_id: str, metrics_port: int
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        # No clock tick during the run: it compares event time with the wall clock, and this
        # workload replays 500 s of history in seconds, so every tick (5 s) found all 2,000
        # points silent and the run measured floods of data interruptions (58,020 alarms in
        # one phase of 2026-12-06), not the write path.
        "MINEWATCH_GATEWAY__TICK_S": "86400",
        "MINEWATCH_DATABASE_URL": url,
        "MINEWATCH_MQTT_URL": mqtt_url,
        "MINEWATCH_GATEWAY__CLIENT_ID": client_id,
        "MINEWATCH_GATEWAY__TOPICS": json.dumps(safety_subscriptions(MINE)),
        "MINEWATCH_GATEWAY__METRICS_PORT": str(metrics_port),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "minewatch.cli", "gateway"], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def publish_all(mqtt_url: str, items: list[tuple[str, bytes]]) -> None:
    host, port = broker_address(mqtt_url)
    # The publish window is meant to be wide: aiomqtt's warning about it, logged for every
    # publish past the tenth pending one, would only spend the benchmark's CPU on stderr.
    quiet = logging.getLogger("bench.publisher")
    quiet.setLevel(logging.ERROR)
    login = login_options(mqtt_url)
    async with aiomqtt.Client(
        host, port, max_inflight_messages=1000, logger=quiet, **login
    ) as client:
        window = 500
        for lo in range(0, len(items), window):
            await asyncio.gather(*(client.publish(t, p, qos=1) for t, p in items[lo : lo + window]))


async def wait_committed(url: str, work: Workload, limit_s: float = 600) -> float:
    """Poll (one connection, 20 times a second) until the last message of every substation is
    committed; return that moment.

    The gateway commits a source's ``(boot, seq)`` watermark in the same transaction as the
    message's readings, and a source's messages in order, so the last seq of every substation
    in ``source_watermarks`` means every reading is durable. The poll reads a few dozen rows; a
    ``count(*)`` of the hypertable instead is a parallel scan of up to 1,000,000 rows (80 ms and
    three processes here), which 20 times a second costs the end-to-end phases most of a core
    that the raw-COPY phase never pays. The end-to-end checks count every row afterwards.
    """
    sources = [f"{MINE}/{s.code}" for s in work.definition.substations]
    last = int(work.values.shape[0])  # seq of a substation's last message (see messages())
    deadline = time.perf_counter() + limit_s
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        while True:
            cur = await conn.execute(
                "SELECT count(*) FROM source_watermarks WHERE source = ANY(%s) AND seq >= %s",
                (sources, last),
            )
            n = (await cur.fetchone() or (0,))[0]
            if n >= len(sources):
                return time.perf_counter()
            if time.perf_counter() > deadline:
                raise RuntimeError(f"only {n} of {len(sources)} substations fully committed")
            await asyncio.sleep(0.05)


async def wait_subscribed(mqtt_url: str, work: Workload, metrics_port: int) -> None:
    """Publish the definition and wait until the gateway has applied it: it is subscribed."""
    host, port = broker_address(mqtt_url)
    async with aiomqtt.Client(host, port, **login_options(mqtt_url)) as client:
        definition = work.definition.model_dump_json().encode()
        await client.publish(meta_topic(MINE), definition, qos=1, retain=True)
    deadline = time.perf_counter() + 60
    async with httpx.AsyncClient() as http:
        while time.perf_counter() < deadline:
            try:
                text = (await http.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
            except httpx.TransportError:
                text = ""
            if 'minewatch_messages_total{kind="meta"}' in text:
                return
            await asyncio.sleep(0.1)
    raise RuntimeError("the gateway did not subscribe within 60 s")


def stop_gateway(gateway: subprocess.Popen[bytes], stops: list[bool]) -> None:
    """SIGINT, as an operator stops it; notes in ``stops`` whether it ended within 30 s (else it
    is killed, which loses nothing here: all was committed, and the checks count every row)."""
    gateway.send_signal(signal.SIGINT)
    try:
        gateway.wait(30)
        stops.append(True)
    except subprocess.TimeoutExpired:
        gateway.kill()
        gateway.wait()
        stops.append(False)


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a live process has used so far."""
    stat = read_stat(pid)
    return stat.own_s if stat is not None else float("nan")


async def end_to_end(url: str, mqtt_url: str, publisher_url: str, work: Workload,
                     items: list[tuple[str, bytes]], mode: str,
                     stops: list[bool]) -> tuple[float, float, int, float]:  # fmt: skip
    """(readings/s, gateway peak RSS MiB, alarms, gateway CPU s per million readings).
    ``live``: publish while the gateway runs; ``drain``: the broker holds everything published
    while the gateway was stopped. Whether each gateway stopped cleanly on SIGINT is appended
    to ``stops``. The CPU is the gateway's from the first publish (live) or its start (drain,
    so its start-up counts: imports, the registry and the alarm state, about 2 s) to the
    moment the last reading was committed; CPU time, unlike a rate, does not depend on how
    busy the machine's other processes keep the cores."""
    client_id = f"bench-{mode}-{os.getpid()}"
    metrics_port = free_port()
    gateway = start_gateway(url, mqtt_url, client_id, metrics_port)
    try:
        await wait_subscribed(publisher_url, work, metrics_port)
        if mode == "drain":
            stop_gateway(gateway, stops)
            await publish_all(publisher_url, items)
            began = time.perf_counter()
            gateway = start_gateway(url, mqtt_url, client_id, metrics_port)
            cpu_began = 0.0
        else:
            began = time.perf_counter()
            cpu_began = cpu_s(gateway.pid)
            await publish_all(publisher_url, items)
        done = await wait_committed(url, work)
        cpu = (cpu_s(gateway.pid) - cpu_began) / work.readings * 1e6
        rss = peak_rss_mib(gateway.pid)
    finally:
        stop_gateway(gateway, stops)
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT count(*) FROM readings").fetchone()
        distinct = conn.execute("SELECT count(DISTINCT (point_id, time)) FROM readings").fetchone()
        alarms = conn.execute("SELECT count(*) FROM alarms").fetchone()
    assert rows is not None and rows[0] == work.readings, "loss or duplicates"
    assert distinct is not None and distinct[0] == work.readings, "loss or duplicates"
    return work.readings / (done - began), rss, int(alarms[0]) if alarms else 0, cpu


# -- phase 3: the naive bridge -------------------------------------------------------------------


async def naive_bridge(url: str, mqtt_url: str, publisher_url: str, work: Workload,
                       items: list[tuple[str, bytes]], limit: int) -> float:  # fmt: skip
    """What common MQTT-to-database bridges do: one INSERT per reading, commit per message."""
    ids = dict(zip(work.codes.tolist(), point_ids(url, work).tolist(), strict=True))
    subset = items[:limit]
    expected = sum(len(orjson.loads(p)["points"]) for _, p in subset)
    host, port = broker_address(mqtt_url)
    received = 0
    async with aiomqtt.Client(
        host,
        port,
        identifier=f"naive-{os.getpid()}",
        clean_session=False,
        **login_options(mqtt_url),
    ) as sub:
        await sub.subscribe(f"minewatch/v1/{MINE}/safety/+", qos=1)
        publisher = asyncio.create_task(publish_all(publisher_url, subset))
        began = time.perf_counter()
        with psycopg.connect(url) as conn:
            async for message in sub.messages:
                doc = orjson.loads(message.payload)  # type: ignore[arg-type]
                stamp = dt.datetime.fromisoformat(doc["ts"])
                for code, value, status in zip(
                    doc["points"], doc["values"], doc["status"], strict=True
                ):
                    conn.execute(
                        "INSERT INTO readings (time, point_id, value, status) "
                        "VALUES (%s, %s, %s, %s)",
                        (stamp, ids[code], value, status),
                    )
                conn.commit()
                received += len(doc["points"])
                if received >= expected:
                    break
        elapsed = time.perf_counter() - began
        await publisher
    return expected / elapsed


def machine() -> str:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), platform.processor(),
    )  # fmt: skip
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


async def run(args: argparse.Namespace, admin_url: str, stack: Stack) -> dict[str, object]:
    mqtt_url, publisher_url = stack.mqtt_url, stack.publisher_url
    work = build_workload(args.points, args.cycles, args.per_message)
    items = messages(work)
    console.print(f"workload: {work.readings:,} readings in {len(items):,} messages "
                  f"({args.per_message} readings each), {args.points} points")  # fmt: skip
    results: dict[str, object] = {"machine": machine(), "readings": work.readings,
                                  "messages": len(items)}  # fmt: skip
    url = fresh_database(admin_url, "bench_copy", work)
    results["copy_rows_s"] = raw_copy(url, work, args.copy_chunk)
    for mode in ("live", "drain"):
        url = fresh_database(admin_url, f"bench_{mode}", work)
        stops: list[bool] = []
        rate, rss, alarms, cpu = await end_to_end(
            url, mqtt_url, publisher_url, work, items, mode, stops
        )
        results[f"gateway_cpu_s_per_million_{mode}"] = cpu
        results[f"gateway_clean_stops_{mode}"] = f"{sum(stops)}/{len(stops)}"
        results[f"e2e_{mode}_rows_s"] = rate
        results[f"gateway_peak_rss_mib_{mode}"] = rss
        results["alarms"] = alarms
    url = fresh_database(admin_url, "bench_naive", work)
    results["naive_rows_s"] = await naive_bridge(
        url, mqtt_url, publisher_url, work, items, args.naive_messages
    )
    return results


def report(results: dict[str, object]) -> None:
    ceiling = float(results["copy_rows_s"])  # type: ignore[arg-type]
    table = Table(title=f"ingest benchmark — {results['machine']}")
    table.add_column("path")
    table.add_column("readings/s", justify="right")
    table.add_column("of raw COPY", justify="right")
    rows = [
        ("raw binary COPY (ceiling)", "copy_rows_s"),
        ("minewatch, publish while running", "e2e_live_rows_s"),
        ("minewatch, drain broker backlog", "e2e_drain_rows_s"),
        ("naive bridge, INSERT per reading", "naive_rows_s"),
    ]
    for label, key in rows:
        rate = float(results[key])  # type: ignore[arg-type]
        table.add_row(label, f"{rate:,.0f}", f"{rate / ceiling:.0%}")
    console.print(table)
    console.print(
        f"gateway peak RSS: {results['gateway_peak_rss_mib_live']:.0f} MiB (live), "
        f"{results['gateway_peak_rss_mib_drain']:.0f} MiB (drain); "
        f"alarms raised: {results['alarms']}"
    )
    console.print(
        "gateway CPU s per million readings: "
        f"{results['gateway_cpu_s_per_million_live']:.1f} (live), "
        f"{results['gateway_cpu_s_per_million_drain']:.1f} (drain, with its start-up)"
    )
    for mode in ("live", "drain"):
        stops = str(results[f"gateway_clean_stops_{mode}"])
        done, total = stops.split("/")
        if done != total:
            console.print(
                f"[bold red]{mode}: only {stops} gateway(s) stopped within 30 s of SIGINT "
                "(the others were killed after every reading was committed)"
            )
    print(json.dumps(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=2000)
    parser.add_argument("--cycles", type=int, default=500)
    parser.add_argument("--per-message", type=int, default=50)
    parser.add_argument("--copy-chunk", type=int, default=20_000)
    parser.add_argument("--naive-messages", type=int, default=2000)
    args = parser.parse_args()
    settings = Settings()
    if settings.database_url is None:
        var = Path(tempfile.mkdtemp(prefix="minewatch-bench-"))
        var.chmod(0o755)
        settings = settings.model_copy(update={"var_dir": var})
    with stack_for(settings) as stack:
        admin = stack.database_url.rsplit("/", 1)[0] + "/postgres"
        report(asyncio.run(run(args, admin, stack)))


if __name__ == "__main__":
    main()

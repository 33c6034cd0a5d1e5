"""An interruption storm (issue 14, session 7): every point of a city falls silent at once,
then reports again; what the alarm side's writes and the MQTT alarm topic cost. With
``--storms N`` (session 8) the storm recurs: every point silent again ``--silent-s`` after it
reported, N times, within the incidents' off-delay (``--off-delay-s``, each mine's
``incident_off_delay_s``), so each substation's incident grows by its points at every storm.

    .venv/bin/python -m bench.interruption_storm [--mines 20] [--points 1000]
    .venv/bin/python -m bench.interruption_storm --storms 5 --silent-s 120 --off-delay-s 600

Against a real TimescaleDB and Mosquitto (the embedded stack, or the configured one): a fresh
database with ``--mines`` generated mines of about ``--points`` points, the gateway's alarm
engine (``AlarmEngine``) over its registry, one reading per point, then a clock tick
``--silent-s`` later: every point's ``data_interruption`` and the incidents that group them,
stored as the gateway's tick stores it (``write_changes`` in one transaction), then one more
reading per point (the ends, stored with the readings as the gateway's write batch does). The
alarm publisher (``publish_alarms``, the MQTT alarm topic) runs meanwhile; its drain is the
time from the commit until its durable position holds every change. Printed for each step:
its seconds in the engine and in the write, the statements sent to PostgreSQL (counted in
libpq's trace of the connection: ``Query`` and ``Execute`` messages), the changes and
incidents, the ``incident_members`` rows the step added and the members in all, and the
seconds one query takes to fetch every incident's member ids (what the write fetches for the
``incident`` events, measured apart after the step).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import psycopg

from bench import services
from minewatch.alarms.engine import AlarmEngine
from minewatch.alarms.live import AlarmBroadcaster
from minewatch.alarms.mqtt_publisher import publish_alarms
from minewatch.alarms.store import write_changes
from minewatch.batch import ReadingBatch
from minewatch.embedded import stack_for
from minewatch.ingest.pgcopy import COPY_READINGS_SQL, encode_readings
from minewatch.registry import load_registry_async
from minewatch.settings import Settings
from minewatch.simulators.generator import generate_mine, mine_code
from minewatch.simulators.model import SimulatedMine

S = 1_000_000


class StatementCount:
    """Statements a connection sends, from libpq's trace (``Query``, ``Execute`` messages)."""

    def __init__(self, conn: psycopg.AsyncConnection, directory: Path) -> None:
        self._path = directory / f"trace-{id(conn)}.txt"
        self._file = self._path.open("w")
        conn.pgconn.trace(self._file.fileno())
        conn.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
        self._seen = 0

    def take(self) -> int:
        """Statements sent since the last call."""
        self._file.flush()
        with self._path.open() as f:
            total = sum(1 for line in f if line.startswith("F") and _statement(line))
        taken, self._seen = total - self._seen, total
        return taken


def _statement(line: str) -> bool:
    parts = line.split("\t")
    return len(parts) > 2 and parts[2].split(" ", 1)[0] in ("Query", "Execute")


def _readings(ids: np.ndarray, t_us: int) -> ReadingBatch:
    n = len(ids)
    return ReadingBatch(np.full(n, t_us, np.int64), ids.astype(np.int32), np.full(n, 0.1),
                        np.zeros(n, np.int16), np.zeros(n, np.int16))  # fmt: skip


async def _store(
    conn: psycopg.AsyncConnection, engine: AlarmEngine, batch: ReadingBatch | None, now_us: int
) -> tuple[float, float, int, int]:
    """(engine s, write s, changes, incident changes) of one batch (or a tick: ``None``)."""
    t0 = time.perf_counter()
    evaluation = engine.evaluate(batch) if batch is not None else engine.tick(now_us)
    t1 = time.perf_counter()
    async with conn.transaction(), conn.cursor() as cur:
        if batch is not None:
            async with cur.copy(COPY_READINGS_SQL) as copy:
                await copy.write(encode_readings(batch.with_flags(evaluation.flags)))
        await write_changes(cur, evaluation.changes, engine.registry, evaluation.incidents)
    t2 = time.perf_counter()
    engine.commit(evaluation)
    return t1 - t0, t2 - t1, len(evaluation.changes), len(evaluation.incidents)


async def _drained(conn: psycopg.AsyncConnection, since: float, limit_s: float) -> float:
    """Seconds from ``since`` until the alarm publisher's position holds every change."""
    while time.perf_counter() - since < limit_s:
        cur = await conn.execute(
            "SELECT (SELECT coalesce(max(seq), 0) FROM alarm_changes) - "
            "coalesce((SELECT max(position) FROM outbox_positions WHERE name LIKE 'alarms:%'), -1)"
        )
        row = await cur.fetchone()
        if row is not None and int(row[0]) <= 0:
            return time.perf_counter() - since
        await asyncio.sleep(0.05)
    return float("nan")


async def _members(conn: psycopg.AsyncConnection) -> tuple[int, float]:
    """(incident_members rows, seconds to fetch every incident's member ids as the write
    fetches them for the incident events)."""
    cur = await conn.execute("SELECT count(*) FROM incident_members")
    row = await cur.fetchone()
    started = time.perf_counter()
    cur = await conn.execute(
        "SELECT incident_id, array_agg(alarm_id ORDER BY alarm_id) FROM incident_members "
        "WHERE incident_id = ANY(ARRAY(SELECT id FROM incidents)) GROUP BY incident_id"
    )
    await cur.fetchall()
    return (0 if row is None else int(row[0])), time.perf_counter() - started


async def run(url: str, mqtt_url: str, args: argparse.Namespace, var: Path) -> None:
    async with (
        await psycopg.AsyncConnection.connect(url) as conn,
        await psycopg.AsyncConnection.connect(url, autocommit=True) as watch,
        AlarmBroadcaster(url) as broadcaster,
    ):
        registry = await load_registry_async(conn)
        await conn.rollback()
        ids = np.flatnonzero(registry.known)
        engine = AlarmEngine(registry)
        if args.off_delay_s is not None:
            await watch.execute("UPDATE mines SET incident_off_delay_s = %s", (args.off_delay_s,))
            mines = {str(registry.mine_code[i]) for i in ids}
            engine.restore_incidents({m: args.off_delay_s for m in mines}, [])
        counter = StatementCount(conn, var)
        t0 = (int(time.time()) - args.storms * (args.silent_s + 1) - 2) * S
        publisher = asyncio.create_task(
            publish_alarms(url, broadcaster, mqtt_url, f"bench-storm-{os.getpid()}")
        )
        await _drained(watch, time.perf_counter(), args.drain_limit_s)  # its position read
        steps: list[tuple[str, ReadingBatch | None, int]] = [
            ("readings (before)", _readings(ids, t0), 0)
        ]
        for k in range(args.storms):
            tick = t0 + (k + 1) * args.silent_s * S + k * S
            steps.append((f"tick: storm {k + 1}", None, tick))
            steps.append((f"readings again {k + 1}", _readings(ids, tick + S), 0))
        print(f"{len(ids):,} points in {args.mines} mines")
        print(f"{'step':20s} {'engine s':>9s} {'write s':>8s} {'statements':>10s} "
              f"{'changes':>8s} {'incidents':>9s} {'rows':>7s} {'members':>8s} "
              f"{'ids s':>6s} {'MQTT drain s':>12s}")  # fmt: skip
        stored = 0
        try:
            for name, batch, now in steps:
                counter.take()
                engine_s, write_s, changes, incidents = await _store(conn, engine, batch, now)
                statements = counter.take()
                drain = await _drained(watch, time.perf_counter(), args.drain_limit_s)
                members, ids_s = await _members(watch)
                print(f"{name:20s} {engine_s:9.2f} {write_s:8.2f} {statements:10,d} "
                      f"{changes:8,d} {incidents:9,d} {members - stored:7,d} {members:8,d} "
                      f"{ids_s:6.2f} {drain:12.2f}")  # fmt: skip
                stored = members
        finally:
            publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await publisher
        cur = await watch.execute(
            "SELECT (SELECT count(*) FROM alarms WHERE rule = 'data_interruption'), "
            "(SELECT count(*) FROM incidents), (SELECT count(*) FROM incident_members), "
            "(SELECT count(*) FROM alarm_changes)"
        )
        print("alarms, incidents, members, alarm changes:", await cur.fetchone())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mines", type=int, default=20)
    parser.add_argument("--points", type=int, default=1000, help="about, per mine")
    parser.add_argument("--silent-s", type=int, default=300)
    parser.add_argument("--storms", type=int, default=1, help="storms one after the other")
    parser.add_argument(
        "--off-delay-s",
        type=float,
        default=None,
        help="every mine's incident off-delay (default: the engine's)",
    )
    parser.add_argument("--drain-limit-s", type=float, default=600.0)
    args = parser.parse_args()
    var = Path(tempfile.mkdtemp(prefix="minewatch-storm-"))
    var.chmod(0o755)
    settings = Settings()
    if settings.database_url is None:
        settings = settings.model_copy(update={"var_dir": var})
    definitions = [
        SimulatedMine(generate_mine(mine_code(i, "141024", first=800001), args.points,
                                    seed=i + 1)).definition
        for i in range(args.mines)
    ]  # fmt: skip
    with stack_for(settings) as stack:
        url = services.fresh_database(stack.database_url, "bench_storm", definitions)
        asyncio.run(run(url, stack.mqtt_url, args, var))


if __name__ == "__main__":
    main()

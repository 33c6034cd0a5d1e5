"""Benchmark: the console under load, p50/p95 latency at 20 concurrent clients, against the
API's cheapest route (``/health``, one ``SELECT 1``) measured in the same run as the baseline.

The API runs as its own process (``minewatch api``) on an embedded stack (or the configured
one) holding ``--mines`` simulated mines of one county, ``--days`` days of alarms (``--alarms``
a day per mine, 1 in 200 still open) and one day of one point's 1 s readings. Each client
sends requests one after the other; each endpoint gets ``--requests`` requests in all:

- (a) the regulator's overview of every mine of the county (``/console/regulator``);
- (b) the exceedance ranking of the last 30 days (``/api/v1/reports/exceedance-ranking``);
- (c) a day of one point's 1 s readings bucketed to 1 minute (``/api/v1/points/{id}/readings``);
- (d) the dispatcher's live board page of one mine (``/console/mines/{mine}/board``).

Targets (issue 12): p95 <= 300 ms for (a), (c), (d), <= 1 s for (b).

    .venv/bin/python -m bench.console_load [--mines 100] [--days 30] [--alarms 20]
        [--clients 20] [--requests 200] [--serial 0]

``--serial N`` adds, per endpoint, N requests from one client alone (no queueing behind the
other clients): on a loaded machine, the request's own cost next to the p95 at 20 clients.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg

from minewatch.api.accounts import Hasher, Role, add_key
from minewatch.db import migrate
from minewatch.embedded import free_port, stack_for
from minewatch.metadata import upsert_mine
from minewatch.settings import Settings
from minewatch.simulators.generator import generate_mines
from minewatch.simulators.model import SimulatedMine

COUNTY = "141024"
METHANE = "0001"  # 环境瓦斯 (minewatch.codes.SENSOR_TYPES)
TARGETS_MS = {"overview": 300.0, "ranking": 1000.0, "curve": 300.0, "board": 300.0}


def load_data(url: str, mines: int, days: int, per_day: int) -> tuple[str, int]:
    """The mines, their alarms and a day of 1 s readings of one methane point; returns the
    first mine's code and that point's id."""
    definitions = [SimulatedMine(c).definition for c in generate_mines(mines, 40, county=COUNTY)]
    with psycopg.connect(url) as conn:
        for definition in definitions:
            upsert_mine(conn, definition)
        conn.execute(
            "WITH pts AS (SELECT array_agg(id ORDER BY id) AS ids FROM points "
            "  WHERE sensor_type = %(methane)s), "
            "draws AS (SELECT now() - random() * %(days)s * interval '1 day' AS t, "
            "  pts.ids[1 + floor(random() * cardinality(pts.ids))::int] AS point_id, "
            "  random() < 0.3 AS cut, random() < 0.005 AS open "
            "  FROM generate_series(1, %(n)s) CROSS JOIN pts) "
            "INSERT INTO alarms (mine_code, point_id, rule, abnormal_type, classification, "
            "started_at, ended_at, raised_at, start_value, max_value, max_at, min_value, min_at, "
            "value_sum, value_count) "
            "SELECT p.mine_code, p.id, CASE WHEN cut THEN 'power_off' ELSE 'upper_alarm' END, "
            "  CASE WHEN cut THEN '002' ELSE '001' END, 'exceedance', t, "
            "  CASE WHEN open THEN NULL ELSE t + interval '5 min' END, t, 1.6, 1.5 + random(), "
            "  t, 1.5, t, 3.2, 2 "
            "FROM draws d JOIN points p ON p.id = d.point_id ON CONFLICT DO NOTHING",
            {"n": mines * days * per_day, "days": days, "methane": METHANE},
        )
        row = conn.execute(
            "SELECT id, mine_code FROM points WHERE sensor_type = %s ORDER BY id LIMIT 1",
            (METHANE,),
        ).fetchone()
        assert row is not None
        conn.execute(
            "INSERT INTO readings (time, point_id, value) SELECT date_trunc('day', now()) "
            "- interval '1 day' + s * interval '1 s', %s, 0.3 + 0.1 * random() "
            "FROM generate_series(0, 86399) s",
            (row[0],),
        )
        # loaded outside the gateway: each point's newest reading as after a bulk load (0029)
        conn.execute("SELECT refresh_point_latest()")
    return str(row[1]), int(row[0])


async def keys(url: str, mine: str) -> dict[Role, str]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        hasher = Hasher(1, 1024)
        return {
            Role.REGULATOR: await add_key(conn, hasher, "bench regulator", Role.REGULATOR, COUNTY),
            Role.DISPATCHER: await add_key(conn, hasher, "bench screen", Role.DISPATCHER, mine),
        }


def start_api(url: str, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "MINEWATCH_DATABASE_URL": url, "MINEWATCH_API__PORT": str(port)}
    api = subprocess.Popen([sys.executable, "-m", "minewatch.cli", "api"], env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return api
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    api.kill()
    raise RuntimeError("the API did not start")


async def measure(
    base: str, path: str, key: str | None, clients: int, requests: int
) -> dict[str, float]:
    """``requests`` GETs of ``path`` from ``clients`` concurrent clients: latencies in ms."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    latencies: list[float] = []
    errors = 0
    remaining = requests

    async def client() -> None:
        nonlocal remaining, errors
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as http:
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                response = await http.get(path)
                latencies.append(1000 * (time.perf_counter() - started))
                errors += response.status_code != 200

    await asyncio.gather(*(client() for _ in range(clients)))
    cuts = statistics.quantiles(latencies, n=100)
    return {"p50_ms": cuts[49], "p95_ms": cuts[94], "errors": errors, "n": len(latencies)}


async def run(args: argparse.Namespace, url: str) -> dict[str, object]:
    started = time.monotonic()
    mine, point = load_data(url, args.mines, args.days, args.alarms)
    loaded_s = time.monotonic() - started
    key = await keys(url, mine)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    api = start_api(url, port)
    now = dt.datetime.now(dt.UTC)
    day = (now - dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    month = httpx.QueryParams(start=(now - dt.timedelta(days=30)).isoformat(), end=now.isoformat())
    curve = httpx.QueryParams(
        start=day.isoformat(), end=(day + dt.timedelta(days=1)).isoformat(), bucket="PT1M"
    )
    paths = {
        "baseline": ("/health", None),
        "overview": ("/console/regulator", key[Role.REGULATOR]),
        "ranking": (f"/api/v1/reports/exceedance-ranking?{month}", key[Role.REGULATOR]),
        "curve": (f"/api/v1/points/{point}/readings?{curve}", key[Role.REGULATOR]),
        "board": (f"/console/mines/{mine}/board", key[Role.DISPATCHER]),
    }
    results: dict[str, object] = {"mines": args.mines, "loaded_s": loaded_s}
    try:
        for name, (path, credential) in paths.items():
            await measure(base, path, credential, args.clients, max(2, args.clients))  # warm up
            results[name] = await measure(base, path, credential, args.clients, args.requests)
            if args.serial:  # one client alone: what a request costs without queueing
                results[f"{name}_serial"] = await measure(base, path, credential, 1, args.serial)
    finally:
        api.terminate()
        api.wait(30)
    with psycopg.connect(url) as conn:
        results["alarms"] = conn.execute("SELECT count(*) FROM alarms").fetchone()[0]  # type: ignore[index]
    return results


def report(results: dict[str, object]) -> None:
    print(f"{results['mines']} mines, {results['alarms']} alarms; loaded in "
          f"{results['loaded_s']:.0f} s")  # fmt: skip
    base = results["baseline"]
    assert isinstance(base, dict)
    print(f"{'endpoint':10} {'p50 ms':>8} {'p95 ms':>8} {'target':>8} {'errors':>7}")
    for name in ("baseline", *TARGETS_MS):
        row = results[name]
        assert isinstance(row, dict)
        target = TARGETS_MS.get(name)
        verdict = "" if target is None else ("met" if row["p95_ms"] <= target else "MISSED")
        limit = "" if target is None else f"{target:.0f}"
        print(f"{name:10} {row['p50_ms']:8.0f} {row['p95_ms']:8.0f} {limit:>8} "
              f"{row['errors']:7} {verdict}")  # fmt: skip
        serial = results.get(f"{name}_serial")
        if isinstance(serial, dict):
            print(f"{'  1 client':10} {serial['p50_ms']:8.0f} {serial['p95_ms']:8.0f}")
    print(json.dumps(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mines", type=int, default=100)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--alarms", type=int, default=20, help="alarms a day per mine")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument(
        "--serial",
        type=int,
        default=0,
        help="also this many requests from one client alone per endpoint (0: none)",
    )
    args = parser.parse_args()
    settings = Settings()
    if settings.database_url is None:
        var = Path(tempfile.mkdtemp(prefix="minewatch-bench-"))
        var.chmod(0o755)
        settings = settings.model_copy(update={"var_dir": var})
    with stack_for(settings) as stack:
        migrate(stack.database_url)
        report(asyncio.run(run(args, stack.database_url)))


if __name__ == "__main__":
    main()

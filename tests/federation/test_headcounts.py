"""Personnel head-counts per minute go up to a level that stores summaries: counted from the
stored trips and stays, published from a durable position, stored above per mine, area and
minute, once, whatever is sent again."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import uuid
from pathlib import Path

import psycopg
import pytest

from minewatch.broker_auth import Account, Role
from minewatch.embedded import PostgresServer, broker_accounts
from minewatch.ingest.headcount_publisher import publish_headcounts
from minewatch.ingest.summary_store import SummaryStore
from tests.federation.stacks import Broker, fresh_database
from tests.helpers import eventually

pytestmark = pytest.mark.anyio

MINE = "141024010081"


def _minute(t: dt.datetime) -> dt.datetime:
    return t.replace(second=0, microsecond=0)


def _stored(url: str) -> dict[tuple[str, dt.datetime], int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT area_code, minute, count FROM federated_headcounts WHERE mine_code = %s "
            "AND source = 'city'",
            (MINE,),
        ).fetchall()
    return {(area, minute): count for area, minute, count in rows}


async def test_head_counts_per_minute_reach_the_level_above_through_an_outage_once(
    private_dir: Path, pg_server: PostgresServer
) -> None:
    suffix = f"{os.getpid()}_{uuid.uuid4().hex[:12]}"
    city, province = (fresh_database(pg_server, f"fedhc_{n}_{suffix}") for n in ("c", "p"))
    accounts = broker_accounts(private_dir / "broker")
    accounts.directory.mkdir(mode=0o755)
    broker = Broker(accounts.directory, accounts)
    login = accounts.add(Account("gateway", Role.GATEWAY))
    broker.start()
    now = _minute(dt.datetime.now(dt.UTC))
    entered, left = now - dt.timedelta(minutes=20, seconds=-30), now - dt.timedelta(minutes=9.5)
    with psycopg.connect(city) as conn:
        for k in range(5):  # five underground, two of them out after ten minutes
            out = left if k < 2 else None
            conn.execute(
                "INSERT INTO personnel_trips (mine_code, card_code, entered_at, left_at) "
                "VALUES (%s, %s, %s, %s)",
                (MINE, f"C{k}", entered, out),
            )
            conn.execute(
                "INSERT INTO personnel_stays (mine_code, card_code, area_code, entered_at, "
                "left_at) VALUES (%s, %s, %s, %s, %s)",
                (MINE, f"C{k}", "A01" if k < 3 else "A02", entered, out),
            )
        start = now - dt.timedelta(minutes=25)  # the publisher's position: 25 minutes back
        conn.execute(
            "INSERT INTO outbox_positions (name, position) VALUES ('headcounts:hc-city', %s)",
            (int(start.timestamp()),),
        )

    def expected(upto: dt.datetime) -> dict[tuple[str, dt.datetime], int]:
        out: dict[tuple[str, dt.datetime], int] = {}
        t = start + dt.timedelta(minutes=1)
        while t <= upto:
            inside = 0 if t < entered else (5 if t < left else 3)
            out[("", t)] = inside
            if t >= entered:
                out[("A01", t)] = 3 if t < left else 1
                out[("A02", t)] = 2
            t += dt.timedelta(minutes=1)
        return out

    url = broker.url(login)
    store = SummaryStore(province, url, "hc-province", {"province"})
    tasks = [asyncio.create_task(store.run())]
    try:
        await asyncio.wait_for(store.connected.wait(), 20)
        tasks.append(asyncio.create_task(
            publish_headcounts(city, url, "hc-city", "city", settle_s=0, poll_s=0.5)
        ))  # fmt: skip
        await eventually(lambda: _stored(province) == expected(now), limit_s=30)

        # Everything sent again: the position lost, and read again when the publisher finds
        # its broker gone (at its next minute): the same counts, nothing twice.
        broker.stop()  # (so that the publisher cannot move the position meanwhile)
        with psycopg.connect(city) as conn:
            conn.execute("UPDATE outbox_positions SET position = %s", (int(start.timestamp()),))
        broker.start()
        resent = _minute(dt.datetime.now(dt.UTC)) + dt.timedelta(minutes=1)
        await eventually(lambda: _position(city) >= resent.timestamp(), limit_s=120)
        final = dt.datetime.fromtimestamp(_position(city), dt.UTC)
        await eventually(lambda: _stored(province) == expected(final), limit_s=30)
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        broker.stop()
    with psycopg.connect(province) as conn:
        row = conn.execute("SELECT count(*) FROM federated_headcounts").fetchone()
    assert row == (len(expected(final)),)


def _position(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT position FROM outbox_positions WHERE name = 'headcounts:hc-city'"
        ).fetchone()
    assert row is not None
    return int(row[0])

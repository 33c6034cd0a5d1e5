"""Complete minewatch installations on loopback for the federation tests: each with its own
broker (which a test may stop and start again on the same port and data), its own database
and its own gateway process, linked by the bridges `minewatch federation config` writes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg

from minewatch.broker_accounts import BrokerAccounts, Login
from minewatch.embedded import (
    MosquittoServer,
    PostgresServer,
    embedded_mosquitto,
    free_port,
)
from minewatch.settings import Settings
from tests.fix_stack import TEMPLATE_DB

BINARY = Settings(_env_file=None).mosquitto_bin  # type: ignore[call-arg]


def fresh_database(pg_server: PostgresServer, name: str) -> str:
    with psycopg.connect(pg_server.url("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DB}"')
    return pg_server.url(name)


class Broker:
    """A broker that the test may stop and start again on the same port and data."""

    def __init__(self, directory: Path, accounts: BrokerAccounts, extra: str = "") -> None:
        self.directory, self.accounts, self.extra = directory, accounts, extra
        self.port = free_port()
        self._running: contextlib.ExitStack | None = None
        self.server: MosquittoServer | None = None

    @property
    def running(self) -> bool:
        return self._running is not None

    def start(self) -> None:
        stack = contextlib.ExitStack()
        self.server = stack.enter_context(
            embedded_mosquitto(self.directory, BINARY, self.port, self.accounts, self.extra)
        )
        self._running = stack

    def stop(self) -> None:
        assert self._running is not None
        self._running.close()
        self._running = None

    def url(self, login: Login) -> str:
        assert self.server is not None
        return self.server.url_for(login)


@contextlib.contextmanager
def gateway_process(
    database_url: str, mqtt_url: str, client_id: str, topics: list[str], log: Path,
    **env: str,
) -> Iterator[subprocess.Popen[bytes]]:  # fmt: skip
    """``minewatch gateway`` as its own OS process (a complete installation's gateway), stopped
    with SIGTERM at the end of the block; its log goes to ``log``."""
    environment = os.environ | {
        "MINEWATCH_DATABASE_URL": database_url, "MINEWATCH_MQTT_URL": mqtt_url,
        "MINEWATCH_GATEWAY__CLIENT_ID": client_id,
        "MINEWATCH_GATEWAY__TOPICS": json.dumps(topics),
        "MINEWATCH_RETENTION__ENABLED": "false", "MINEWATCH_LOG_FORMAT": "json",
    } | env  # fmt: skip
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "minewatch.cli", "gateway"], env=environment,
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def subscribed(log: Path) -> bool:
    """Whether the gateway process logging to ``log`` has connected its sources (its safety
    source subscribes right after connecting, before it logs)."""
    return log.exists() and log.read_text().count('"message": "connected to ') >= 2


async def counts(url: str) -> dict[str, int]:
    """Readings per point code."""
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute(
            "SELECT p.code, count(*) FROM readings r JOIN points p ON p.id = r.point_id "
            "GROUP BY p.code"
        )
        return {str(code): int(n) for code, n in await cur.fetchall()}


async def total(url: str) -> int:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        row = await (await conn.execute("SELECT count(*) FROM readings")).fetchone()
        assert row is not None
        return int(row[0])


def duplicates(url: str) -> int:
    """Readings stored more than once (same point and time)."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) - count(DISTINCT (point_id, time)) FROM readings"
        ).fetchone()
    assert row is not None
    return int(row[0])


#: The clock-driven rule: a link outage is, for the level above, a silence of every point
#: (recorded there as data interruption / delivery delay); the mine saw none.
CLOCK_RULES = ("data_interruption",)


def alarm_records(url: str) -> list[tuple[object, ...]]:
    """The alarm records decided by the readings (not by the clock), comparable between
    installations: point, rule, start, end, extreme values."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT p.code, a.rule, a.abnormal_type, a.started_at, a.ended_at, a.max_value, "
            "a.min_value, a.value_count FROM alarms a JOIN points p ON p.id = a.point_id "
            "WHERE a.rule <> ALL(%s) ORDER BY 1, 2, 4",
            (list(CLOCK_RULES),),
        ).fetchall()


def incident_records(url: str) -> list[tuple[object, ...]]:
    """Incidents rooted in a reading-decided alarm: root point, rule, start, grade, peak."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT p.code, i.root_rule, i.category, i.started_at, i.grade, i.peak_value "
            "FROM incidents i JOIN points p ON p.id = i.root_point_id "
            "WHERE i.root_rule <> ALL(%s) ORDER BY 1, 2, 4",
            (list(CLOCK_RULES),),
        ).fetchall()


def keep_evidence(directory: Path, databases: dict[str, str], notes: dict[str, object]) -> None:
    """What a failed comparison between installations leaves to look at, written to
    ``directory`` before the databases are dropped: per-point counts, quarantine, sequence
    marks and gaps of each database, the (point, event time) rows one holds and another not,
    and ``notes`` (what the test knows: e.g. its publisher's calls)."""
    directory.mkdir(parents=True, exist_ok=True)
    rows: dict[str, set[tuple[str, str]]] = {}
    for name, url in databases.items():
        with psycopg.connect(url) as conn:
            report = {
                query: [[str(v) for v in row] for row in conn.execute(query).fetchall()]
                for query in _EVIDENCE_QUERIES
            }
            rows[name] = {
                (str(code), t.isoformat())
                for code, t in conn.execute(
                    "SELECT p.code, r.time FROM readings r JOIN points p ON p.id = r.point_id"
                )
            }
        (directory / f"{name}.json").write_text(json.dumps(report, indent=1))
    names = list(rows)
    for a in names:
        for b in names:
            if a != b:
                only = sorted(rows[a] - rows[b])
                (directory / f"only-at-{a}-not-{b}.json").write_text(json.dumps(only))
    (directory / "notes.json").write_text(json.dumps(notes, indent=1, default=str))


_EVIDENCE_QUERIES = (
    "SELECT p.code, count(*) FROM readings r JOIN points p ON p.id = r.point_id GROUP BY 1",
    "SELECT source, reason, count(*), min(detail) FROM quarantine GROUP BY 1, 2",
    "SELECT source, boot, seq, jsonb_array_length(missing), earlier::text, forgotten "
    "FROM source_watermarks",
    "SELECT * FROM sequence_gaps ORDER BY source, boot, first_seq",
    "SELECT p.code, a.rule, a.abnormal_type, a.started_at, a.ended_at, a.max_value, "
    "a.min_value, a.value_count, a.computed_late FROM alarms a "
    "JOIN points p ON p.id = a.point_id ORDER BY 1, 2, 4",
    "SELECT p.code, i.root_rule, i.category, i.started_at, i.grade, i.peak_value "
    "FROM incidents i JOIN points p ON p.id = i.root_point_id ORDER BY 1, 2, 4",
)

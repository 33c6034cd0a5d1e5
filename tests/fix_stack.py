"""Session fixtures: one private PostgreSQL+TimescaleDB and one private Mosquitto per test
session (per xdist worker), on free ports, in private directories. Each test that needs a
database gets a fresh one cloned from a migrated template (fast, isolated)."""

from __future__ import annotations

import itertools
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from minewatch.db import migrate
from minewatch.embedded import (
    MosquittoServer,
    PostgresServer,
    embedded_mosquitto,
    embedded_postgres,
)
from minewatch.settings import Settings

TEMPLATE_DB = "minewatch_template"
#: The session's shared cluster is thrown away at the end: no flush to disk on commit,
#: checkpoint or database creation (each test's database is a copy of the template). What the
#: tests prove about crashes is unchanged: a killed server's writes are still in the OS's page
#: cache; only a power cut would lose them. Tests that stop or crash PostgreSQL on purpose run
#: their own clusters with the production settings.
THROWAWAY_CLUSTER = ("fsync=off", "full_page_writes=off")
_counter = itertools.count()


@pytest.fixture(scope="session")
def stack_dir() -> Iterator[Path]:
    # Not pytest's tmp_path: its parents are private to root, and the servers run as their
    # own system users when the tests run as root.
    path = Path(tempfile.mkdtemp(prefix="minewatch-test-"))
    path.chmod(0o755)
    yield path
    # By the end of a run the shared cluster holds a database per test (gigabytes): removing
    # it took over 5 minutes on a busy disk, longer than the last test's timeout, which then
    # failed at its teardown. A detached `rm` removes it after the run; nothing waits for it
    # (the shell returns at once, its background `rm` goes on in a session of its own).
    subprocess.run(
        ["sh", "-c", 'setsid rm -rf -- "$1" >/dev/null 2>&1 &', "sh", str(path)], check=True
    )


@pytest.fixture(scope="session")
def settings_defaults() -> Settings:
    return Settings(_env_file=None)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def pg_server(stack_dir: Path, settings_defaults: Settings) -> Iterator[PostgresServer]:
    with embedded_postgres(
        stack_dir / "pg", settings_defaults.pg_bin_dir, database=TEMPLATE_DB,
        options=THROWAWAY_CLUSTER,
    ) as server:  # fmt: skip
        migrate(server.url(TEMPLATE_DB))
        with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
            # A template must have no sessions, TimescaleDB's scheduler included.
            conn.execute(f'ALTER DATABASE "{TEMPLATE_DB}" WITH ALLOW_CONNECTIONS false')
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (TEMPLATE_DB,),
            )
        yield server


@pytest.fixture
def database_url(pg_server: PostgresServer) -> str:
    """A fresh, migrated database for this test."""
    name = f"test_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(pg_server.url("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DB}"')
    return pg_server.url(name)


@pytest.fixture(scope="session")
def mqtt_server(stack_dir: Path, settings_defaults: Settings) -> Iterator[MosquittoServer]:
    with embedded_mosquitto(stack_dir / "mosquitto", settings_defaults.mosquitto_bin) as server:
        yield server


@pytest.fixture
def mqtt_url(mqtt_server: MosquittoServer) -> str:
    return mqtt_server.url


@pytest.fixture
def unique_id(request: pytest.FixtureRequest) -> str:
    """A name unique to this test, for client ids and topics on the shared broker."""
    return f"{request.node.name[:40]}-{os.getpid()}-{next(_counter)}"


@pytest.fixture
def private_dir() -> Iterator[Path]:
    """A directory for servers private to one test (which it may stop and start at will)."""
    path = Path(tempfile.mkdtemp(prefix="minewatch-private-"))
    path.chmod(0o755)
    yield path
    # By the end of a run the shared cluster holds a database per test (gigabytes): removing
    # it took over 5 minutes on a busy disk, longer than the last test's timeout, which then
    # failed at its teardown. A detached `rm` removes it after the run; nothing waits for it
    # (the shell returns at once, its background `rm` goes on in a session of its own).
    subprocess.run(
        ["sh", "-c", 'setsid rm -rf -- "$1" >/dev/null 2>&1 &', "sh", str(path)], check=True
    )

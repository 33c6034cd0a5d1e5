"""The embedded default stack: a private PostgreSQL + TimescaleDB cluster and a private Mosquitto.

Used when no ``MINEWATCH_DATABASE_URL`` / ``MINEWATCH_MQTT_URL`` is configured, and by the
tests (one stack per test session), so nothing ever touches the machine's own services.
Both servers run as child processes of the caller in the foreground: stopping the caller
(Ctrl-C, end of the ``with`` block) stops them, and no daemon is left behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg

from minewatch.broker_accounts import PID, BrokerAccounts, Login
from minewatch.broker_auth import TlsFiles, with_login
from minewatch.settings import Settings

_PR_SET_PDEATHSIG = 1


class EmbeddedStackError(RuntimeError):
    """A private server could not be prepared or started."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _service_user(name: str) -> pwd.struct_passwd | None:
    """The system user to run a server as when we are root (servers refuse to run as root)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(name)
    except KeyError as exc:
        raise EmbeddedStackError(f"running as root needs the system user {name!r}") from exc


def _prepare_dir(path: Path, owner: pwd.struct_passwd | None) -> None:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if owner is not None:
        for item in [path, *path.rglob("*")]:
            os.chown(item, owner.pw_uid, owner.pw_gid)
        # The service user must be able to reach the directory through its parents.
        probe = subprocess.run(
            ["test", "-w", str(path)], user=owner.pw_uid, group=owner.pw_gid, check=False
        )
        if probe.returncode != 0:
            raise EmbeddedStackError(
                f"{path} is not reachable by user {owner.pw_name}: put var_dir on a path "
                "whose parents are world-executable (e.g. under /tmp or /srv)"
            )


def _die_with_parent(sig: int) -> Callable[[], None]:
    """A ``preexec_fn`` asking Linux to send ``sig`` to the server when its parent dies.

    Servers run in their own session so that a Ctrl-C in the terminal reaches only minewatch,
    which drains its work and then stops them in order; this signal covers the case where
    minewatch itself is killed (``kill -9``), so no server is ever left behind.
    """

    def preexec() -> None:
        if sys.platform.startswith("linux"):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, sig)

    return preexec


def _run_as(owner: pwd.struct_passwd | None, stop_signal: int) -> dict[str, object]:
    # preexec_fn runs after the switch of user, which would otherwise clear the death signal.
    options: dict[str, object] = {
        "start_new_session": True,
        "preexec_fn": _die_with_parent(stop_signal),
    }
    if owner is not None:
        options.update(user=owner.pw_uid, group=owner.pw_gid, extra_groups=[])
    return options


def _wait_for_port(
    port: int, process: subprocess.Popen[bytes], log_file: Path, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_file.read_text(errors="replace")[-3000:] if log_file.exists() else ""
            raise EmbeddedStackError(f"server exited with {process.returncode}:\n{tail}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise EmbeddedStackError(f"server did not listen on port {port} within {timeout}s")


def _stop(process: subprocess.Popen[bytes], sig: int, timeout: float = 30.0) -> None:
    if process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass(frozen=True, slots=True)
class PostgresServer:
    host: str
    port: int
    data_dir: Path

    def url(self, dbname: str = "minewatch") -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{dbname}"


@contextlib.contextmanager
def embedded_postgres(
    data_dir: Path,
    bin_dir: Path,
    port: int | None = None,
    database: str = "minewatch",
    options: Sequence[str] = (),
) -> Iterator[PostgresServer]:
    """Run a private PostgreSQL cluster with TimescaleDB preloaded; create ``database``.

    ``options`` are more ``name=value`` server settings (after the defaults, so they win)."""
    for tool in ("initdb", "postgres"):
        if not (bin_dir / tool).exists():
            raise EmbeddedStackError(f"{bin_dir / tool} not found: run deploy/setup.sh first")
    owner = _service_user("postgres")
    data_dir = data_dir.resolve()
    _prepare_dir(data_dir, owner)
    log_file = data_dir.parent / f"{data_dir.name}.log"
    if not (data_dir / "PG_VERSION").exists():
        subprocess.run(
            [str(bin_dir / "initdb"), "-D", str(data_dir), "-A", "trust", "-U", "postgres",
             "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"],
            check=True, capture_output=True, **_run_as(owner, signal.SIGINT),  # type: ignore[call-overload]
        )  # fmt: skip
    port = port or free_port()
    with open(log_file, "ab") as log:
        process = subprocess.Popen(
            [str(bin_dir / "postgres"), "-D", str(data_dir), "-p", str(port),
             "-k", str(data_dir), "-c", "listen_addresses=127.0.0.1",
             "-c", "shared_preload_libraries=timescaledb", "-c", "timescaledb.telemetry_level=off",
             "-c", "max_connections=200", "-c", "shared_buffers=256MB",
             "-c", "synchronous_commit=on", "-c", "max_wal_size=2GB",
             *(arg for option in options for arg in ("-c", option))],
            stdout=log, stderr=subprocess.STDOUT, **_run_as(owner, signal.SIGINT),  # type: ignore[call-overload]
        )  # fmt: skip
    try:
        _wait_for_port(port, process, log_file, timeout=60)
        server = PostgresServer("127.0.0.1", port, data_dir)
        _create_database(server, database)
        yield server
    finally:
        _stop(process, signal.SIGINT)  # SIGINT = PostgreSQL's "fast" shutdown


def _create_database(server: PostgresServer, database: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
                exists = conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
                ).fetchone()
                if not exists:
                    conn.execute(f'CREATE DATABASE "{database}"')
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@dataclass(frozen=True, slots=True)
class MosquittoServer:
    host: str
    port: int
    data_dir: Path

    @property
    def url(self) -> str:
        """The broker's URL without a login."""
        return f"mqtt://{self.host}:{self.port}"

    def url_for(self, login: Login) -> str:
        """The broker's URL carrying ``login``."""
        return with_login(self.url, login.username, login.password)


def _access_lines(accounts: BrokerAccounts | None) -> list[str]:
    if accounts is None:
        return ["allow_anonymous true"]
    return [
        "allow_anonymous false",
        f"password_file {accounts.passwd_file}",
        f"acl_file {accounts.acl_path}",
    ]


#: Seconds between two saves of the embedded Mosquitto's queue to disk: a broker killed
#: (SIGKILL, a power cut) loses the messages it acknowledged since its last save, at most about
#: this long of them (Mosquitto 2.0 writes its whole state at each save; docs/operations.md
#: "What a broker crash can lose"; ``tests/ingest/test_broker_crash.py``).
AUTOSAVE_INTERVAL_S = 1


def mosquitto_config(
    port: int, data_dir: Path, accounts: BrokerAccounts | None = None, extra: str = ""
) -> str:
    """A broker configuration fit for lossless ingestion (see docs/operations.md).

    Mosquitto's defaults lose data: ``max_queued_messages`` 1000 drops QoS 1 messages for an
    offline persistent session, and ``max_inflight_messages`` 20 caps throughput when
    acknowledgements wait for the database commit. ``set_tcp_nodelay``: the acknowledgements of
    many QoS 1 messages in flight go out at once, not one per TCP round trip (Nagle). With
    ``accounts`` only their logins may connect, each limited by its ACL; without, any client
    may (the test session's broker).
    ``extra`` is appended (a bridge to the parent installation, docs/federation.md).
    """
    return "\n".join([
        f"listener {port} 127.0.0.1",
        *_access_lines(accounts),
        "persistence true",
        f"persistence_location {data_dir}/",
        f"autosave_interval {AUTOSAVE_INTERVAL_S}",
        "max_inflight_messages 1000",
        "set_tcp_nodelay true",
        "max_queued_messages 5000000",
        "max_queued_bytes 0",
        "message_size_limit 16777216",
        "persistent_client_expiration 14d",
        "log_dest stdout",
        "log_type error",
        "log_type warning",
        "log_type notice",
        extra,
    ])  # fmt: skip


def broker_accounts(data_dir: Path) -> BrokerAccounts:
    """The account files of the embedded broker that keeps its data in ``data_dir``."""
    owner = _service_user("mosquitto")
    return BrokerAccounts(
        data_dir.resolve(), None if owner is None else (owner.pw_uid, owner.pw_gid)
    )


@contextlib.contextmanager
def embedded_mosquitto(
    data_dir: Path,
    binary: Path,
    port: int | None = None,
    accounts: BrokerAccounts | None = None,
    extra_config: str = "",
) -> Iterator[MosquittoServer]:
    """Run a private Mosquitto broker with persistence and lossless queue limits; with
    ``accounts``, only their logins may connect (:func:`stack_for` always passes them);
    ``extra_config``: more configuration lines (a bridge)."""
    if not binary.exists() and shutil.which(str(binary)) is None:
        raise EmbeddedStackError(f"{binary} not found: run deploy/setup.sh first")
    owner = _service_user("mosquitto")
    data_dir = data_dir.resolve()
    _prepare_dir(data_dir, owner)
    port = port or free_port()
    conf = data_dir / "mosquitto.conf"
    conf.unlink(missing_ok=True)
    conf.touch(mode=0o600)  # a bridge in it holds the link's password
    conf.write_text(mosquitto_config(port, data_dir, accounts, extra_config))
    if owner is not None:
        os.chown(conf, owner.pw_uid, owner.pw_gid)
    log_file = data_dir / "mosquitto.log"
    with open(log_file, "ab") as log:
        process = subprocess.Popen(  # type: ignore[call-overload]
            [str(binary), "-c", str(conf)],
            stdout=log,
            stderr=subprocess.STDOUT,
            **_run_as(owner, signal.SIGTERM),  # as its user: its own setuid would clear the signal
        )
    pid_file = data_dir / PID  # for `minewatch broker add` to make it reload its accounts
    pid_file.write_text(str(process.pid))
    try:
        _wait_for_port(port, process, log_file, timeout=30)
        yield MosquittoServer("127.0.0.1", port, data_dir)
    finally:
        _stop(process, signal.SIGTERM)
        pid_file.unlink(missing_ok=True)


@dataclass(frozen=True, slots=True)
class Stack:
    """URLs of the database and the broker that a command should use: ``mqtt_url`` with the
    gateway's login, ``publisher_url`` with the login of a simulator (the same URL when the
    broker is configured: the environment of each command then names its own login)."""

    database_url: str
    mqtt_url: str
    publisher_url: str


def _stack_file(settings: Settings) -> Path:
    return settings.var_dir / "stack.json"


def running_stack(settings: Settings) -> Stack | None:
    """The embedded stack that ``minewatch stack`` runs for this var_dir, if it is up."""
    path = _stack_file(settings)
    try:
        info = json.loads(path.read_text())
        os.kill(int(info["pid"]), 0)
    except (OSError, ValueError, KeyError):
        return None
    return Stack(str(info["database_url"]), str(info["mqtt_url"]), str(info["publisher_url"]))


@contextlib.contextmanager
def published_stack(settings: Settings, stack: Stack) -> Iterator[None]:
    """Advertise ``stack`` to other minewatch commands using the same var_dir."""
    path = _stack_file(settings)
    path.touch(mode=0o600)  # it holds the embedded broker's logins
    path.chmod(0o600)
    path.write_text(json.dumps({"pid": os.getpid(), "database_url": stack.database_url,
                                "mqtt_url": stack.mqtt_url,
                                "publisher_url": stack.publisher_url}))  # fmt: skip
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def stack_for(settings: Settings) -> Iterator[Stack]:
    """The configured servers; else the running embedded stack of ``var_dir``; else a new
    embedded one, for what is not configured, living as long as the ``with`` block."""
    shared = running_stack(settings)
    if shared is not None and settings.database_url is None and settings.mqtt_url is None:
        yield shared
        return
    with contextlib.ExitStack() as servers:
        database_url = settings.database_url
        if database_url is None:
            pg = servers.enter_context(
                embedded_postgres(settings.var_dir / "pg", settings.pg_bin_dir)
            )
            database_url = pg.url()
        if settings.mqtt_url is not None:
            mqtt_url = configured_broker_url(settings)
            yield Stack(database_url, mqtt_url, mqtt_url)
            return
        data_dir = settings.var_dir / "mosquitto"
        accounts = broker_accounts(data_dir)
        _prepare_dir(accounts.directory, _service_user("mosquitto"))
        logins = accounts.embedded_logins()
        bridge = settings.broker.bridge_file
        broker = servers.enter_context(
            embedded_mosquitto(
                data_dir, settings.mosquitto_bin, accounts=accounts,
                extra_config=bridge.read_text() if bridge is not None else "",
            )
        )  # fmt: skip
        yield Stack(
            database_url, broker.url_for(logins["gateway"]), broker.url_for(logins["simulator"])
        )


def configured_broker_url(settings: Settings) -> str:
    """``MINEWATCH_MQTT_URL`` with the login and TLS files of ``MINEWATCH_BROKER__*``."""
    assert settings.mqtt_url is not None
    auth = settings.broker
    password = auth.password.get_secret_value() if auth.password is not None else None
    tls = TlsFiles(auth.ca_file, auth.cert_file, auth.key_file)
    return with_login(settings.mqtt_url, auth.username, password, tls)

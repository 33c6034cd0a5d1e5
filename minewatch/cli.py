"""The ``minewatch`` command: the composition root where settings become running parts."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from minewatch.broker_auth import redacted
from minewatch.broker_commands import register as register_broker_commands
from minewatch.doctor.commands import register as register_doctor
from minewatch.federation.commands import register as register_federation_commands
from minewatch.logs import setup_logging
from minewatch.settings import Settings

if TYPE_CHECKING:
    from minewatch.alarms.prealarms import PrealarmParams
    from minewatch.embedded import Stack
    from minewatch.ingest.gateway import Gateway
    from minewatch.simulators.model import SimulatedMine
    from minewatch.trace import Trace

console = Console(stderr=True)
log = logging.getLogger("minewatch")


def _run(coro_factory: Callable[[], Awaitable[object]]) -> int:
    """Run a coroutine until it ends or a stop signal; SIGINT (Ctrl-C) and SIGTERM (systemd,
    docker, kill) cancel it cleanly: it drains, acknowledges what is durable and exits 0.

    The handlers are installed on the loop whatever the process inherited: a shell starts
    background jobs with SIGINT ignored, and Python's default for SIGTERM is to die at once.
    """

    async def until_stopped() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for stop in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(stop, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await coro_factory()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(until_stopped())
    return 0


# -- commands -----------------------------------------------------------------------------------


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from minewatch.db import migrate
    from minewatch.embedded import stack_for

    with stack_for(settings) as stack:
        applied = migrate(stack.database_url)
    console.print(f"applied: {', '.join(applied) or 'nothing (schema is current)'}")
    return 0


def cmd_stack(settings: Settings, args: argparse.Namespace) -> int:
    """Run the embedded stack for other commands in other terminals."""
    from minewatch.db import migrate
    from minewatch.embedded import published_stack, stack_for

    settings.var_dir.mkdir(parents=True, exist_ok=True)
    with stack_for(settings) as stack, published_stack(settings, stack):
        migrate(stack.database_url)
        console.print(f"database: {stack.database_url}\nbroker:   {redacted(stack.mqtt_url)}")
        console.print("Ctrl-C stops the stack.")
        _run(lambda: asyncio.Event().wait())  # until SIGINT or SIGTERM
    return 0


def cmd_mine_load(settings: Settings, args: argparse.Namespace) -> int:
    import psycopg

    from minewatch.db import migrate
    from minewatch.embedded import stack_for
    from minewatch.metadata import MineDefinition, upsert_mine

    path = Path(args.file)
    if path.suffix == ".toml":
        from minewatch.simulators.config import load_mine_config
        from minewatch.simulators.model import SimulatedMine

        definition = SimulatedMine(load_mine_config(path)).definition
    else:
        definition = MineDefinition.model_validate_json(path.read_bytes())
    with stack_for(settings) as stack:
        migrate(stack.database_url)
        with psycopg.connect(stack.database_url) as conn:
            upsert_mine(conn, definition)
    console.print(f"loaded mine {definition.mine.code}: {len(definition.points)} points")
    return 0


def cmd_gateway(settings: Settings, args: argparse.Namespace) -> int:
    from minewatch.db import migrate
    from minewatch.embedded import stack_for
    from minewatch.ingest.gateway import Gateway

    with stack_for(settings) as stack:
        migrate(stack.database_url)
        gateway = Gateway(
            settings.gateway, stack.database_url, stack.mqtt_url, feeds=settings.feeds
        )
        console.print(f"gateway: {redacted(stack.mqtt_url)} -> {stack.database_url}")
        return _run(lambda: _with_maintenance(settings, stack.database_url, gateway))


async def _with_maintenance(settings: Settings, database_url: str, gateway: Gateway) -> None:
    """The gateway, and retention + rollups beside it unless MINEWATCH_RETENTION__ENABLED=0."""
    from minewatch.ingest.maintenance import Maintenance, MaintenanceMetrics

    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(gateway.run(), name="gateway")
        if settings.retention.enabled:
            metrics = MaintenanceMetrics(gateway.metrics.registry)
            maintenance = Maintenance(database_url, settings.retention, metrics)
            tasks.create_task(maintenance.run(), name="maintenance")


def cmd_maintenance(settings: Settings, args: argparse.Namespace) -> int:
    """Retention and rollups: one round (--once, for a systemd timer), or every interval_s."""
    from minewatch.db import migrate
    from minewatch.embedded import stack_for
    from minewatch.ingest.maintenance import Maintenance

    with stack_for(settings) as stack:
        migrate(stack.database_url)
        maintenance = Maintenance(stack.database_url, settings.retention)
        if not args.once:
            return _run(maintenance.run)
        ran = asyncio.run(maintenance.run_once())
        console.print("maintenance round done" if ran else "another process holds the round")
        return 0


def cmd_api(settings: Settings, args: argparse.Namespace) -> int:
    from minewatch.api import create_app
    from minewatch.api.server import serve
    from minewatch.db import migrate
    from minewatch.embedded import stack_for

    with stack_for(settings) as stack:
        migrate(stack.database_url)
        app = create_app(stack.database_url, settings.api, settings.auth)
        console.print(f"API on http://{settings.api.host}:{settings.api.port}/docs")
        return _run(lambda: serve(app, settings.api.host, settings.api.port))


def _read_password(args: argparse.Namespace) -> str:
    import getpass

    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password (12 characters at least): ")
    if getpass.getpass("again: ") != first:
        raise SystemExit("the passwords differ")
    return first


def cmd_user_add(settings: Settings, args: argparse.Namespace) -> int:
    """Create (or reset) an account: the first admin of a fresh install comes from here."""
    import psycopg

    from minewatch.api.accounts import AccountError, Hasher, Role, add_account
    from minewatch.db import migrate
    from minewatch.embedded import stack_for

    password = _read_password(args)
    hasher = Hasher(settings.auth.hash_time_cost, settings.auth.hash_memory_kib)

    async def add(url: str) -> None:
        async with await psycopg.AsyncConnection.connect(url) as conn:
            await add_account(conn, hasher, args.username, password, Role(args.role), args.scope,
                              args.name)  # fmt: skip

    with stack_for(settings) as stack:
        migrate(stack.database_url)
        try:
            asyncio.run(add(stack.database_url))
        except AccountError as error:
            raise SystemExit(str(error)) from None
    console.print(f"account {args.username}: {args.role}, scope {args.scope or 'every mine'}")
    return 0


def cmd_key_add(settings: Settings, args: argparse.Namespace) -> int:
    """Create an API key for a machine client; printed once on stdout, kept only as a hash."""
    import psycopg

    from minewatch.api.accounts import AccountError, Hasher, Role, add_key
    from minewatch.db import migrate
    from minewatch.embedded import stack_for

    hasher = Hasher(settings.auth.hash_time_cost, settings.auth.hash_memory_kib)

    async def add(url: str) -> str:
        async with await psycopg.AsyncConnection.connect(url) as conn:
            return await add_key(conn, hasher, args.name, Role(args.role), args.scope)

    with stack_for(settings) as stack:
        migrate(stack.database_url)
        try:
            key = asyncio.run(add(stack.database_url))
        except AccountError as error:
            raise SystemExit(str(error)) from None
    console.print(f"API key {args.name!r} ({args.role}, scope {args.scope or 'every mine'}); "
                  "shown once, send it as 'Authorization: Bearer <key>':")  # fmt: skip
    print(key)
    return 0


def _simulated_mine(config: str | None) -> SimulatedMine:
    from minewatch.simulators.config import example_mine_path, load_mine_config
    from minewatch.simulators.model import SimulatedMine

    return SimulatedMine(load_mine_config(Path(config) if config else example_mine_path()))


def _simulate_modbus(settings: Settings, args: argparse.Namespace, mine: SimulatedMine) -> int:
    """Every substation as a Modbus TCP device, the register map written for a poller."""
    from minewatch.modbus_map import ModbusMap
    from minewatch.simulators.modbus_server import (
        fixed_port_map,
        mbpoll_commands,
        serve_until_cancelled,
    )

    host, port = args.modbus_host, args.modbus_port
    map_out = Path(args.map_out) if args.map_out else settings.var_dir / "modbus-map.toml"
    fixed = fixed_port_map(mine, host, port) if port else None

    def ready(register_map: ModbusMap) -> None:
        map_out.parent.mkdir(parents=True, exist_ok=True)
        map_out.write_text(register_map.to_toml(), encoding="utf-8")
        for station in register_map.substations:
            device = station.device
            console.print(f"substation {station.substation}: {device.host}:{device.port} "
                          f"unit {device.unit_id}, {len(station.points)} points")  # fmt: skip
            for line in mbpoll_commands(station):
                console.print(f"  {line}", markup=False, highlight=False)
        console.print(f"register map: {map_out}", markup=False, highlight=False)
        console.print(f"poll it: MINEWATCH_GATEWAY__MODBUS_MAP_FILE={map_out} minewatch gateway",
                      markup=False, highlight=False)  # fmt: skip

    return _run(lambda: serve_until_cancelled(mine, fixed, host, ready))


def cmd_simulate(settings: Settings, args: argparse.Namespace) -> int:
    from minewatch.embedded import stack_for
    from minewatch.simulators.mqtt_publisher import publish_mine

    if args.files:
        from minewatch.simulators.national_files import write_drop_folder

        written = write_drop_folder(
            args.config, Path(args.files), minutes=args.minutes, start=args.start,
            realtime=not args.fast,
        )  # fmt: skip
        counts = ", ".join(f"{n} {t}" for t, n in written.counts.items())
        console.print(f"wrote {len(written.files)} files to {args.files}: {counts}")
        return 0
    mine = _simulated_mine(args.config)
    if args.modbus:
        return _simulate_modbus(settings, args, mine)
    if args.record:
        from minewatch.simulators.trace import record

        cycles = round(args.hours * 3600 / mine.config.simulation.cycle_s)
        record(mine, Path(args.record), cycles)
        console.print(f"recorded {cycles} cycles of {len(mine.codes)} points to {args.record}")
        return 0
    from minewatch.simulators.comms import labels as comms_labels
    from minewatch.simulators.comms import publish_comms
    from minewatch.simulators.live import publish_feeds
    from minewatch.simulators.national_files import feeds_starting_at, mine_starting_at

    start = dt.datetime.now(dt.UTC).replace(microsecond=0)
    mine = mine_starting_at(mine.config, start)
    # The other systems (personnel, video, output, communications) with their scenarios, on the
    # same clock;
    # fast and endless would flood the broker, so --fast plays them only with --cycles.
    feeds = None
    end = None
    if args.cycles is not None:
        end = start + dt.timedelta(seconds=args.cycles * mine.config.simulation.cycle_s)
    if not args.safety_only and (end is not None or not args.fast):
        feeds = feeds_starting_at(mine.config, start, mine.ground_truth)
    with stack_for(settings) as stack:
        report = None

        async def main() -> None:
            nonlocal report
            safety = publish_mine(
                mine, stack.publisher_url, cycles=args.cycles, realtime=not args.fast, start=start
            )
            if feeds is None:
                report = await safety
                return
            other = publish_feeds(feeds, stack.publisher_url, start, end, realtime=not args.fast)
            comms = publish_comms(feeds, stack.publisher_url, start, end, realtime=not args.fast)
            report, _, _ = await asyncio.gather(safety, other, comms)

        _run(main)
    if report is not None:
        console.print(
            f"published {report.cycles} cycles, {report.messages} messages, "
            f"{report.readings} readings"
        )
        truth = [dataclasses.asdict(g) for g in mine.ground_truth]
        if feeds is not None:
            truth += [dataclasses.asdict(g) for g in feeds.labels]
            truth += [dataclasses.asdict(g) for g in comms_labels(feeds)]
        print(json.dumps(truth, ensure_ascii=False))
    return 0


def cmd_replay(settings: Settings, args: argparse.Namespace) -> int:
    """Feed a recorded trace through the gateway's pipeline, with a progress bar."""
    from minewatch.db import migrate
    from minewatch.embedded import stack_for
    from minewatch.simulators.trace import Trace
    from minewatch.timeutil import now_us

    trace = Trace(Path(args.trace))
    speed = None if args.speed == "max" else float(args.speed)
    total = int(trace.manifest.get("readings", 0)) or None
    rebase = now_us() if args.rebase else None
    with stack_for(settings) as stack:
        migrate(stack.database_url)
        return _run(lambda: _replay(settings, stack, trace, speed, total, rebase))


async def _replay(
    settings: Settings,
    stack: Stack,
    trace: Trace,
    speed: float | None,
    total: int | None,
    rebase: int | None,
) -> None:
    from rich.progress import Progress

    from minewatch.ingest.gateway import Gateway
    from minewatch.ingest.sources.replay.adapter import TraceReplaySource

    # Recorded event times are history: accept any age, and no wall-clock interruption checks.
    replay_settings = settings.gateway.model_copy(
        update={"max_past_age_s": 1e10, "tick_s": None,
                "client_id": f"{settings.gateway.client_id}-replay"}
    )  # fmt: skip
    with Progress(console=console) as progress:
        task = progress.add_task(f"replaying {trace.path.name}", total=total)
        source = TraceReplaySource(
            trace, speed=speed, rebase_to_us=rebase,
            progress=lambda n: progress.update(task, completed=n),
        )  # fmt: skip
        gateway = Gateway(replay_settings, stack.database_url, stack.mqtt_url, sources=[source])
        runner = asyncio.create_task(gateway.run())
        finished = asyncio.create_task(source.finished.wait())
        await asyncio.wait({runner, finished}, return_when=asyncio.FIRST_COMPLETED)
        if runner.done():
            finished.cancel()
            runner.result()  # the gateway failed: say why
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
    metrics = gateway.metrics
    console.print(
        f"replayed {source.yielded:,} readings: {metrics.readings_stored._value.get():,.0f} "
        f"stored, duplicates {metrics.duplicates._value.get():,.0f}"
    )


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    """Everything at once: embedded stack, gateway, API, simulator; alarms on the console."""
    from minewatch.db import migrate
    from minewatch.embedded import published_stack, stack_for

    settings.var_dir.mkdir(parents=True, exist_ok=True)
    with stack_for(settings) as stack, published_stack(settings, stack):
        migrate(stack.database_url)
        return _run(lambda: _demo(settings, stack, args.config))


async def _demo(settings: Settings, stack: Stack, config: str | None) -> None:
    from minewatch.alarms.live import AlarmBroadcaster
    from minewatch.api import create_app
    from minewatch.api.server import serve
    from minewatch.demo_events import Place, event_line
    from minewatch.ingest.gateway import Gateway
    from minewatch.simulators.mqtt_publisher import publish_mine

    database_url, mqtt_url = stack.database_url, stack.mqtt_url
    mine = _simulated_mine(config)
    gateway = Gateway(settings.gateway, database_url, mqtt_url, feeds=settings.feeds)
    work = _with_maintenance(settings, database_url, gateway)
    base = f"http://{settings.api.host}:{settings.api.port}"
    sign_in = await _demo_accounts(settings, database_url, mine.definition.mine.code)
    api_started = asyncio.Event()
    async with asyncio.TaskGroup() as tasks, AlarmBroadcaster(database_url) as alarms:
        tasks.create_task(work, name="gateway")
        tasks.create_task(
            serve(
                create_app(database_url, settings.api, settings.auth),
                settings.api.host,
                settings.api.port,
                api_started,
            ),
            name="api",
        )
        await gateway.ready.wait()
        await api_started.wait()
        truth = mine.ground_truth[0] if mine.ground_truth else None
        console.rule("[bold]minewatch demo")
        console.print(f"mine {mine.definition.mine.code}: {len(mine.codes)} points, "
                      f"database {database_url}, broker {redacted(mqtt_url)}")  # fmt: skip
        console.print(f"API docs:      {base}/docs (Authorize: the API key below)")
        for line in sign_in:
            console.print(line, soft_wrap=True)
        auth = "-H 'Authorization: Bearer $MINEWATCH_KEY'"
        console.print(f"active alarms: curl {auth} {base}/api/v1/dispatch/alarms/active")
        console.print(f"live stream:   curl -N {auth} {base}/api/v1/dispatch/alarms/stream")
        if truth is not None:
            console.print(f"injected: {truth.kind} on {truth.point} at +{truth.start_s:.0f}s "
                          f"(peak {truth.peak})")  # fmt: skip
        console.print("Ctrl-C stops everything.")
        simulator = publish_mine(mine, stack.publisher_url, cycles=None, realtime=True)
        tasks.create_task(simulator, name="sim")
        places = {p.code: Place(p.location, p.area_code) for p in mine.definition.points}
        while True:  # subscribed again after an overflow (the broadcaster dropped this one)
            async with alarms.subscribe() as queue:
                while True:
                    event = await queue.get()
                    console.print(event_line(event, places))
                    if event.get("event") == "overflow":
                        break


async def _demo_accounts(settings: Settings, database_url: str, mine_code: str) -> list[str]:
    """A demo dispatcher of the simulated mine and a demo regulator of its county, with new
    random passwords each run, and a dispatcher API key; the lines that say how to sign in."""
    import secrets

    import psycopg

    from minewatch.api.accounts import Hasher, Role, add_account, add_key

    hasher = Hasher(settings.auth.hash_time_cost, settings.auth.hash_memory_kib)
    people = {"demo-dispatcher": (Role.DISPATCHER, mine_code),
              "demo-regulator": (Role.REGULATOR, mine_code[:6])}  # fmt: skip
    lines = []
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        for username, (role, scope) in people.items():
            password = secrets.token_urlsafe(12)
            await add_account(conn, hasher, username, password, role, scope)
            lines.append(f"sign in:       {username} / {password} ({role}, scope {scope})")
        key = await add_key(conn, hasher, "demo screen", Role.DISPATCHER, mine_code)
    lines.append(f"API key:       export MINEWATCH_KEY={key}")
    lines.append("               (POST /api/v1/auth/login for a session; docs/api.md)")
    return lines


def cmd_evaluate(settings: Settings, args: argparse.Namespace) -> int:
    """Replay a trace through the alarm engine and score it against its labels (no database)."""
    from rich.progress import Progress

    from minewatch.alarms.evaluation.report import render
    from minewatch.alarms.evaluation.run import run_evaluate
    from minewatch.trace import Trace

    total = int(Trace(args.trace).manifest.get("readings", 0)) or None
    with Progress(console=console) as progress:
        task = progress.add_task(f"evaluating {args.trace.name}", total=total)
        report = run_evaluate(
            args.trace, batch_cycles=args.batch_cycles, json_out=args.json,
            progress=lambda n: progress.update(task, completed=n),
            prealarm=_prealarm_params(args.prealarm),
        )  # fmt: skip
    render(report, Console())
    return 0


def _prealarm_params(items: list[str] | None) -> PrealarmParams | None:
    """``--prealarm key=value`` options as the mine's pre-alarm settings (None: defaults)."""
    if not items:
        return None
    from minewatch.alarms.prealarms import PrealarmParams

    pairs = [item.partition("=") for item in items]
    return PrealarmParams.of({k: json.loads(v) for k, _, v in pairs})


# -- argument parsing ----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minewatch", description="Coal-mine safety monitoring telemetry core."
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)
    sub.add_parser("stack", help="run the embedded database and broker").set_defaults(
        func=cmd_stack
    )
    mine = sub.add_parser("mine", help="mine metadata").add_subparsers(dest="action", required=True)
    load = mine.add_parser("load", help="load a mine definition (simulator TOML or JSON)")
    load.add_argument("file")
    load.set_defaults(func=cmd_mine_load)
    _access_parsers(sub)
    sub.add_parser("gateway", help="run the ingest gateway").set_defaults(func=cmd_gateway)
    sub.add_parser("api", help="run the HTTP API").set_defaults(func=cmd_api)
    maintenance = sub.add_parser("maintenance", help="retention and 1-/5-minute statistics")
    maintenance.add_argument("--once", action="store_true", help="one round, then exit")
    maintenance.set_defaults(func=cmd_maintenance)
    sim = sub.add_parser("simulate", help="publish a simulated mine over MQTT")
    sim.add_argument("--config", help="mine TOML (default: the small example mine)")
    sim.add_argument("--cycles", type=int, default=None, help="stop after N polling cycles")
    sim.add_argument("--fast", action="store_true", help="do not pace cycles on the wall clock")
    sim.add_argument(
        "--safety-only", action="store_true",
        help="publish the safety-monitoring feed only (no personnel, video, output)",
    )  # fmt: skip
    sim.add_argument("--record", metavar="TRACE", help="write a trace (no broker) instead")
    sim.add_argument(
        "--modbus", action="store_true",
        help="serve every substation as a Modbus TCP device instead (docs/modbus.md)",
    )  # fmt: skip
    sim.add_argument("--modbus-host", default="127.0.0.1", help="--modbus: address to listen on")
    sim.add_argument(
        "--modbus-port", type=int, default=5020,
        help="--modbus: the first substation's port, the next ones follow; 0: free ports",
    )  # fmt: skip
    sim.add_argument(
        "--map-out", metavar="FILE", help="--modbus: register map (default var/modbus-map.toml)"
    )
    sim.add_argument("--hours", type=float, default=1.0, help="simulated hours to --record")
    sim.add_argument("--files", metavar="DIR", help="write national TXT files into DIR instead")
    sim.add_argument("--minutes", type=float, default=60.0, help="simulated minutes to --files")
    sim.add_argument(
        "--start", type=dt.datetime.fromisoformat, help="--files start, ISO with offset (now)"
    )
    sim.set_defaults(func=cmd_simulate)
    replay = sub.add_parser("replay", help="feed a recorded trace through the pipeline")
    replay.add_argument("trace", help="trace directory (minewatch simulate --record)")
    replay.add_argument("--speed", default="max", help="N times real time, or 'max' (default)")
    replay.add_argument("--rebase", action="store_true", help="shift the trace to start now")
    replay.set_defaults(func=cmd_replay)
    demo = sub.add_parser("demo", help="stack + gateway + API + simulator, alarms on the console")
    demo.add_argument("--config", help="mine TOML (default: the small example mine)")
    demo.set_defaults(func=cmd_demo)
    evaluate = sub.add_parser("evaluate", help="score the alarm engine on a recorded trace")
    evaluate.add_argument("trace", type=Path, help="trace directory (minewatch simulate --record)")
    evaluate.add_argument(
        "--batch-cycles", type=int, default=1,
        help="polling cycles per engine batch (default 1: as the gateway)",
    )  # fmt: skip
    evaluate.add_argument("--json", type=Path, help="also write every figure to this file")
    evaluate.add_argument(
        "--prealarm", action="append", metavar="KEY=VALUE",
        help="a pre-alarm setting of the trace's mine (docs/alarms.md), e.g. horizon_s=600",
    )  # fmt: skip
    evaluate.set_defaults(func=cmd_evaluate)
    register_broker_commands(sub)
    register_federation_commands(sub)
    register_doctor(sub)
    return parser


def _access_parsers(sub: argparse._SubParsersAction) -> None:
    roles = ("dispatcher", "regulator", "admin")
    scope_help = "dispatcher: the 12-digit mine code; regulator: 2/4/6-digit division prefix"
    user = sub.add_parser("user", help="API accounts").add_subparsers(dest="action", required=True)
    add = user.add_parser("add", help="create or reset an account (password asked twice)")
    add.add_argument("username")
    add.add_argument("--role", choices=roles, required=True)
    add.add_argument("--scope", help=scope_help)
    add.add_argument("--name", help="name shown to people (default: the username)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.set_defaults(func=cmd_user_add)
    key = sub.add_parser("key", help="API keys").add_subparsers(dest="action", required=True)
    add_key = key.add_parser("add", help="create an API key for a machine client")
    add_key.add_argument("--name", required=True, help="what the key is for")
    add_key.add_argument("--role", choices=roles, required=True)
    add_key.add_argument("--scope", help=scope_help)
    add_key.set_defaults(func=cmd_key_add)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings()
    setup_logging(args.verbose, settings.log_format, console)
    try:
        return int(args.func(settings, args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

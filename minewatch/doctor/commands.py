"""``minewatch doctor``: check a configured deployment and say in plain words what is wrong."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
from pathlib import Path

from rich.console import Console
from rich.table import Table

from minewatch.doctor.broker import broker_findings
from minewatch.doctor.broker_config import findings as config_findings
from minewatch.doctor.broker_config import read_config
from minewatch.doctor.database import database_findings, disk
from minewatch.doctor.findings import Finding, Level, fail, warn
from minewatch.embedded import configured_broker_url, running_stack
from minewatch.settings import Settings

_STYLE = {Level.OK: "green", Level.WARN: "yellow", Level.FAIL: "bold red"}


def diagnose(settings: Settings, mosquitto_conf: Path | None) -> list[Finding]:
    """Every check that applies to the deployment ``settings`` describe."""
    stack = running_stack(settings)
    out: list[Finding] = []
    database = settings.database_url or (stack.database_url if stack else None)
    if database is None:
        out.append(fail("database", "none configured (MINEWATCH_DATABASE_URL) and no "
                                    "`minewatch stack` running"))  # fmt: skip
    else:
        now = dt.datetime.now(dt.UTC)
        out += database_findings(database, now, settings.retention.interval_s)
    broker = configured_broker_url(settings) if settings.mqtt_url else None
    broker = broker or (stack.mqtt_url if stack else None)
    if broker is None:
        out.append(fail("broker", "none configured (MINEWATCH_MQTT_URL) and no `minewatch stack` "
                                  "running"))  # fmt: skip
    else:
        out += asyncio.run(broker_findings(broker))
    if mosquitto_conf is None:
        embedded = settings.mqtt_url is None and stack is not None
        mosquitto_conf = (settings.var_dir / "mosquitto" / "mosquitto.conf" if embedded
                          else Path("/etc/mosquitto/mosquitto.conf"))  # fmt: skip
    if mosquitto_conf.exists():
        out += config_findings(read_config(mosquitto_conf))
    else:
        out.append(warn("broker configuration", f"{mosquitto_conf} not found: name the broker's "
                                                "configuration with --mosquitto-conf"))  # fmt: skip
    out += disk([settings.var_dir])
    return out


def cmd_doctor(settings: Settings, args: argparse.Namespace) -> int:
    findings = diagnose(settings, Path(args.mosquitto_conf) if args.mosquitto_conf else None)
    table = Table("", "check", "finding")
    for item in findings:
        table.add_row(f"[{_STYLE[item.level]}]{item.level.value}[/]", item.check, item.message)
    Console().print(table)
    failed = sum(item.level is Level.FAIL for item in findings)
    Console(stderr=True).print(f"{failed} problem(s) that lose data or stop a part"
                               if failed else "nothing that loses data")  # fmt: skip
    return 1 if failed else 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    doctor = sub.add_parser("doctor", help="check the deployment and say what is wrong")
    doctor.add_argument(
        "--mosquitto-conf",
        help="the broker's configuration (default: the embedded one, else "
        "/etc/mosquitto/mosquitto.conf)",
    )
    doctor.set_defaults(func=cmd_doctor)

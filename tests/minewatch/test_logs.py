"""Structured logs: MINEWATCH_LOG_FORMAT=json gives one JSON object per line on stderr."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import psycopg

from minewatch.embedded import PostgresServer
from minewatch.logs import JsonFormatter


def test_a_record_becomes_one_json_line_with_its_extra_fields_and_traceback() -> None:
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        record = logging.getLogger("minewatch.ingest.gateway").makeRecord(
            "minewatch.ingest.gateway", logging.WARNING, __file__, 1, "source %s lost", ("mqtt",),
            sys.exc_info(), extra={"mine": "141024010001", "messages": 3},
        )  # fmt: skip
    line = JsonFormatter().format(record)
    assert "\n" not in line
    out = json.loads(line)
    assert out["level"] == "warning" and out["logger"] == "minewatch.ingest.gateway"
    assert out["message"] == "source mqtt lost"
    assert out["mine"] == "141024010001" and out["messages"] == 3
    assert out["exception"].endswith("ValueError: bad\nvalue")
    assert out["time"].endswith("+00:00")


def test_the_cli_logs_json_lines_when_asked(pg_server: PostgresServer) -> None:
    name = f"logs_{os.getpid()}"
    with psycopg.connect(pg_server.url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')  # empty: migrate has work to log
    env = os.environ | {
        "MINEWATCH_LOG_FORMAT": "json", "MINEWATCH_DATABASE_URL": pg_server.url(name),
        "MINEWATCH_MQTT_URL": "mqtt://127.0.0.1:1",  # not used by migrate; no embedded stack
    }  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "minewatch.cli", "migrate"],
        env=env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    applied = [x for x in lines if x["message"].startswith("applied migration")]
    assert applied and all(x["level"] == "info" for x in applied)
    assert applied[0]["message"] == "applied migration 0001_core"

"""``minewatch demo`` (the README's first command, after set-up) from nothing to an alarm, and a
clean stop on Ctrl-C that leaves no process behind; the lines it prints for the events of the
alarm channel (alarms as alarms, incidents as incidents)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from rich.text import Text

from minewatch.demo_events import Place, event_line
from minewatch.embedded import free_port
from tests.helpers import processes_mentioning

PLACES = {"141024010091MN0001": Place("1号采煤工作面回风巷", "1410240100910001")}


def _plain(event: dict[str, object]) -> str:
    return Text.from_markup(event_line(event, PLACES)).plain


def test_an_incident_is_printed_as_an_incident_with_its_rule_members_and_area() -> None:
    # as incident_store.py notifies an incident that opened
    opened = {
        "kind": "incident", "event": "opened", "id": 12, "mine": "141024010091",
        "root_point": "141024010091MN0001", "root_rule": "upper_alarm", "grade": "orange",
        "time": "2026-12-06T12:00:00+00:00", "members": [40, 41, 43], "peak": 1.6,
    }  # fmt: skip
    line = _plain(opened)
    assert line == (
        "INCIDENT opened #12 upper_alarm (orange) 3 alarms area 1410240100910001 from point "
        "141024010091MN0001 (1号采煤工作面回风巷) peak 1.6 at 2026-12-06T12:00:00+00:00"
    )
    assert "None" not in line and "ALARM" not in line
    # a lifecycle step (lifecycle.py) names no rule or root
    acknowledged = {"kind": "incident", "event": "acknowledged", "id": 12, "state":
                    "acknowledged", "grade": "orange", "members": [40]}  # fmt: skip
    assert _plain(acknowledged) == "INCIDENT acknowledged #12 (orange, acknowledged) 1 alarm"


def test_an_alarm_is_printed_as_an_alarm() -> None:
    raised = {
        "mine": "141024010091", "point_id": 7, "point": "141024010091MN0001",
        "rule": "upper_alarm", "event": "raised", "time": "2026-12-06T12:00:00+00:00",
        "value": 1.55, "threshold": 1.5,
    }  # fmt: skip
    assert _plain(raised) == (
        "ALARM raised upper_alarm point 141024010091MN0001 value 1.55 at 2026-12-06T12:00:00+00:00"
    )
    person = {"event": "raised", "rule": "overtime", "point": None, "subject_kind": "person",
              "subject_code": "[P]007", "time": "t"}  # fmt: skip
    assert _plain(person) == "ALARM raised overtime person [P]007 at t"  # markup escaped
    step = {"event": "acknowledged", "id": 40, "point_id": 7, "rule": "upper_alarm",
            "state": "acknowledged"}  # fmt: skip
    assert _plain(step) == "ALARM acknowledged upper_alarm #40 (acknowledged)"
    prealarm = {"kind": "prealarm", "event": "raised", "point": "141024010091MN0001",
                "level": 1.5, "forecast": 1.52, "predicted_at": "t1", "time": "t0"}  # fmt: skip
    assert _plain(prealarm) == (
        "PRE-ALARM raised point 141024010091MN0001 level 1.5 forecast 1.52 by t1 at t0"
    )


@pytest.mark.slow
def test_demo_shows_the_injected_exceedance_and_stops_cleanly_on_ctrl_c() -> None:
    var_dir = Path(tempfile.mkdtemp(prefix="minewatch-demo-"))
    var_dir.chmod(0o755)
    port = free_port()
    env = {
        **os.environ,
        "MINEWATCH_VAR_DIR": str(var_dir),
        "MINEWATCH_API__PORT": str(port),
        "COLUMNS": "200",
    }
    env.pop("MINEWATCH_DATABASE_URL", None)
    env.pop("MINEWATCH_MQTT_URL", None)
    demo = subprocess.Popen(
        [sys.executable, "-m", "minewatch.cli", "demo"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    output: list[str] = []
    try:
        deadline = time.monotonic() + 90
        assert demo.stdout is not None
        while time.monotonic() < deadline:
            line = demo.stdout.readline()
            if not line:
                break
            output.append(line)
            if "ALARM raised" in line:
                break
        assert any("ALARM raised" in line for line in output), "".join(output)
        key = next(line for line in output if "MINEWATCH_KEY=" in line).split("=", 1)[1].strip()
        alarms = httpx.get(f"http://127.0.0.1:{port}/api/v1/alarms", timeout=10,
                           headers={"Authorization": f"Bearer {key}"}).json()  # fmt: skip
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/alarms", timeout=10).status_code == 401
        assert {a["rule"] for a in alarms} >= {"upper_alarm"}
        assert processes_mentioning(str(var_dir)), "the embedded servers should be running"
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            demo_tail, _ = demo.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            demo.kill()
            demo.communicate()
            raise
    code = demo.returncode
    output.append(demo_tail)
    leftovers = processes_mentioning(str(var_dir))
    assert code in (0, 130), "".join(output)
    assert leftovers == []
    assert not (var_dir / "stack.json").exists()

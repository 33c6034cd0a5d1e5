"""``minewatch demo`` (the README's first command, after set-up) from nothing to an alarm, and a
clean stop on Ctrl-C that leaves no process behind."""

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

from minewatch.embedded import free_port
from tests.helpers import processes_mentioning

pytestmark = pytest.mark.slow


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

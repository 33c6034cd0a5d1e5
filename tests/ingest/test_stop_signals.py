"""The gateway process stops cleanly on SIGTERM and on SIGINT, whatever it inherited."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest


def _start_gateway(database_url: str, mqtt_url: str, client_id: str) -> subprocess.Popen[str]:
    env = os.environ | {
        "MINEWATCH_DATABASE_URL": database_url, "MINEWATCH_MQTT_URL": mqtt_url,
        "MINEWATCH_GATEWAY__CLIENT_ID": client_id, "MINEWATCH_LOG_FORMAT": "json",
    }  # fmt: skip
    # As a shell starts a background job: SIGINT ignored (restored for the child by Popen
    # only if we ask; we do not), so Python installs no KeyboardInterrupt handler of its own.
    return subprocess.Popen(
        [sys.executable, "-m", "minewatch.cli", "gateway"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )  # fmt: skip


def _wait_connected(process: subprocess.Popen[str], limit_s: float = 60.0) -> None:
    assert process.stdout is not None
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if "connected to" in line:
            return
        if not line and process.poll() is not None:
            break
    raise AssertionError("the gateway did not connect")


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_the_gateway_drains_and_exits_0_on_a_stop_signal(
    stop: signal.Signals, database_url: str, mqtt_url: str, unique_id: str
) -> None:
    process = _start_gateway(database_url, mqtt_url, f"stop-{unique_id}")
    try:
        _wait_connected(process)
        time.sleep(1.0)
        began = time.monotonic()
        process.send_signal(stop)
        assert process.wait(timeout=30) == 0
        assert time.monotonic() - began < 15
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        assert process.stdout is not None
        process.stdout.close()

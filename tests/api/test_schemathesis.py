"""schemathesis against /openapi.json, signed in as each role: every check (server errors,
status codes, content types, response schemas and headers, negative and positive data,
authentication), a bounded and seeded number of examples per operation.

The event stream is left out: schemathesis reads a response to its end, and a stream has
none (test_sign_in.py tests it)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from minewatch.api.accounts import Role
from minewatch.embedded import free_port
from tests.api.two_mines import build_world

pytestmark = pytest.mark.slow

EXAMPLES = 8  # per operation and generation phase: about 30 s per role on 2 cores


def _wait_until_healthy(base: str, api: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert api.poll() is None, "the API stopped"
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("the API did not start")


#: Cross-parameter rules a JSON schema cannot state (end before start, more than 20,000 buckets
#: or shifts) answer 422 to schema-valid input; the lifecycle rules answer 409.
CONFIG = """
[parameters]
"path.mine" = "{mine}"
"path.point_id" = {point_id}
"path.alarm_id" = {alarm_id}

[checks.positive_data_acceptance]
expected-statuses = ["2xx", "401", "403", "404", "409", "422", "429"]
"""


@pytest.mark.timeout(900)  # about 90 s on a quiet machine; a loaded one takes minutes
def test_schemathesis_finds_no_server_error_nor_schema_violation(
    database_url: str, mqtt_url: str, tmp_path: Path
) -> None:
    world = asyncio.run(build_world(database_url))
    a = world.a
    config = CONFIG.format(mine=a.code, point_id=a.point_id, alarm_id=a.alarm_id)
    (tmp_path / "schemathesis.toml").write_text(config)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ, "MINEWATCH_DATABASE_URL": database_url, "MINEWATCH_MQTT_URL": mqtt_url,
        "MINEWATCH_API__PORT": str(port), "MINEWATCH_AUTH__LOGIN_DELAY_MAX_S": "0",
        "MINEWATCH_AUTH__HASH_TIME_COST": "1", "MINEWATCH_AUTH__HASH_MEMORY_KIB": "1024",
    }  # fmt: skip
    api = subprocess.Popen([sys.executable, "-m", "minewatch.cli", "api"], env=env, text=True)
    try:
        _wait_until_healthy(base, api)
        for role in Role:
            run = subprocess.run(
                [str(Path(sys.executable).parent / "schemathesis"), "run", f"{base}/openapi.json",
                 "--checks", "all", "--max-examples", str(EXAMPLES), "--seed", "11",
                 "--generation-deterministic",
                 "--exclude-path", "/api/v1/dispatch/alarms/stream",
                 "--header", f"Authorization: Bearer {world.keys[role]}",
                 "--request-timeout", "20", "--no-color", "--workers", "1",
                 "--suppress-health-check", "all"],
                capture_output=True, text=True, timeout=900, cwd=tmp_path,
            )  # fmt: skip
            assert run.returncode == 0, f"{role}:\n{run.stdout[-12000:]}\n{run.stderr[-2000:]}"
    finally:
        api.terminate()
        api.wait(30)

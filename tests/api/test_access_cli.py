"""``minewatch user add`` and ``minewatch key add``: a fresh install's first admin and a
machine client's key, from the command line, usable at once over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from tests.api.two_mines import build_world
from tests.helpers import running_api, scalar

pytestmark = pytest.mark.anyio


def _minewatch(database_url: str, mqtt_url: str, *args: str, stdin: str = "") -> str:
    env = {
        **os.environ, "MINEWATCH_DATABASE_URL": database_url, "MINEWATCH_MQTT_URL": mqtt_url,
        "MINEWATCH_AUTH__HASH_MEMORY_KIB": "1024", "MINEWATCH_AUTH__HASH_TIME_COST": "1",
    }  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "minewatch.cli", *args], input=stdin, env=env,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_the_first_admin_and_a_key_from_the_command_line(
    database_url: str, mqtt_url: str
) -> None:
    world = await build_world(database_url)
    _minewatch(database_url, mqtt_url, "user", "add", "chief", "--role", "admin",
               "--password-stdin", stdin="a long enough secret\n")  # fmt: skip
    stored = scalar(database_url, "SELECT password_hash FROM api_accounts WHERE username = 'chief'")
    assert str(stored).startswith("$argon2id$")  # a slow hash, never the password
    key = _minewatch(database_url, mqtt_url, "key", "add", "--name", "county screen",
                     "--role", "regulator", "--scope", "141024").strip()  # fmt: skip
    assert key.startswith("mwk_")
    assert key.split("_", 2)[2] not in str(scalar(database_url, "SELECT secret_hash FROM api_keys "
                                                 "WHERE name = 'county screen'"))  # fmt: skip
    async with (
        running_api(database_url, signed_in=False) as base,
        httpx.AsyncClient(base_url=base) as client,
    ):
        session = await client.post(
            "/api/v1/auth/login", json={"username": "chief", "password": "a long enough secret"}
        )
        assert session.json()["role"] == "admin"
        mines = await client.get("/api/v1/mines", headers={"Authorization": f"Bearer {key}"})
    assert [m["code"] for m in mines.json()] == [world.a.code]


def test_a_scope_that_does_not_fit_the_role_is_refused(database_url: str, mqtt_url: str) -> None:
    env = {**os.environ, "MINEWATCH_DATABASE_URL": database_url, "MINEWATCH_MQTT_URL": mqtt_url}
    done = subprocess.run(
        [sys.executable, "-m", "minewatch.cli", "key", "add", "--name", "x", "--role",
         "dispatcher", "--scope", "1410"], env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0 and "12-digit mine code" in done.stderr

"""The audit log across a database restart mid-request: every request that succeeded has its
record, every one that did not answered 503 (never a success without a record)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import httpx
import pytest

from minewatch.api.accounts import Role
from minewatch.db import migrate
from minewatch.embedded import embedded_postgres, free_port
from minewatch.settings import ApiSettings, Settings
from tests.api.two_mines import bearer, build_world
from tests.helpers import running_api, scalar

pytestmark = pytest.mark.anyio


async def test_no_audit_record_is_lost_when_the_database_restarts(private_dir: Path) -> None:
    settings, port = Settings(), free_port()
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(
            embedded_postgres(private_dir / "pg", settings.pg_bin_dir, port)
        ).url()
        migrate(url)
        world = await build_world(url)
        note = f"/api/v1/alarms/{world.a.alarm_id}/annotations"
        statuses: list[int] = []
        quick = ApiSettings(pool_timeout_s=1)
        async with (
            running_api(url, signed_in=False, api=quick) as base,
            httpx.AsyncClient(
                base_url=base, headers=bearer(world.keys[Role.REGULATOR]), timeout=30
            ) as client,
        ):

            async def annotate(seconds: float) -> None:
                loop = asyncio.get_running_loop()
                until = loop.time() + seconds
                while loop.time() < until:
                    response = await client.post(note, json={"note": "检查"})
                    statuses.append(response.status_code)

            writer = asyncio.create_task(annotate(8.0))
            await asyncio.sleep(1.0)
            stack.close()  # the database stops mid-requests (fast shutdown)
            await asyncio.sleep(1.0)
            stack.enter_context(embedded_postgres(private_dir / "pg", settings.pg_bin_dir, port))
            await writer
        recorded = scalar(url, "SELECT count(*) FROM audit_log WHERE action = 'annotated'")
    assert set(statuses) <= {201, 503}, set(statuses)
    assert 503 in statuses and statuses[-1] == 201  # the restart was seen, and recovered from
    assert recorded == statuses.count(201)

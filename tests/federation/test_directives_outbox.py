"""The directives publisher on the shared outbox loop (minewatch/outbox.py): a directive
written while this installation's broker is away goes out once it is back, each marked
``published_at`` once the broker has it, with no position of its own (the rows carry the
mark)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from pathlib import Path

import aiomqtt
import orjson
import psycopg
import pytest

from minewatch.broker_auth import Account, Role, login_options
from minewatch.embedded import broker_accounts
from minewatch.feeds import directive_topic
from minewatch.ingest.directives import DIRECTIVE_SUBSCRIPTION, DirectiveRelay
from tests.federation.stacks import Broker
from tests.helpers import eventually, scalar

pytestmark = pytest.mark.anyio

MINE = "141024010091"


def _write(url: str, body: str) -> uuid.UUID:
    """A directive as the API writes it at this level."""
    ident = uuid.uuid4()
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO directives (id, mine_code, kind, body, author) VALUES"
            " (%s, %s, 'note', %s, 'inspector')",
            (ident, MINE, body),
        )
    return ident


def _published(url: str, ident: uuid.UUID) -> bool:
    sql = "SELECT published_at IS NOT NULL FROM directives WHERE id = %s"
    return scalar(url, sql, (ident,)) is True


async def test_a_directive_written_while_the_broker_is_away_goes_down_once_it_is_back(
    private_dir: Path, database_url: str, unique_id: str
) -> None:
    accounts = broker_accounts(private_dir / "city")
    accounts.directory.mkdir(mode=0o755)
    gateway = accounts.add(Account("gateway", Role.GATEWAY))
    broker = Broker(accounts.directory, accounts)
    broker.start()
    url = broker.url(gateway)
    below = {"identifier": f"below-{unique_id}", "clean_session": False, **login_options(url)}
    relay = DirectiveRelay(database_url, url, f"gw-{unique_id}-directives", "city-1410",
                           poll_s=0.2)  # fmt: skip
    task = asyncio.create_task(relay.run(), name="directives")
    try:
        # what the bridge down would hold: a kept session on the directives
        async with aiomqtt.Client("127.0.0.1", broker.port, **below) as session:
            await session.subscribe(DIRECTIVE_SUBSCRIPTION, qos=1)
        first = _write(database_url, "检查意见: 回风巷甲烷传感器位置不当")
        await eventually(lambda: _published(database_url, first), limit_s=30)

        broker.stop()
        second = _write(database_url, "整改要求: 更换传感器")
        await asyncio.sleep(1.0)  # rounds fail meanwhile: the broker is away
        assert not _published(database_url, second)
        broker.start()
        await eventually(lambda: _published(database_url, second), limit_s=60)
        assert not task.done()

        got: dict[str, dict[str, object]] = {}
        async with aiomqtt.Client("127.0.0.1", broker.port, **below) as session:
            await session.subscribe(DIRECTIVE_SUBSCRIPTION, qos=1)
            async with asyncio.timeout(30):
                async for message in session.messages:
                    assert message.topic.value == directive_topic(MINE)
                    directive = orjson.loads(message.payload)
                    got[directive["id"]] = directive
                    if len(got) == 2:
                        break
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if broker.running:
            broker.stop()
    assert set(got) == {str(first), str(second)}
    assert {d["origin"] for d in got.values()} == {"city-1410"}
    assert scalar(database_url, "SELECT count(*) FROM directives") == 2  # own ones, not twice
    assert scalar(database_url, "SELECT count(*) FROM directives WHERE origin = 'city-1410' "
                  "AND received_at IS NULL AND published_at IS NOT NULL") == 2  # fmt: skip
    # no position: the rows carry the mark
    assert scalar(database_url, "SELECT count(*) FROM outbox_positions") == 0

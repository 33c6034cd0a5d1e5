"""The MQTT alarm publisher loses nothing while its broker is away: it publishes the numbered
alarm changes from its durable position, so the changes committed during a broker outage go
out once the broker is back, in order, each once, to a screen with a persistent session."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from pathlib import Path

import aiomqtt
import orjson
import psycopg
import pytest

from minewatch.alarms.live import AlarmBroadcaster
from minewatch.alarms.mqtt_publisher import publish_alarms
from minewatch.broker_auth import Account, Role, login_options
from minewatch.embedded import broker_accounts
from minewatch.feeds import alarm_topic, broker_address
from minewatch.metadata import upsert_mine
from minewatch.simulators.config import example_mine_path, load_mine_config
from minewatch.simulators.model import SimulatedMine
from tests.federation.stacks import Broker
from tests.helpers import eventually

pytestmark = pytest.mark.anyio

_RAISE = """
INSERT INTO alarms (mine_code, point_id, rule, abnormal_type, started_at, threshold,
                    start_value, max_value, max_at, min_value, min_at, value_sum, value_count)
SELECT p.mine_code, p.id, 'upper_alarm', '001', %(at)s, 1.0, 1.5, 1.5, %(at)s, 1.5, %(at)s,
       1.5, 1
FROM points p WHERE p.code = %(point)s
RETURNING id
"""
_CLEAR = "UPDATE alarms SET ended_at = %s, state = 'cleared' WHERE id = %s"


async def _screen(url: str, client_id: str, heard: list[dict], ready: asyncio.Event) -> None:  # type: ignore[type-arg]
    """A control-room screen with a persistent session (the broker keeps what arrives for it
    while it is disconnected), reconnecting whenever the broker goes away."""
    host, port = broker_address(url)
    while True:
        try:
            async with aiomqtt.Client(
                host, port, identifier=client_id, clean_session=False, **login_options(url)
            ) as client:
                await client.subscribe(alarm_topic(MINE), qos=1)
                ready.set()
                async for message in client.messages:
                    heard.append(orjson.loads(message.payload))  # type: ignore[arg-type]
        except aiomqtt.MqttError:
            await asyncio.sleep(0.2)


MINE = "141024010071"


async def test_changes_made_while_the_broker_is_down_arrive_once_in_order_after_it_is_back(
    database_url: str, private_dir: Path, unique_id: str
) -> None:
    config = load_mine_config(example_mine_path("small"))
    mine = SimulatedMine(
        config.model_copy(update={"mine": config.mine.model_copy(update={"code": MINE})})
    )
    with psycopg.connect(database_url) as conn:
        upsert_mine(conn, mine.definition)
    points = mine.codes[:6]
    accounts = broker_accounts(private_dir / "broker")
    accounts.directory.mkdir(mode=0o755)
    broker = Broker(accounts.directory, accounts)
    gateway = accounts.add(Account("gateway", Role.GATEWAY))
    screen = accounts.add(Account("screen", Role.SCREEN, (MINE,)))
    broker.start()
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    heard: list[dict] = []  # type: ignore[type-arg]
    ready = asyncio.Event()

    def raise_and_clear(point: str, k: int) -> None:
        with psycopg.connect(database_url) as conn:
            row = conn.execute(
                _RAISE, {"at": start + dt.timedelta(seconds=k), "point": point}
            ).fetchone()
            assert row is not None
            conn.commit()  # a change of its own
            conn.execute(_CLEAR, (start + dt.timedelta(seconds=k + 5), row[0]))

    def numbered() -> list[int]:
        with psycopg.connect(database_url) as conn:
            rows = conn.execute("SELECT seq FROM alarm_changes ORDER BY seq").fetchall()
        return [int(seq) for (seq,) in rows]

    publisher_id = f"alarms-{unique_id}"
    async with AlarmBroadcaster(database_url) as broadcaster:
        screens = asyncio.create_task(
            _screen(broker.url(screen), f"screen-{unique_id}", heard, ready)
        )
        await asyncio.wait_for(ready.wait(), 20)
        publisher = asyncio.create_task(
            publish_alarms(database_url, broadcaster, broker.url(gateway), publisher_id, "mine")
        )
        try:
            # the publisher has its position (the newest change) before the first change
            await eventually(lambda: _position(database_url, publisher_id) is not None)
            raise_and_clear(points[0], 0)
            await eventually(lambda: len(heard) == 2)

            broker.stop()  # the publisher's broker goes away; the alarms go on
            for k, point in enumerate(points[1:], start=1):
                raise_and_clear(point, 10 * k)
            during = numbered()[2:]
            assert len(during) == 2 * (len(points) - 1)
            await asyncio.sleep(2)  # the publisher tries, and fails, meanwhile
            assert _position(database_url, publisher_id) == numbered()[1]
            broker.start()

            await eventually(lambda: len(heard) >= len(numbered()), limit_s=30)
            await asyncio.sleep(2)  # anything sent twice would have arrived by now
        finally:
            for task in (publisher, screens):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            broker.stop()

    assert [event["seq"] for event in heard] == numbered()  # each once, in order
    assert [(event["event"], event["point"]) for event in heard] == [
        (kind, point) for point in points for kind in ("raised", "cleared")
    ]
    assert {(event["source"], event["kind"], event["rule"]) for event in heard} == {
        ("mine", "alarm", "upper_alarm")
    }
    assert _position(database_url, publisher_id) == numbered()[-1]


def _position(url: str, client_id: str) -> int | None:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT position FROM outbox_positions WHERE name = %s", (f"alarms:{client_id}",)
        ).fetchone()
    return None if row is None else int(row[0])

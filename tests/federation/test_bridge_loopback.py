"""A mine and a city, each with its own broker, gateway and database, linked by the bridge that
`minewatch federation config` writes: what the mine publishes reaches the city's database,
point by point, through a link outage and a bridge restart, and nothing is stored twice."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import orjson
import psycopg
import pytest

from minewatch.broker_accounts import BrokerAccounts, Login
from minewatch.broker_auth import Account, Role, login_options
from minewatch.embedded import (
    MosquittoServer,
    PostgresServer,
    broker_accounts,
    embedded_mosquitto,
    free_port,
)
from minewatch.federation import BridgeLogin, Hierarchy, bridge_config, link_account
from minewatch.settings import Settings
from minewatch.simulators.config import example_mine_path, load_mine_config
from minewatch.simulators.model import SimulatedMine
from minewatch.simulators.mqtt_publisher import cycle_messages, publish_mine
from tests.fix_stack import TEMPLATE_DB
from tests.helpers import eventually, running_gateway, scalar

pytestmark = pytest.mark.anyio

MINE = "141024010051"
CYCLES = 15
BINARY = Settings(_env_file=None).mosquitto_bin  # type: ignore[call-arg]
TOPICS = ["minewatch/v1/+/meta", "minewatch/v1/+/safety/+"]
# The gateways publish no alarm events: these tests count readings only.


def _mine() -> SimulatedMine:
    config = load_mine_config(example_mine_path("small"))
    return SimulatedMine(
        config.model_copy(update={"mine": config.mine.model_copy(update={"code": MINE})})
    )


def _hierarchy(city_port: int) -> Hierarchy:
    return Hierarchy.model_validate({
        "queue": {"outage_hours": 2, "messages_per_s": 20},
        "installation": [
            {"name": "city", "broker": f"mqtt://127.0.0.1:{city_port}"},
            {"name": f"mine-{MINE}", "parent": "city", "mines": [MINE], "up": "readings"},
        ],
    })  # fmt: skip


def _fresh_database(pg_server: PostgresServer, name: str) -> str:
    with psycopg.connect(pg_server.url("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DB}"')
    return pg_server.url(name)


def _counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT p.code, count(*) FROM readings r JOIN points p ON p.id = r.point_id "
            "GROUP BY p.code"
        ).fetchall()
    return {code: n for code, n in rows}


def _duplicates(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) - count(DISTINCT (point_id, time)) FROM readings"
        ).fetchone()
    assert row is not None
    return int(row[0])


class Broker:
    """A broker that the test may stop and start again on the same port and data."""

    def __init__(self, directory: Path, accounts: BrokerAccounts, extra: str = "") -> None:
        self.directory, self.accounts, self.extra = directory, accounts, extra
        self.port = free_port()
        self._running: contextlib.ExitStack | None = None
        self.server: MosquittoServer | None = None

    def start(self) -> None:
        stack = contextlib.ExitStack()
        self.server = stack.enter_context(
            embedded_mosquitto(self.directory, BINARY, self.port, self.accounts, self.extra)
        )
        self._running = stack

    def stop(self) -> None:
        assert self._running is not None
        self._running.close()
        self._running = None

    def url(self, login: Login) -> str:
        assert self.server is not None
        return self.server.url_for(login)


@pytest.fixture
def two_stacks(
    private_dir: Path, pg_server: PostgresServer
) -> Iterator[tuple[Broker, Broker, dict[str, Login], str, str]]:
    suffix = f"{os.getpid()}_{uuid.uuid4().hex[:12]}"  # id() of a dead object comes back
    mine_db = _fresh_database(pg_server, f"fed_mine_{suffix}")
    city_db = _fresh_database(pg_server, f"fed_city_{suffix}")
    city_accounts = broker_accounts(private_dir / "city")
    mine_accounts = broker_accounts(private_dir / "mine")
    for accounts in (city_accounts, mine_accounts):
        accounts.directory.mkdir(mode=0o755)
    city = Broker(city_accounts.directory, city_accounts)
    hierarchy = _hierarchy(city.port)
    logins = {
        "city-gateway": city_accounts.add(Account("gateway", Role.GATEWAY)),
        # what `minewatch federation links` does on the city
        "link": city_accounts.add(link_account(hierarchy, f"mine-{MINE}")),
        "mine-gateway": mine_accounts.add(Account("gateway", Role.GATEWAY)),
        "mine": mine_accounts.add(Account(f"mine-{MINE}", Role.MINE, (MINE,))),
    }
    link = BridgeLogin(logins["link"].username, logins["link"].password)
    bridge = bridge_config(hierarchy, f"mine-{MINE}", link, restart_timeout=(1, 2))
    mine = Broker(mine_accounts.directory, mine_accounts, bridge)
    city.start()
    mine.start()
    try:
        yield mine, city, logins, mine_db, city_db
    finally:
        for broker in (mine, city):
            if broker._running is not None:
                broker.stop()


async def test_readings_reach_the_city_equal_per_point_through_an_outage_and_a_bridge_restart(
    two_stacks: tuple[Broker, Broker, dict[str, Login], str, str], unique_id: str
) -> None:
    mine_broker, city_broker, logins, mine_db, city_db = two_stacks
    simulated = _mine()
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=10)
    cycle_s = simulated.config.simulation.cycle_s
    published = 0

    async def publish(cycles: int) -> None:
        nonlocal published, start
        url = mine_broker.url(logins["mine"])
        report = await publish_mine(
            simulated, url, cycles=cycles, realtime=False, start=start, client_id=f"kj-{unique_id}"
        )
        published += report.readings
        start += dt.timedelta(seconds=cycles * cycle_s)

    def both_hold_everything() -> bool:
        mine, city = _counts(mine_db), _counts(city_db)
        return sum(mine.values()) == published and mine == city

    async with (
        running_gateway(mine_db, mine_broker.url(logins["mine-gateway"]), f"gw-mine-{unique_id}",
                        topics=TOPICS, publish_alarms=False),
        running_gateway(city_db, city_broker.url(logins["city-gateway"]), f"gw-city-{unique_id}",
                        topics=TOPICS, publish_alarms=False),
    ):  # fmt: skip
        await publish(CYCLES)
        await eventually(both_hold_everything, limit_s=30)

        # The link is down (the city's broker stops) while the mine goes on publishing.
        city_broker.stop()
        await publish(CYCLES)
        await eventually(lambda: sum(_counts(mine_db).values()) == published)
        city_broker.start()
        await eventually(both_hold_everything, limit_s=60)

        # The bridge restarts (the mine's broker stops and starts again) and comes back with
        # what it had not delivered; the mine's publisher reconnects and goes on.
        mine_broker.stop()
        mine_broker.start()
        await publish(CYCLES)
        await eventually(both_hold_everything, limit_s=60)

        # A message that crosses twice (a resend after a link flap) is stored once: the same
        # bytes, same (source, boot, seq), published twice.
        boot = int(time.time() * 1000)  # a newer boot than the publisher's before
        once = cycle_messages(simulated, simulated.next_cycle(), start, boot, {})
        async with aiomqtt.Client(
            "127.0.0.1", mine_broker.port, **login_options(mine_broker.url(logins["mine"]))
        ) as kj:
            for topic, payload in once + once:
                await kj.publish(topic, payload, qos=1)
        published += sum(len(orjson.loads(payload)["points"]) for _, payload in once)
        await eventually(both_hold_everything, limit_s=30)

    city = _counts(city_db)
    assert city == _counts(mine_db)
    assert len(city) == len(simulated.codes)
    assert sum(city.values()) == published == (3 * CYCLES + 1) * len(simulated.codes)
    assert _duplicates(city_db) == 0


#: seconds the link is down under load; MINEWATCH_TEST_OUTAGE_S=600 gives the issue's 10 minutes
OUTAGE_S = float(os.environ.get("MINEWATCH_TEST_OUTAGE_S", "20"))


@pytest.mark.slow  # OUTAGE_S plus about 15 s
@pytest.mark.timeout(OUTAGE_S + 300)
async def test_an_outage_under_load_loses_nothing_and_duplicates_nothing(
    two_stacks: tuple[Broker, Broker, dict[str, Login], str, str], unique_id: str
) -> None:
    mine_broker, city_broker, logins, mine_db, city_db = two_stacks
    simulated = _mine()
    stop = asyncio.Event()

    async def load() -> None:
        """The mine's systems publish batches of 10 cycles, 0.2 s apart, until stopped; event
        time starts 6 h back and is held behind the wall clock, so that no reading is refused as
        stamped in the future (which the mine and the city, judging at different moments, would
        decide differently)."""
        start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=6)
        batch = dt.timedelta(seconds=10 * simulated.config.simulation.cycle_s)
        while not stop.is_set():
            ahead = (start + batch - dt.datetime.now(dt.UTC)).total_seconds()
            if ahead > -30:
                await asyncio.sleep(ahead + 30)
            url = mine_broker.url(logins["mine"])
            await publish_mine(
                simulated, url, cycles=10, realtime=False, start=start, client_id=f"kj-{unique_id}"
            )
            start += batch
            await asyncio.sleep(0.2)

    def city_equals_mine() -> bool:
        mine = _counts(mine_db)
        return bool(mine) and mine == _counts(city_db)

    async with (
        running_gateway(mine_db, mine_broker.url(logins["mine-gateway"]), f"gw-mine-{unique_id}",
                        topics=TOPICS, publish_alarms=False),
        running_gateway(city_db, city_broker.url(logins["city-gateway"]), f"gw-city-{unique_id}",
                        topics=TOPICS, publish_alarms=False),
    ):  # fmt: skip
        publisher = asyncio.create_task(load())
        await asyncio.sleep(2)
        city_broker.stop()
        before = sum(_counts(mine_db).values())
        await asyncio.sleep(OUTAGE_S)
        during = sum(_counts(mine_db).values()) - before
        city_broker.start()
        await asyncio.sleep(2)
        stop.set()
        await publisher
        try:
            await eventually(city_equals_mine, limit_s=60 + OUTAGE_S / 5)
        except AssertionError:
            mine, city = sum(_counts(mine_db).values()), sum(_counts(city_db).values())
            raise AssertionError(f"the city holds {city} readings, the mine {mine}") from None
    mine = _counts(mine_db)
    assert during >= OUTAGE_S * 100, during  # the mine went on storing during the outage
    assert _counts(city_db) == mine
    assert (_duplicates(city_db), _duplicates(mine_db)) == (0, 0)
    for url in (mine_db, city_db):
        assert scalar(url, "SELECT count(*) FROM quarantine") == 0

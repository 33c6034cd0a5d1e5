"""A province that stores summaries: mine -> city (``up = "readings"``) -> province (``up =
"alarms"``), three complete installations on loopback, each with its own broker (with
accounts), gateway and database, linked by the bridges `minewatch federation config` writes.

The city evaluates the mine's readings again and publishes its alarm changes (with their
records and disposals) and its 1- and 5-minute statistics; the province stores them, and
afterwards holds the same alarms, incidents and statistics as the mine, through a restart of
the city's broker (both of its links and its publishers' broker), with a disposal at the city
going up, and with everything the city ever published sent a second time: nothing applied
twice."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import httpx
import orjson
import psycopg
import pytest

from minewatch.alarms import lifecycle
from minewatch.alarms.lifecycle import Action, Actor, Row
from minewatch.broker_accounts import Login
from minewatch.broker_auth import Account, Role, login_options
from minewatch.embedded import PostgresServer, broker_accounts
from minewatch.federation import BridgeLogin, Hierarchy, bridge_config, link_account
from minewatch.feeds import alarm_topic, broker_address
from minewatch.ingest.maintenance.rollups import recompute
from minewatch.simulators.config import ScenarioConfig, example_mine_path, load_mine_config
from minewatch.simulators.model import SimulatedMine
from minewatch.simulators.mqtt_publisher import publish_mine
from tests.federation.stacks import Broker, duplicates, fresh_database
from tests.federation.test_three_levels import LEVELS, Level
from tests.helpers import eventually, running_api, running_gateway, scalar

pytestmark = [pytest.mark.anyio, pytest.mark.slow]  # about 90 s under load

MINE = "141024010062"
CYCLES = 150
TOPICS = ["minewatch/v1/+/meta", "minewatch/v1/+/safety/+"]


def _mine() -> SimulatedMine:
    """The small mine as ``MINE`` with a methane exceedance every 90 s of event time."""
    config = load_mine_config(example_mine_path("small"))
    extra = [
        ScenarioConfig(
            kind="methane_exceedance", substation=f"00{1 + k % 2}", sensor="CH4_T1",
            start_s=60 + 90 * k, duration_s=30, peak=1.2 + 0.1 * (k % 7),
        )
        for k in range(5)
    ]  # fmt: skip
    return SimulatedMine(
        config.model_copy(update={
            "mine": config.mine.model_copy(update={"code": MINE}),
            "scenarios": [*config.scenarios, *extra],
        })
    )  # fmt: skip


@pytest.fixture
def levels(
    private_dir: Path, pg_server: PostgresServer
) -> Iterator[tuple[dict[str, Level], Login, Login]]:
    suffix = f"{os.getpid()}_{uuid.uuid4().hex[:12]}"
    accounts = {name: broker_accounts(private_dir / name) for name in LEVELS}
    for item in accounts.values():
        item.directory.mkdir(mode=0o755)
    brokers = {name: Broker(accounts[name].directory, accounts[name]) for name in LEVELS}
    hierarchy = Hierarchy.model_validate({
        "installation": [
            {"name": "province", "broker": f"mqtt://127.0.0.1:{brokers['province'].port}"},
            {"name": "city", "parent": "province",
             "broker": f"mqtt://127.0.0.1:{brokers['city'].port}", "up": "alarms"},
            {"name": f"mine-{MINE}", "parent": "city", "mines": [MINE], "up": "readings"},
        ],
    })  # fmt: skip
    for child, parent, below in ((f"mine-{MINE}", "city", "mine"), ("city", "province", "city")):
        login = accounts[parent].add(link_account(hierarchy, child))
        brokers[below].extra = bridge_config(
            hierarchy, child, BridgeLogin(login.username, login.password), restart_timeout=(1, 2)
        )
    publisher = accounts["mine"].add(Account(f"mine-{MINE}", Role.MINE, (MINE,)))
    screen = accounts["province"].add(Account("screen", Role.SCREEN, (MINE,)))
    made = {
        name: Level(
            name, brokers[name], fresh_database(pg_server, f"fedsum_{name}_{suffix}"),
            accounts[name].add(Account("gateway", Role.GATEWAY)),
            f"mine-{MINE}" if name == "mine" else name,
        )
        for name in LEVELS
    }  # fmt: skip
    for name in reversed(LEVELS):
        brokers[name].start()
    try:
        yield made, publisher, screen
    finally:
        for broker in brokers.values():
            if broker.running:
                broker.stop()


def _alarms(url: str, table: str) -> list[tuple[object, ...]]:
    """Point, rule, type, start, end, state, and for an ended alarm its extremes and count
    (an open one's statistics change without a numbered change until it ends)."""
    point = "p.code" if table == "alarms" else "a.point_code"
    join = "JOIN points p ON p.id = a.point_id" if table == "alarms" else ""
    with psycopg.connect(url) as conn:
        return conn.execute(
            f"SELECT {point}, a.rule, a.abnormal_type, a.started_at, a.ended_at, a.state, "
            "CASE WHEN a.ended_at IS NOT NULL THEN a.max_value END, "
            "CASE WHEN a.ended_at IS NOT NULL THEN a.min_value END, "
            "CASE WHEN a.ended_at IS NOT NULL THEN a.value_count END, a.cause, a.measures "
            f"FROM {table} a {join} ORDER BY 1, 2, 4"
        ).fetchall()


def _incidents(url: str, table: str) -> list[tuple[object, ...]]:
    root = "p.code" if table == "incidents" else "i.root_point_code"
    join = "JOIN points p ON p.id = i.root_point_id" if table == "incidents" else ""
    with psycopg.connect(url) as conn:
        return conn.execute(
            f"SELECT {root}, i.root_rule, i.category, i.started_at, i.ended_at, i.grade "
            f"FROM {table} i {join} ORDER BY 1, 2, 4"
        ).fetchall()


def _statistics(url: str, width_s: int, federated: bool) -> list[tuple[object, ...]]:
    """Point, bucket, count, min, max, last, last time, and the mean rounded (the mean of the
    same readings summed in another order may differ in its last bits)."""
    with psycopg.connect(url) as conn:
        if federated:
            sql = (
                "SELECT point_code, bucket, n, min, max, last, last_time, "
                "round(mean::numeric, 9) FROM federated_statistics WHERE width_s = %s "
                "ORDER BY 1, 2"
            )
            return conn.execute(sql, (width_s,)).fetchall()
        table = {60: "readings_1m", 300: "readings_5m"}[width_s]
        return conn.execute(
            f"SELECT p.code, s.bucket, s.n, s.min, s.max, s.last, s.last_time, "
            f"round(s.mean::numeric, 9) FROM {table} s JOIN points p ON p.id = s.point_id "
            "ORDER BY 1, 2"
        ).fetchall()


async def _roll_up(url: str) -> None:
    """The rollups of everything (what the maintenance task does every minute)."""
    async with await psycopg.AsyncConnection.connect(url) as conn, conn.transaction():
        now = dt.datetime.now(dt.UTC)
        await recompute(conn, now - dt.timedelta(days=1), now + dt.timedelta(hours=1))


async def _no_audit(conn: psycopg.AsyncConnection, action: Action, alarm: Row, detail: Row) -> None:
    """The audit record is the API's (not under test here)."""


async def _screen(url: str, heard: list[int], subscribed: asyncio.Event) -> None:
    """A screen at the province: the numbers of the alarm changes it hears."""
    host, port = broker_address(url)
    async with aiomqtt.Client(host, port, **login_options(url)) as client:
        await client.subscribe(alarm_topic(MINE), qos=1)
        subscribed.set()
        async for message in client.messages:
            heard.append(int(orjson.loads(message.payload)["seq"]))  # type: ignore[arg-type]


def _readings(url: str) -> int:
    return int(scalar(url, "SELECT count(*) FROM readings"))  # type: ignore[arg-type]


async def test_a_province_in_alarms_mode_stores_the_alarms_incidents_and_statistics_once(
    levels: tuple[dict[str, Level], Login, Login], unique_id: str
) -> None:
    made, publisher, screen = levels
    mine, city, province = (made[name] for name in LEVELS)
    simulated = _mine()
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=30)
    published = 0

    async def publish() -> None:
        nonlocal published, start
        report = await publish_mine(
            simulated, mine.broker.url(publisher), cycles=CYCLES, realtime=False, start=start,
            client_id=f"kj-{unique_id}",
        )  # fmt: skip
        published += report.readings
        start += dt.timedelta(seconds=CYCLES * simulated.config.simulation.cycle_s)

    def city_holds_everything() -> bool:
        return _readings(mine.database) == _readings(city.database) == published

    async def province_equals_city() -> bool:
        await _roll_up(mine.database)
        await _roll_up(city.database)
        return (
            _alarms(province.database, "federated_alarms") == _alarms(city.database, "alarms")
            and _incidents(province.database, "federated_incidents")
            == _incidents(city.database, "incidents")
            and _statistics(province.database, 60, True) == _statistics(city.database, 60, False)
            and _statistics(province.database, 300, True) == _statistics(city.database, 300, False)
        )

    def city_changes() -> int:
        return int(scalar(city.database, "SELECT count(*) FROM alarm_changes"))  # type: ignore[arg-type]

    def province_changes() -> int:
        return int(scalar(province.database, "SELECT count(*) FROM federated_changes"))  # type: ignore[arg-type]

    gateway = {"topics": TOPICS, "tick_s": None}  # no clock-driven alarms: readings decide
    async with (
        running_gateway(mine.database, mine.broker.url(mine.gateway), f"gw-mine-{unique_id}",
                        publish_alarms=False, installation=mine.installation, **gateway),
        running_gateway(city.database, city.broker.url(city.gateway), f"gw-city-{unique_id}",
                        installation=city.installation, **gateway),
        running_gateway(province.database, province.broker.url(province.gateway),
                        f"gw-prov-{unique_id}", installation=province.installation, **gateway),
    ):  # fmt: skip
        await publish()
        await eventually(city_holds_everything, limit_s=60)
        await eventually(lambda: city_changes() > 0 and province_changes() == city_changes(),
                         limit_s=60)  # fmt: skip
        await eventually(province_equals_city, limit_s=60)

        # The city's broker restarts (the link from the mine, the link up, and the broker of
        # the city's publishers): while it is away the mine goes on; the city's changes and
        # statistics made after it is back, and those it could not publish, reach the province.
        city.broker.stop()
        await publish()
        city.broker.start()
        await publish()
        await eventually(city_holds_everything, limit_s=90)

        # A disposal at the city (its dispatcher) goes up with the alarm's record.
        alarm_id = scalar(city.database, "SELECT min(id) FROM alarms WHERE ended_at IS NOT NULL")
        dispatcher = Actor("dispatcher-1", is_person=True)
        disposal = {"cause": "采空区瓦斯涌出", "measures": "加强通风, 调整风量"}
        async with await psycopg.AsyncConnection.connect(city.database) as conn:
            await lifecycle.acknowledge(conn, alarm_id, dispatcher, _no_audit)  # type: ignore[arg-type]
            await lifecycle.dispose(conn, alarm_id, dispatcher, disposal["cause"],  # type: ignore[arg-type]
                                    disposal["measures"], None, _no_audit)  # fmt: skip
        await eventually(lambda: province_changes() == city_changes(), limit_s=60)
        await eventually(province_equals_city, limit_s=60)
        changes = province_changes()

        # Everything the city ever published goes out again (its publishers lost their
        # positions while their broker was away): the province applies none of it twice,
        # though a screen there hears the changes again.
        heard: list[int] = []
        subscribed = asyncio.Event()
        screen_task = asyncio.create_task(_screen(province.broker.url(screen), heard, subscribed))
        await asyncio.wait_for(subscribed.wait(), 20)
        city.broker.stop()
        with psycopg.connect(city.database) as conn:
            conn.execute("UPDATE outbox_positions SET position = 0")
        city.broker.start()
        await publish()  # and after it, new changes: the resent ones were taken before them
        await eventually(city_holds_everything, limit_s=60)
        await eventually(lambda: province_changes() == city_changes() > changes, limit_s=60)
        await eventually(province_equals_city, limit_s=60)
        await eventually(lambda: set(range(1, changes + 1)) <= set(heard), limit_s=30)
        screen_task.cancel()

    # The province holds what the mine decided from its own readings.
    alarms = _alarms(province.database, "federated_alarms")
    assert len(alarms) >= 8, alarms  # every exceedance, raised and cleared
    mine_alarms = _alarms(mine.database, "alarms")
    disposed = [a for a in alarms if a[5] == "disposed"]
    assert [(a[9], a[10]) for a in disposed] == [(disposal["cause"], disposal["measures"])]
    assert [a[:5] + a[6:9] for a in alarms] == [a[:5] + a[6:9] for a in mine_alarms]
    assert _incidents(province.database, "federated_incidents") == _incidents(
        mine.database, "incidents"
    )
    for width in (60, 300):
        assert _statistics(province.database, width, True) == _statistics(
            mine.database, width, False
        )
    assert sum(int(row[2]) for row in _statistics(province.database, 60, True)) == published
    # each change once, under its source; the records know where they come from
    assert province_changes() == city_changes()
    assert scalar(province.database, "SELECT count(DISTINCT source) FROM federated_alarms") == 1
    assert scalar(province.database, "SELECT min(source) FROM federated_alarms") == "city"
    assert scalar(province.database, "SELECT count(*) FROM quarantine") == 0
    # The province's API lists them, with the disposal made at the city.
    async with running_api(province.database) as api, httpx.AsyncClient() as http:
        listed = (await http.get(f"{api}/api/v1/federation/alarms", params={"mine": MINE})).json()
    assert len(listed) == len(alarms) and {a["source"] for a in listed} == {"city"}
    assert [(a["cause"], a["measures"]) for a in listed if a["state"] == "disposed"] == [
        (disposal["cause"], disposal["measures"])
    ]
    assert scalar(province.database, "SELECT count(*) FROM readings") == 0  # summaries only
    assert duplicates(city.database) == 0

"""Three complete installations on loopback, mine -> city -> province, each with its own broker
(with accounts), gateway, database and API, linked by the two bridges `minewatch federation
config` writes: readings reach the province through the city, point by point, through an outage
of the upper link and a restart of the middle broker; a directive written at the province comes
down both links to the mine; the province knows which installation each mine comes from."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from minewatch.broker_accounts import Login
from minewatch.broker_auth import Account, Role
from minewatch.embedded import PostgresServer, broker_accounts
from minewatch.federation import BridgeLogin, Hierarchy, bridge_config, link_account
from minewatch.federation.commands import record_sources
from minewatch.simulators.config import example_mine_path, load_mine_config
from minewatch.simulators.model import SimulatedMine
from minewatch.simulators.mqtt_publisher import publish_mine
from tests.federation.stacks import Broker, duplicates, fresh_database
from tests.helpers import eventually, running_api, running_gateway, scalar

pytestmark = [pytest.mark.anyio, pytest.mark.slow]  # about 60 s under load

MINE = "141024010061"
CYCLES = 10
TOPICS = ["minewatch/v1/+/meta", "minewatch/v1/+/safety/+"]
LEVELS = ("mine", "city", "province")


@dataclass
class Level:
    name: str
    broker: Broker
    database: str
    gateway: Login
    installation: str


def _hierarchy(ports: dict[str, int]) -> Hierarchy:
    return Hierarchy.model_validate({
        "installation": [
            {"name": "province", "broker": f"mqtt://127.0.0.1:{ports['province']}"},
            {"name": "city", "parent": "province", "broker": f"mqtt://127.0.0.1:{ports['city']}",
             "up": "readings"},
            {"name": f"mine-{MINE}", "parent": "city", "mines": [MINE], "up": "readings"},
        ],
    })  # fmt: skip


@pytest.fixture
def three_levels(
    private_dir: Path, pg_server: PostgresServer
) -> Iterator[tuple[dict[str, Level], Login, Hierarchy]]:
    suffix = f"{os.getpid()}_{uuid.uuid4().hex[:12]}"
    accounts = {name: broker_accounts(private_dir / name) for name in LEVELS}
    for item in accounts.values():
        item.directory.mkdir(mode=0o755)
    brokers = {name: Broker(accounts[name].directory, accounts[name]) for name in LEVELS}
    hierarchy = _hierarchy({name: broker.port for name, broker in brokers.items()})
    # what `minewatch federation links` does on the city and on the province
    for child, parent in ((f"mine-{MINE}", "city"), ("city", "province")):
        login = accounts[parent].add(link_account(hierarchy, child))
        below = "mine" if child.startswith("mine") else "city"
        brokers[below].extra = bridge_config(
            hierarchy, child, BridgeLogin(login.username, login.password), restart_timeout=(1, 2)
        )
    publisher = accounts["mine"].add(Account(f"mine-{MINE}", Role.MINE, (MINE,)))
    levels = {
        name: Level(
            name, brokers[name], fresh_database(pg_server, f"fed3_{name}_{suffix}"),
            accounts[name].add(Account("gateway", Role.GATEWAY)),
            f"mine-{MINE}" if name == "mine" else name,
        )
        for name in LEVELS
    }  # fmt: skip
    for name in reversed(LEVELS):
        brokers[name].start()
    try:
        yield levels, publisher, hierarchy
    finally:
        for broker in brokers.values():
            if broker.running:
                broker.stop()


def _counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT p.code, count(*) FROM readings r JOIN points p ON p.id = r.point_id "
            "GROUP BY p.code"
        ).fetchall()
    return {str(code): int(n) for code, n in rows}


async def test_readings_go_up_two_links_and_a_directive_comes_down_both(
    three_levels: tuple[dict[str, Level], Login, Hierarchy], unique_id: str
) -> None:
    levels, publisher, hierarchy = three_levels
    mine, city, province = (levels[name] for name in LEVELS)
    config = load_mine_config(example_mine_path("small"))
    simulated = SimulatedMine(
        config.model_copy(update={"mine": config.mine.model_copy(update={"code": MINE})})
    )
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=10)
    published = 0

    async def publish() -> None:
        nonlocal published, start
        report = await publish_mine(
            simulated, mine.broker.url(publisher), cycles=CYCLES, realtime=False, start=start,
            client_id=f"kj-{unique_id}",
        )  # fmt: skip
        published += report.readings
        start += dt.timedelta(seconds=CYCLES * simulated.config.simulation.cycle_s)

    def all_hold_everything() -> bool:
        counts = [_counts(level.database) for level in levels.values()]
        return sum(counts[0].values()) == published and counts[0] == counts[1] == counts[2]

    async with (
        running_gateway(mine.database, mine.broker.url(mine.gateway), f"gw-mine-{unique_id}",
                        topics=TOPICS, publish_alarms=False, installation=mine.installation),
        running_gateway(city.database, city.broker.url(city.gateway), f"gw-city-{unique_id}",
                        topics=TOPICS, publish_alarms=False, installation=city.installation),
        running_gateway(province.database, province.broker.url(province.gateway),
                        f"gw-prov-{unique_id}", topics=TOPICS, publish_alarms=False,
                        installation=province.installation),
        running_api(province.database) as province_api, running_api(mine.database) as mine_api,
        httpx.AsyncClient() as http,
    ):  # fmt: skip
        await publish()
        await eventually(all_hold_everything, limit_s=60)

        # The upper link is down (the province's broker stops): the city goes on receiving.
        province.broker.stop()
        await publish()
        await eventually(lambda: _counts(city.database) == _counts(mine.database), limit_s=60)
        province.broker.start()
        await eventually(all_hold_everything, limit_s=60)

        # The middle broker restarts: both of its links (from the mine, to the province) too.
        city.broker.stop()
        city.broker.start()
        await publish()
        await eventually(all_hold_everything, limit_s=60)

        # A directive written at the province comes down through the city to the mine.
        note = {"kind": "note", "body": "省局远程监察: 请报告 1201 工作面瓦斯治理情况"}
        written = await http.post(f"{province_api}/api/v1/mines/{MINE}/directives", json=note)
        assert written.status_code == 201, written.text
        ident = written.json()["id"]

        async def at_the_mine() -> list[dict[str, object]]:
            answer = await http.get(f"{mine_api}/api/v1/mines/{MINE}/directives")
            return list(answer.json()) if answer.status_code == 200 else []

        async def arrived() -> bool:
            return len(await at_the_mine()) == 1

        await eventually(arrived, limit_s=30)
        (received,) = await at_the_mine()
        assert (received["id"], received["origin"], received["body"]) == (
            ident, "province", note["body"])  # fmt: skip
        assert scalar(city.database, "SELECT origin FROM directives") == "province"

    counts = _counts(province.database)
    assert len(counts) == len(simulated.codes)
    assert sum(counts.values()) == published == 3 * CYCLES * len(simulated.codes)
    assert [duplicates(level.database) for level in levels.values()] == [0, 0, 0]
    # The province knows the mine's records come from its installation, through the city.
    with psycopg.connect(province.database) as conn:
        record_sources(conn, hierarchy, "province")
        row = conn.execute("SELECT installation, via, up FROM federation_sources").fetchone()
    assert row == (f"mine-{MINE}", "city", "readings")

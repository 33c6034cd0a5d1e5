"""Who may publish: the embedded Mosquitto refuses anonymous clients, and a mine's login
publishes only under its own topics (a real broker, a real gateway, a real database)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest

from minewatch.broker_accounts import BrokerAccounts, Login
from minewatch.broker_auth import (
    Account,
    Role,
    acl_file,
    acl_rules,
    login_options,
    redacted,
    with_login,
)
from minewatch.embedded import MosquittoServer, broker_accounts, embedded_mosquitto, stack_for
from minewatch.feeds import broker_address, meta_topic
from minewatch.settings import Settings
from minewatch.simulators.config import example_mine_path, load_mine_config
from minewatch.simulators.model import SimulatedMine
from minewatch.simulators.mqtt_publisher import cycle_messages, publish_mine
from tests.helpers import eventually, running_gateway, scalar

MINE_A = "141024010041"
MINE_B = "141024010042"


def _mine(code: str) -> SimulatedMine:
    config = load_mine_config(example_mine_path("small"))
    return SimulatedMine(
        config.model_copy(update={"mine": config.mine.model_copy(update={"code": code})})
    )


# -- pure logic ------------------------------------------------------------------------------


def test_a_mine_may_write_only_its_own_tree_and_never_its_alarm_topic() -> None:
    text = acl_file([Account("mine-a", Role.MINE, (MINE_A,))])
    assert f"topic write minewatch/v1/{MINE_A}/#" in text
    assert f"topic deny minewatch/v1/{MINE_A}/alarms" in text
    assert "minewatch/v1/+" not in text  # nothing for other mines
    assert text.index("user mine-a") < text.index("topic")  # no line for anonymous clients


def test_sparkplug_rebirth_requests_go_from_the_gateway_to_the_mine() -> None:
    gateway = acl_rules(Account("gw", Role.GATEWAY, (MINE_A,)))
    mine = acl_rules(Account("mine-a", Role.MINE, (MINE_A,)))
    assert f"topic write spBv1.0/{MINE_A}/NCMD/#" in gateway
    assert f"topic read spBv1.0/{MINE_A}/NCMD/#" in mine
    assert f"topic read spBv1.0/{MINE_A}/DCMD/#" in mine


def test_directives_come_down_from_the_gateway_or_a_link_and_no_mine_can_forge_one() -> None:
    gateway = acl_rules(Account("gw", Role.GATEWAY, (MINE_A,)))
    link = acl_rules(Account("link-x", Role.LINK, (MINE_A,)))
    mine = acl_rules(Account("mine-a", Role.MINE, (MINE_A,)))
    assert f"topic readwrite minewatch/down/v1/{MINE_A}/directives" in gateway
    assert f"topic read minewatch/down/v1/{MINE_A}/directives" in link  # the bridge carries it
    assert not [rule for rule in mine if "down" in rule or rule.endswith(" minewatch/#")]
    assert not [rule for rule in link if "down" in rule and "write" in rule]


def test_a_mine_or_link_account_without_mines_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one mine"):
        Account("mine-x", Role.MINE)
    with pytest.raises(ValueError, match="12 digits"):
        Account("mine-x", Role.MINE, ("14102401",))
    with pytest.raises(ValueError, match="account name"):
        Account("a b", Role.GATEWAY)


def test_the_login_travels_in_the_url_and_is_redacted_for_printing() -> None:
    url = with_login("mqtt://broker.example:1883", "mine-a", "p@ss:w/rd")
    assert broker_address(url) == ("broker.example", 1883)
    assert login_options(url) == {"username": "mine-a", "password": "p@ss:w/rd"}
    assert "p@ss" not in redacted(url) and "mine-a:***@" in redacted(url)
    assert login_options("mqtt://127.0.0.1:1883") == {}


def test_an_mqtts_url_asks_for_tls_with_the_named_ca() -> None:
    url = with_login("mqtts://city.example", "link", "x", tls=None)
    assert broker_address(url) == ("city.example", 8883)
    options = login_options(f"{url}?ca=/etc/minewatch/ca.pem")
    assert options["tls_params"].ca_certs == "/etc/minewatch/ca.pem"


# -- a real broker ---------------------------------------------------------------------------


@pytest.fixture
def secured(private_dir: Path) -> Iterator[tuple[MosquittoServer, dict[str, Login]]]:
    accounts: BrokerAccounts = broker_accounts(private_dir / "mq")
    accounts.directory.mkdir(mode=0o755)
    logins = {
        "gateway": accounts.add(Account("gateway", Role.GATEWAY)),
        "mine-a": accounts.add(Account("mine-a", Role.MINE, (MINE_A,))),
    }
    binary = Settings(_env_file=None).mosquitto_bin  # type: ignore[call-arg]
    with embedded_mosquitto(accounts.directory, binary, accounts=accounts) as server:
        yield server, logins


@pytest.mark.anyio
async def test_an_anonymous_client_or_a_wrong_password_cannot_connect(
    secured: tuple[MosquittoServer, dict[str, Login]],
) -> None:
    server, logins = secured
    with pytest.raises(aiomqtt.MqttCodeError, match=r"[Nn]ot authori[sz]ed"):
        async with aiomqtt.Client(server.host, server.port):
            pass
    with pytest.raises(aiomqtt.MqttCodeError, match=r"[Nn]ot authori[sz]ed"):
        async with aiomqtt.Client(server.host, server.port, username="mine-a", password="guess"):
            pass
    async with aiomqtt.Client(
        server.host, server.port, **login_options(server.url_for(logins["mine-a"]))
    ):
        pass  # the right login connects


@pytest.mark.anyio
async def test_mine_a_cannot_publish_under_mine_b_and_the_gateway_never_receives_it(
    secured: tuple[MosquittoServer, dict[str, Login]], database_url: str, unique_id: str
) -> None:
    server, logins = secured
    gateway_url = server.url_for(logins["gateway"])
    mine_a_url = server.url_for(logins["mine-a"])
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=60)
    impostor = _mine(MINE_B)
    seen: list[str] = []
    async with (
        running_gateway(database_url, gateway_url, f"gw-{unique_id}", topics=["minewatch/v1/#"]),
        aiomqtt.Client(server.host, server.port, **login_options(gateway_url)) as spy,
    ):
        await spy.subscribe("minewatch/v1/#", qos=1)
        listener = asyncio.create_task(_collect(spy, seen))
        # With mine A's login: mine B's definition and one cycle of its readings, then
        # mine A's own; QoS 1 on one connection keeps the order, so once A's arrive,
        # B's would have arrived before them had the broker let them through.
        async with aiomqtt.Client(server.host, server.port, **login_options(mine_a_url)) as a:
            await a.publish(meta_topic(MINE_B), impostor.definition.model_dump_json(), qos=1)
            for topic, payload in cycle_messages(impostor, impostor.next_cycle(), start, 1, {}):
                await a.publish(topic, payload, qos=1)
        report = await publish_mine(
            _mine(MINE_A), mine_a_url, cycles=5, realtime=False, start=start
        )

        def all_of_a_stored() -> bool:
            return scalar(database_url, "SELECT count(*) FROM readings") == report.readings

        await eventually(all_of_a_stored)
        listener.cancel()
    assert any(MINE_A in topic for topic in seen)
    assert not [topic for topic in seen if MINE_B in topic]
    assert scalar(database_url, "SELECT count(*) FROM mines WHERE code = %s", (MINE_B,)) == 0
    assert scalar(database_url, "SELECT count(*) FROM mines WHERE code = %s", (MINE_A,)) == 1


async def _collect(client: aiomqtt.Client, seen: list[str]) -> None:
    async for message in client.messages:
        seen.append(message.topic.value)


@pytest.mark.anyio
async def test_the_embedded_stack_gives_its_gateway_and_simulator_their_own_logins(
    private_dir: Path, database_url: str
) -> None:
    """What `minewatch stack` / `demo` do with no configuration: a secured broker and a login
    for each of its clients, kept across restarts of the stack."""
    settings = Settings(_env_file=None, var_dir=private_dir, database_url=database_url)  # type: ignore[call-arg]
    with stack_for(settings) as stack:
        first = stack
        host, port = broker_address(stack.mqtt_url)
        with pytest.raises(aiomqtt.MqttCodeError):
            async with aiomqtt.Client(host, port):
                pass
        async with aiomqtt.Client(host, port, **login_options(stack.mqtt_url)) as gateway:
            await gateway.subscribe("minewatch/v1/+/meta", qos=1)
            async with aiomqtt.Client(host, port, **login_options(stack.publisher_url)) as sim:
                await sim.publish(meta_topic(MINE_A), b"{}", qos=1)
            async with asyncio.timeout(10):
                message = await anext(aiter(gateway.messages))
        assert message.topic.value == meta_topic(MINE_A)
    with stack_for(settings) as stack:
        assert login_options(stack.mqtt_url) == login_options(first.mqtt_url)


@pytest.mark.anyio
async def test_the_gateway_reaches_a_mines_edge_node_with_a_rebirth_request(
    secured: tuple[MosquittoServer, dict[str, Login]],
) -> None:
    server, logins = secured
    topic = f"spBv1.0/{MINE_A}/NCMD/edge-1"
    mine = login_options(server.url_for(logins["mine-a"]))
    gateway = login_options(server.url_for(logins["gateway"]))
    async with aiomqtt.Client(server.host, server.port, **mine) as edge:
        await edge.subscribe(topic, qos=1)
        async with aiomqtt.Client(server.host, server.port, **gateway) as host:
            await host.publish(topic, b"rebirth", qos=1)
        async with asyncio.timeout(10):
            message = await anext(aiter(edge.messages))
    assert message.topic.value == topic

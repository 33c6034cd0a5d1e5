"""A mine and a city, each with its own broker, gateway and database, linked by the bridge that
`minewatch federation config` writes: what the mine publishes reaches the city's database,
point by point, through a link outage and a bridge restart, and nothing is stored twice."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import httpx
import orjson
import psycopg
import pytest

from minewatch.broker_accounts import Login
from minewatch.broker_auth import Account, Role, login_options
from minewatch.embedded import PostgresServer, broker_accounts, free_port
from minewatch.federation import BridgeLogin, Hierarchy, bridge_config, link_account
from minewatch.simulators.config import ScenarioConfig, example_mine_path, load_mine_config
from minewatch.simulators.model import SimulatedMine
from minewatch.simulators.mqtt_publisher import cycle_messages, publish_mine
from tests.federation.stacks import (
    Broker,
    alarm_records,
    counts,
    duplicates,
    fresh_database,
    gateway_process,
    incident_records,
    keep_evidence,
    subscribed,
    total,
)
from tests.helpers import eventually, running_api, running_gateway, scalar

pytestmark = pytest.mark.anyio

MINE = "141024010051"
CYCLES = 15
TOPICS = ["minewatch/v1/+/meta", "minewatch/v1/+/safety/+"]


def _mine(exceedances: int = 0) -> SimulatedMine:
    """The small mine as ``MINE``; with ``exceedances`` more methane exceedances on the two
    faces, one every 90 s of event time (alarms and incidents to compare between levels)."""
    config = load_mine_config(example_mine_path("small"))
    extra = [
        ScenarioConfig(
            kind="methane_exceedance", substation=f"00{1 + k % 2}", sensor="CH4_T1",
            start_s=120 + 90 * k, duration_s=30, peak=1.2 + 0.1 * (k % 7),
        )
        for k in range(exceedances)
    ]  # fmt: skip
    return SimulatedMine(
        config.model_copy(update={
            "mine": config.mine.model_copy(update={"code": MINE}),
            "scenarios": [*config.scenarios, *extra],
        })
    )  # fmt: skip


def _hierarchy(city_port: int) -> Hierarchy:
    return Hierarchy.model_validate({
        "queue": {"outage_hours": 2, "messages_per_s": 20},
        "installation": [
            {"name": "city", "broker": f"mqtt://127.0.0.1:{city_port}"},
            {"name": f"mine-{MINE}", "parent": "city", "mines": [MINE], "up": "readings"},
        ],
    })  # fmt: skip


def _counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT p.code, count(*) FROM readings r JOIN points p ON p.id = r.point_id "
            "GROUP BY p.code"
        ).fetchall()
    return {code: n for code, n in rows}


@pytest.fixture
def two_stacks(
    private_dir: Path, pg_server: PostgresServer
) -> Iterator[tuple[Broker, Broker, dict[str, Login], str, str]]:
    suffix = f"{os.getpid()}_{uuid.uuid4().hex[:12]}"  # id() of a dead object comes back
    mine_db = fresh_database(pg_server, f"fed_mine_{suffix}")
    city_db = fresh_database(pg_server, f"fed_city_{suffix}")
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
        keep = os.environ.get("MINEWATCH_TEST_KEEP_LOGS")  # brokers' and gateways' logs
        if keep:
            shutil.copytree(private_dir, keep, dirs_exist_ok=True)
        for broker in (mine, city):
            if broker.running:
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
    assert duplicates(city_db) == 0


async def test_a_directive_written_at_the_city_reaches_the_mine_through_a_link_outage(
    two_stacks: tuple[Broker, Broker, dict[str, Login], str, str], unique_id: str
) -> None:
    """A regulator's required action, written through the city's API while the mine's broker
    (and so the bridge) is down, is published by the city's gateway, kept for the link by the
    city's broker, carried down when the bridge is back, and listed by the mine's API, once,
    where the mine's dispatcher acknowledges it."""
    mine_broker, city_broker, logins, mine_db, city_db = two_stacks
    simulated = _mine()
    directive = {
        "kind": "action", "body": "1201 采煤工作面: 查明 T1 超限原因, 24 小时内整改",
        "due_at": "2026-01-02T08:00:00+08:00", "point": simulated.codes[0],
        "rule": "upper_alarm", "alarm_started_at": "2026-01-01T08:00:00+08:00",
    }  # fmt: skip
    async with (
        running_gateway(mine_db, mine_broker.url(logins["mine-gateway"]), f"gw-mine-{unique_id}",
                        topics=TOPICS, publish_alarms=False, installation=f"mine-{MINE}"),
        running_gateway(city_db, city_broker.url(logins["city-gateway"]), f"gw-city-{unique_id}",
                        topics=TOPICS, publish_alarms=False, installation="city"),
        running_api(city_db) as city_api, running_api(mine_db) as mine_api,
        httpx.AsyncClient() as http,
    ):  # fmt: skip
        await publish_mine(simulated, mine_broker.url(logins["mine"]), cycles=1, realtime=False,
                           client_id=f"kj-{unique_id}")  # fmt: skip
        await eventually(lambda: scalar(city_db, "SELECT count(*) FROM mines") == 1)
        await asyncio.sleep(1)  # the mine's gateway's directive subscription is made
        mine_broker.stop()
        written = await http.post(f"{city_api}/api/v1/mines/{MINE}/directives", json=directive)
        assert written.status_code == 201, written.text
        ident = written.json()["id"]
        await eventually(lambda: scalar(
            city_db, "SELECT count(*) FROM directives WHERE published_at IS NOT NULL") == 1
        )  # fmt: skip
        mine_broker.start()

        async def at_the_mine() -> bool:
            answer = await http.get(f"{mine_api}/api/v1/mines/{MINE}/directives")
            return answer.status_code == 200 and len(answer.json()) == 1

        await eventually(at_the_mine, limit_s=30)
        received = (await http.get(f"{mine_api}/api/v1/mines/{MINE}/directives")).json()[0]
        assert received["id"] == ident and received["origin"] == "city"
        assert received["received_at"] is not None and received["published_at"] is None
        for key in ("kind", "body", "rule"):
            assert received[key] == directive[key]
        assert received["point_code"] == directive["point"]
        ack = await http.post(f"{mine_api}/api/v1/mines/{MINE}/directives/{ident}/acknowledge")
        assert ack.status_code == 200 and ack.json()["acknowledged_at"] is not None
        # The city does not take its own directive for one from above: it stays as written.
        city = (await http.get(f"{city_api}/api/v1/mines/{MINE}/directives")).json()
        assert [(d["id"], d["received_at"]) for d in city] == [(ident, None)]
    assert scalar(mine_db, "SELECT count(*) FROM directives") == 1


#: seconds the link is down under load; MINEWATCH_TEST_OUTAGE_S=600 gives the issue's 10 minutes
OUTAGE_S = float(os.environ.get("MINEWATCH_TEST_OUTAGE_S", "20"))


@pytest.mark.slow  # OUTAGE_S plus about 30 s
@pytest.mark.timeout(OUTAGE_S * 2 + 300)
async def test_an_outage_under_load_loses_nothing_and_duplicates_nothing(
    two_stacks: tuple[Broker, Broker, dict[str, Login], str, str],
    unique_id: str,
    private_dir: Path,
) -> None:
    """Both installations complete (each gateway its own process, evaluating alarms); the mine
    publishes throughout a link outage of OUTAGE_S seconds. Afterwards the city holds every
    reading once, point by point, and the same alarm records and incidents as the mine."""
    mine_broker, city_broker, logins, mine_db, city_db = two_stacks
    simulated = _mine(exceedances=400)  # 10 h of event time
    stop = asyncio.Event()
    calls: list[tuple[float, float, str, int, int]] = []  # the publisher's, for the evidence
    metrics = {"mine": free_port(), "city": free_port()}

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
            before = time.time()
            report = await publish_mine(
                simulated, url, cycles=10, realtime=False, start=start, client_id=f"kj-{unique_id}"
            )
            calls.append((before, time.time(), start.isoformat(), report.messages, report.readings))
            start += batch
            await asyncio.sleep(0.2)

    async def caught_up(limit_s: float) -> None:
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            same = await total(city_db) == await total(mine_db)
            if same and await counts(city_db) == await counts(mine_db):
                return
            await asyncio.sleep(1.0)
        mine, city = await total(mine_db), await total(city_db)
        published = sum(call[4] for call in calls)
        kept = [scalar(url, "SELECT count(*) FROM quarantine") for url in (city_db, mine_db)]
        raise AssertionError(
            f"the city holds {city} readings, the mine {mine}; {published} were published; "
            f"quarantined: {kept[0]} at the city, {kept[1]} at the mine"
        )

    async def evidence(error: BaseException) -> None:
        keep = os.environ.get("MINEWATCH_TEST_EVIDENCE")
        if not keep:
            return
        notes: dict[str, object] = {"error": repr(error), "calls": calls}
        async with httpx.AsyncClient() as http:
            for name, port in metrics.items():
                with contextlib.suppress(httpx.HTTPError):
                    answer = await http.get(f"http://127.0.0.1:{port}/metrics")
                    notes[f"metrics-{name}"] = [
                        line for line in answer.text.splitlines() if not line.startswith("#")
                    ]
        keep_evidence(Path(keep), {"mine": mine_db, "city": city_db}, notes)
        shutil.copytree(private_dir, Path(keep) / "private", dirs_exist_ok=True)

    with (
        gateway_process(mine_db, mine_broker.url(logins["mine-gateway"]), f"gw-mine-{unique_id}",
                        TOPICS, private_dir / "mine-gateway.log",
                        MINEWATCH_GATEWAY__METRICS_PORT=str(metrics["mine"])),
        gateway_process(city_db, city_broker.url(logins["city-gateway"]), f"gw-city-{unique_id}",
                        TOPICS, private_dir / "city-gateway.log",
                        MINEWATCH_GATEWAY__METRICS_PORT=str(metrics["city"])),
    ):  # fmt: skip
        for log in (private_dir / "mine-gateway.log", private_dir / "city-gateway.log"):
            await eventually(lambda log=log: subscribed(log), 60)  # what comes next is theirs
        publisher = asyncio.create_task(load())
        await eventually(lambda: scalar(city_db, "SELECT count(*) FROM readings") > 0, 60)
        city_broker.stop()
        before = await total(mine_db)
        await asyncio.sleep(OUTAGE_S)
        during = await total(mine_db) - before
        city_broker.start()
        await asyncio.sleep(2)
        stop.set()
        await publisher
        try:
            await caught_up(limit_s=60 + OUTAGE_S / 2)
            # the last decisions on both sides (off-delays held for lateness, the cross-checks'
            # windows decided by the clock) come from ticks while the gateways run
            await eventually(lambda: alarm_records(city_db) == alarm_records(mine_db), 60)
        except AssertionError as error:
            await evidence(error)
            raise
    assert during >= OUTAGE_S * 100, during  # the mine went on storing during the outage
    assert await counts(city_db) == await counts(mine_db)
    assert (duplicates(city_db), duplicates(mine_db)) == (0, 0)
    for url in (mine_db, city_db):
        assert scalar(url, "SELECT count(*) FROM quarantine") == 0
    mine_alarms, city_alarms = alarm_records(mine_db), alarm_records(city_db)
    assert mine_alarms, "the simulated mine raised no alarm: nothing compared"
    assert city_alarms == mine_alarms
    assert incident_records(city_db) == incident_records(mine_db)

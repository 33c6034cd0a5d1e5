"""MQTT contract details found with hand-written messages (issue 15), against a real broker and
database: a message quarantined whole is received, not missing; reasons are for people; the
whole tree is subscribed so a topic outside the contract is quarantined, not unseen; the
pending gauge of /metrics falls back to 0 when the gateway is idle."""

from __future__ import annotations

import datetime as dt

import aiomqtt
import httpx
import orjson
import psycopg
import pytest

from minewatch.embedded import free_port
from minewatch.feeds import alarm_topic, broker_address, safety_subscriptions, safety_topic
from minewatch.ingest.contract import OtherFeed, parse_message
from minewatch.ingest.quarantine import QuarantineReason, Rejection
from minewatch.metadata import MineDefinition, upsert_mine
from minewatch.simulators.config import example_mine_path, load_mine_config
from minewatch.simulators.model import SimulatedMine
from tests.helpers import eventually, running_api, running_gateway, scalar

pytestmark = pytest.mark.anyio

BASE = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=10)


@pytest.fixture
def definition(database_url: str) -> MineDefinition:
    definition = SimulatedMine(load_mine_config(example_mine_path("small"))).definition
    with psycopg.connect(database_url) as conn:
        upsert_mine(conn, definition)
    return definition


def _message(definition: MineDefinition, seq: int, **overrides: object) -> bytes:
    points = [p.code for p in definition.points if p.substation == "001"]
    message: dict[str, object] = {
        "v": 1, "mine": definition.mine.code, "substation": "001", "boot": 7, "seq": seq,
        "ts": (BASE + dt.timedelta(seconds=seq)).isoformat(),
        "points": points, "values": [0.25] * len(points), "status": [0] * len(points),
    }  # fmt: skip
    message.update(overrides)
    return orjson.dumps(message)


async def _publish(mqtt_url: str, items: list[tuple[str, bytes]]) -> None:
    host, port = broker_address(mqtt_url)
    async with aiomqtt.Client(host, port) as client:
        for topic, payload in items:
            await client.publish(topic, payload, qos=1)


def _quarantined(database_url: str, source_like: str) -> list[tuple[str, str]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT reason, detail FROM quarantine WHERE source LIKE %s ORDER BY id",
            (source_like,),
        ).fetchall()
    return [(str(r), str(d)) for r, d in rows]


async def test_a_message_quarantined_whole_is_received_not_counted_as_missing(
    database_url: str, mqtt_url: str, unique_id: str, definition: MineDefinition
) -> None:
    mine = definition.mine.code
    topic = safety_topic(mine, "001")
    topics = safety_subscriptions(mine)
    async with running_gateway(database_url, mqtt_url, f"gw-{unique_id}", topics=topics) as gw:
        await _publish(mqtt_url, [
            (topic, _message(definition, 1)),
            (topic, _message(definition, 2, status="x")),  # refused whole, but numbered
            (topic, _message(definition, 3, values=[0.1])),  # refused whole too
            (topic, _message(definition, 4)),
        ])  # fmt: skip
        await eventually(lambda: len(_quarantined(database_url, f"{mine}/safety/001")) == 2)
        await eventually(
            lambda: scalar(database_url, "SELECT count(DISTINCT time) FROM readings") == 2
        )
        assert gw.metrics.sequence_gaps._value.get() == 0
        # a refused message is kept whatever its seq (a repeated one counts no gap either)
        await _publish(mqtt_url, [(topic, _message(definition, 3, values=[0.1]))])
        await eventually(lambda: len(_quarantined(database_url, f"{mine}/safety/001")) == 3)
        # only numbers never received count: 5 and 6 never came
        await _publish(mqtt_url, [(topic, _message(definition, 7))])
        await eventually(lambda: gw.metrics.sequence_gaps._value.get() == 2)
        # 5 comes after all (a bridge resending after a link outage): the hole is filled
        await _publish(mqtt_url, [(topic, _message(definition, 5))])
        await eventually(
            lambda: scalar(database_url, "SELECT count(DISTINCT time) FROM readings") == 4
        )
    assert len(_quarantined(database_url, f"{mine}/safety/001")) == 3
    # the gap is kept (what did not arrive in order, and when the next message came), with
    # what of it arrived later ...
    with psycopg.connect(database_url) as conn:
        gaps = conn.execute(
            "SELECT source, boot, first_seq, last_seq, missing, filled, next_time "
            "FROM sequence_gaps"
        ).fetchall()
    assert gaps == [(f"{mine}/001", 7, 5, 6, 2, 1, BASE + dt.timedelta(seconds=7))]
    # ... and shown in the data-integrity report, per point of the substation
    async with running_api(database_url) as base, httpx.AsyncClient(base_url=base) as client:
        report = (await client.get("/api/v1/reports/data-integrity", params={"mine": mine})).json()
    substation = {p.code for p in definition.points if p.substation == "001"}
    # one row per point and day (Asia/Shanghai): around its midnight the gap's day is not the
    # last row of a point, so sum over the days
    missing: dict[str, int] = {}
    for row in report["rows"]:
        missing[row["point_code"]] = missing.get(row["point_code"], 0) + row["messages_missing"]
    assert {c for c, n in missing.items() if n} == substation
    assert {missing[c] for c in substation} == {1}  # 6 never came


async def test_refusal_reasons_are_written_for_people(
    database_url: str, mqtt_url: str, unique_id: str, definition: MineDefinition
) -> None:
    mine = definition.mine.code
    topic = safety_topic(mine, "001")
    topics = safety_subscriptions(mine)
    async with running_gateway(database_url, mqtt_url, f"gw-{unique_id}", topics=topics):
        await _publish(mqtt_url, [
            (topic, orjson.dumps({**orjson.loads(_message(definition, 1)), "seq": "1"})),
            (topic, orjson.dumps({"v": 1, "mine": mine, "substation": "001", "seq": 1})),
        ])  # fmt: skip
        await eventually(lambda: len(_quarantined(database_url, f"{mine}/safety/001")) == 2)
    details = [d for _, d in _quarantined(database_url, f"{mine}/safety/001")]
    assert details == ["seq must be an integer", "boot is missing"]
    assert not any("class" in d for d in details)


async def test_topics_outside_the_contract_are_quarantined_not_unseen(
    database_url: str, mqtt_url: str, unique_id: str, definition: MineDefinition
) -> None:
    mine = definition.mine.code
    good = _message(definition, 1)
    async with running_gateway(database_url, mqtt_url, f"gw-{unique_id}"):  # default topics
        await _publish(mqtt_url, [
            (f"minewatch/v1/{mine}/safety/001/extra", good),  # one level too many
            ("minewatch/v1/1024/safety/001", good),  # a 4-digit "mine code"
            (f"minewatch/v1/{mine}/gas", good),  # not a topic of the contract
            (alarm_topic(mine), b'{"alarm": "of the gateway itself"}'),  # another feed's
        ])  # fmt: skip
        await eventually(lambda: len(_quarantined(database_url, "%gas")) == 1)
    extra = _quarantined(database_url, f"{mine}/safety/001/extra")
    short = _quarantined(database_url, "1024/safety/001")
    assert [r for r, _ in extra + short] == [QuarantineReason.UNKNOWN_TOPIC] * 2
    assert "12 digits" in short[0][1]
    assert _quarantined(database_url, f"{mine}/alarms") == []


def test_other_feeds_are_left_to_their_clients_and_numbered_refusals_carry_their_seq() -> None:
    assert isinstance(parse_message("minewatch/v1/141024010001/personnel", b"x", 10), OtherFeed)
    assert isinstance(parse_message("minewatch/v1/141024010001/video/meta", b"", 10), OtherFeed)
    refused = parse_message(
        "minewatch/v1/141024010001/safety/001",
        b'{"v": 1, "mine": "141024010001", "substation": "001", "boot": 3, "seq": 9}',
        4096,
    )
    assert isinstance(refused, Rejection) and refused.numbered == ("141024010001/001", 3, 9)
    other_source = parse_message(
        "minewatch/v1/141024010001/safety/001",
        b'{"v": 1, "mine": "141024010001", "substation": "002", "boot": 3, "seq": 9}',
        4096,
    )
    assert isinstance(other_source, Rejection) and other_source.numbered is None


async def test_the_pending_gauge_falls_to_0_when_the_gateway_is_idle(
    database_url: str, mqtt_url: str, unique_id: str, definition: MineDefinition
) -> None:
    mine = definition.mine.code
    topic = safety_topic(mine, "001")
    port = free_port()
    async with running_gateway(
        database_url, mqtt_url, f"gw-{unique_id}", topics=safety_subscriptions(mine),
        metrics_port=port,
    ):  # fmt: skip
        await _publish(mqtt_url, [(topic, _message(definition, s)) for s in range(1, 40)])
        await eventually(
            lambda: scalar(database_url, "SELECT count(DISTINCT time) FROM readings") == 39
        )

        async def pending() -> float:
            async with httpx.AsyncClient() as client:
                text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
            (line,) = [x for x in text.splitlines() if x.startswith("minewatch_pending_messages ")]
            return float(line.split()[1])

        await eventually(lambda: _is_zero(pending()), limit_s=10)


async def _is_zero(value: object) -> bool:
    return await value == 0.0  # type: ignore[misc]


def _times(database_url: str) -> object:
    return scalar(database_url, "SELECT count(DISTINCT time) FROM readings")

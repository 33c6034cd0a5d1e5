"""The gateway against a real broker and database: bad input is quarantined with its reason
while the gateway keeps running, and redelivered messages are not stored twice."""

from __future__ import annotations

import datetime as dt

import aiomqtt
import orjson
import psycopg
import pytest

from minewatch.feeds import broker_address, meta_topic, safety_subscriptions, safety_topic
from minewatch.metadata import MineDefinition, upsert_mine
from minewatch.simulators.config import example_mine_path, load_mine_config
from minewatch.simulators.model import SimulatedMine
from tests.helpers import eventually, running_gateway, scalar

pytestmark = pytest.mark.anyio


@pytest.fixture
def definition(database_url: str) -> MineDefinition:
    definition = SimulatedMine(load_mine_config(example_mine_path("small"))).definition
    with psycopg.connect(database_url) as conn:
        upsert_mine(conn, definition)
    return definition


def _message(definition: MineDefinition, seq: int, **overrides: object) -> dict[str, object]:
    points = [p.code for p in definition.points if p.substation == "001"]
    message: dict[str, object] = {
        "v": 1, "mine": definition.mine.code, "substation": "001", "boot": 1, "seq": seq,
        "ts": dt.datetime.now(dt.UTC).isoformat(), "points": points,
        "values": [0.25] * len(points), "status": [0] * len(points),
    }  # fmt: skip
    message.update(overrides)
    return message


async def _publish(mqtt_url: str, items: list[tuple[str, bytes]]) -> None:
    host, port = broker_address(mqtt_url)
    async with aiomqtt.Client(host, port) as client:
        for topic, payload in items:
            await client.publish(topic, payload, qos=1)


async def test_malformed_messages_are_quarantined_with_reasons_and_the_gateway_keeps_running(
    database_url: str, mqtt_url: str, unique_id: str, definition: MineDefinition
) -> None:
    mine = definition.mine.code
    topic = safety_topic(mine, "001")
    good = _message(definition, 1)
    n = len(good["points"])  # type: ignore[arg-type]
    wrong_type = _message(definition, 2, values=["0.3"] + [0.3] * (n - 1))
    unknown = _message(definition, 3, points=["NOT-A-POINT", *good["points"][1:]])  # type: ignore[index]
    topics = safety_subscriptions(mine)
    async with running_gateway(database_url, mqtt_url, f"gw-{unique_id}", topics=topics):
        await _publish(mqtt_url, [
            (topic, b"{not json"),
            (topic, b"\xff\xfe invalid utf-8"),
            (topic, orjson.dumps(wrong_type)),
            (topic, orjson.dumps(unknown)),
            # each numbered after the last: a lower number is a redelivery, not quarantined twice
            (topic, orjson.dumps({**good, "seq": 4, "values": [0.1]})),  # lengths differ
            (topic, orjson.dumps({**good, "seq": 5, "mine": "999999999999"})),  # topic mismatch
            (meta_topic(mine), orjson.dumps({"v": 1, "mine": {"code": mine}})),  # bad definition
            (topic, orjson.dumps({**good, "seq": 6})),
        ])  # fmt: skip

        def settled() -> bool:
            return scalar(database_url, "SELECT count(*) FROM quarantine") == 7

        await eventually(settled)
        await eventually(lambda: scalar(database_url, "SELECT count(*) FROM readings") == 3 * n - 2)

    with psycopg.connect(database_url) as conn:
        reasons = sorted(r for (r,) in conn.execute("SELECT reason FROM quarantine"))
        kept = conn.execute(
            "SELECT payload FROM quarantine WHERE reason = 'malformed_json'"
        ).fetchone()
    assert reasons == sorted([
        "malformed_json", "invalid_utf8", "wrong_type", "unknown_point", "schema_violation",
        "topic_mismatch", "invalid_metadata",
    ])  # fmt: skip
    assert kept is not None and bytes(kept[0]) == b"{not json"  # the exact bytes are kept


async def test_a_redelivered_message_is_stored_once(
    database_url: str, mqtt_url: str, unique_id: str, definition: MineDefinition
) -> None:
    mine = definition.mine.code
    topic = safety_topic(mine, "001")
    first = orjson.dumps(_message(definition, 7))
    second = orjson.dumps(_message(definition, 8))
    n = len(_message(definition, 0)["points"])  # type: ignore[arg-type]
    async with running_gateway(
        database_url, mqtt_url, f"gw-{unique_id}", topics=safety_subscriptions(mine)
    ) as gateway:
        await _publish(mqtt_url, [(topic, first), (topic, first), (topic, second), (topic, first)])
        await eventually(lambda: gateway.metrics.duplicates._value.get() == 2)
        await eventually(lambda: scalar(database_url, "SELECT count(*) FROM readings") == 2 * n)
    assert scalar(database_url, "SELECT seq FROM source_watermarks") == 8
    assert scalar(database_url, "SELECT count(*) FROM quarantine") == 0


async def test_unacknowledged_messages_are_redelivered_to_a_restarted_gateway(
    database_url: str, mqtt_url: str, unique_id: str, definition: MineDefinition
) -> None:
    """Messages published while the gateway is down wait in its persistent session."""
    mine = definition.mine.code
    topic = safety_topic(mine, "001")
    n = len(_message(definition, 0)["points"])  # type: ignore[arg-type]
    client_id = f"gw-{unique_id}"
    topics = safety_subscriptions(mine)
    async with running_gateway(database_url, mqtt_url, client_id, topics=topics):
        await _publish(mqtt_url, [(topic, orjson.dumps(_message(definition, 1)))])
        await eventually(lambda: scalar(database_url, "SELECT count(*) FROM readings") == n)
    await _publish(mqtt_url, [(topic, orjson.dumps(_message(definition, s))) for s in range(2, 52)])
    async with running_gateway(database_url, mqtt_url, client_id, topics=topics):
        await eventually(lambda: scalar(database_url, "SELECT count(*) FROM readings") == 51 * n)
    assert scalar(database_url, "SELECT seq FROM source_watermarks") == 51


async def test_late_readings_are_stored_flagged_and_do_not_touch_the_live_alarm_state(
    database_url: str, mqtt_url: str, unique_id: str, definition: MineDefinition
) -> None:
    mine = definition.mine.code
    topic = safety_topic(mine, "001")
    now = dt.datetime.now(dt.UTC)
    n = len(_message(definition, 0)["points"])  # type: ignore[arg-type]
    live = _message(definition, 1, ts=now.isoformat())
    backfill = _message(  # a substation uploading what it buffered during a cable break
        definition, 2, ts=(now - dt.timedelta(minutes=5)).isoformat(), values=[3.0] * n
    )
    async with running_gateway(
        database_url, mqtt_url, f"gw-{unique_id}", topics=safety_subscriptions(mine)
    ):
        await _publish(mqtt_url, [(topic, orjson.dumps(live)), (topic, orjson.dumps(backfill))])
        await eventually(lambda: scalar(database_url, "SELECT count(*) FROM readings") == 2 * n)
    assert scalar(database_url, "SELECT count(*) FROM readings WHERE flags & 1 = 1") == n
    assert scalar(database_url, "SELECT count(*) FROM alarms") == 0  # 3 %CH4, but history


def _other_mine(code: str) -> SimulatedMine:
    config = load_mine_config(example_mine_path("small"))
    return SimulatedMine(
        config.model_copy(update={"mine": config.mine.model_copy(update={"code": code})})
    )


async def test_two_gateways_split_the_mines_between_them(
    database_url: str, mqtt_url: str, unique_id: str
) -> None:
    from minewatch.simulators.mqtt_publisher import publish_mine

    mines = [_other_mine("141024010011"), _other_mine("141024010012")]
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    async with (
        running_gateway(database_url, mqtt_url, f"a-{unique_id}",
                        topics=safety_subscriptions("141024010011")) as first,
        running_gateway(database_url, mqtt_url, f"b-{unique_id}",
                        topics=safety_subscriptions("141024010012")) as second,
    ):  # fmt: skip
        reports = [
            await publish_mine(
                m, mqtt_url, cycles=30, realtime=False, start=start, client_id=f"sim{i}-{unique_id}"
            )
            for i, m in enumerate(mines)
        ]
        total = sum(r.readings for r in reports)
        await eventually(lambda: scalar(database_url, "SELECT count(*) FROM readings") == total)

        def stored() -> list[float]:  # counted after the commit: may trail the table briefly
            return [g.metrics.readings_stored._value.get() for g in (first, second)]

        # each process took exactly its own mine
        await eventually(lambda: stored() == [r.readings for r in reports])
    assert scalar(database_url, "SELECT count(DISTINCT (point_id, time)) FROM readings") == total


async def test_metrics_are_served_for_prometheus(
    database_url: str, mqtt_url: str, unique_id: str, definition: MineDefinition
) -> None:
    import httpx

    from minewatch.embedded import free_port

    port = free_port()
    mine = definition.mine.code
    async with running_gateway(
        database_url, mqtt_url, f"gw-{unique_id}", topics=safety_subscriptions(mine),
        metrics_port=port,
    ):  # fmt: skip
        await _publish(
            mqtt_url, [(safety_topic(mine, "001"), orjson.dumps(_message(definition, 1)))]
        )
        await eventually(lambda: scalar(database_url, "SELECT count(*) FROM readings") == 8)
        async with httpx.AsyncClient() as client:
            text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    assert "minewatch_readings_stored_total 8.0" in text
    assert f'minewatch_readings_in_total{{mine="{mine}"}} 8.0' in text
    assert 'minewatch_source_readings_total{source="MqttJsonSource-0"} 8.0' in text
    # messages: the safety message and any retained definition of the shared example mine
    assert 'minewatch_source_messages_total{source="MqttJsonSource-0"}' in text


async def test_a_silent_substation_becomes_a_data_interruption_on_the_clock(
    database_url: str, mqtt_url: str, unique_id: str
) -> None:
    """No message is needed to notice that messages stopped: the gateway's clock ticks."""
    # A mine of its own: no retained definition of the shared example mine may replace these
    # fast polling settings while the test runs.
    definition = _other_mine("141024010021").definition
    fast = definition.model_copy(
        update={
            "points": tuple(
                p.model_copy(update={"poll_cycle_s": 0.5, "interruption_cycles": 2})
                for p in definition.points
            )
        }
    )
    with psycopg.connect(database_url) as conn:
        upsert_mine(conn, fast)
    mine = definition.mine.code
    n = len(_message(definition, 0)["points"])  # type: ignore[arg-type]
    async with running_gateway(
        database_url, mqtt_url, f"gw-{unique_id}", topics=safety_subscriptions(mine), tick_s=0.2
    ):
        await _publish(
            mqtt_url, [(safety_topic(mine, "001"), orjson.dumps(_message(definition, 1)))]
        )
        await eventually(
            lambda: (
                scalar(
                    database_url,
                    "SELECT count(*) FROM alarms WHERE classification = 'data_interruption'",
                )
                == n
            ),
            limit_s=15,
        )
    assert scalar(database_url, "SELECT count(*) FROM alarms WHERE ended_at IS NULL") == n

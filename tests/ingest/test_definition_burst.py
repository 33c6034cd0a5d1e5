"""Mine definitions arriving together (a gateway's start: the broker hands over every mine's
retained definition) cost the gateway one point-registry reload, not one each (issue 14,
section 4: a city's 40 mines did not start in 120 s when every definition reloaded the
registry in the write path), and the readings that follow them are still validated and
evaluated with every one of them."""

from __future__ import annotations

import datetime as dt

import aiomqtt
import numpy as np
import orjson
import psycopg
import pytest

from minewatch.feeds import broker_address, meta_topic, safety_subscriptions, safety_topic
from minewatch.ingest.metrics import GatewayMetrics
from minewatch.ingest.time_limits import TimeLimits
from minewatch.ingest.writer import BatchWriter
from minewatch.metadata import MineDefinition, upsert_mine
from minewatch.simulators.config import example_mine_path, load_mine_config
from minewatch.simulators.model import SimulatedMine
from tests.helpers import eventually, running_gateway, scalar

pytestmark = pytest.mark.anyio

#: mines of this test only (the broker is shared by the suite)
_CODES = [f"1410240340{i:02d}" for i in range(1, 6)]


def _definition(code: str, alarm_high: float) -> MineDefinition:
    config = load_mine_config(example_mine_path("small"))
    definition = SimulatedMine(
        config.model_copy(update={"mine": config.mine.model_copy(update={"code": code})})
    ).definition
    return definition.model_copy(
        update={
            "points": tuple(
                p.model_copy(update={"alarm_high": alarm_high, "alarm_high_clear": alarm_high})
                if p.sensor_type == "0001" and p.alarm_high is not None
                else p
                for p in definition.points
            )
        }
    )


def _readings(definition: MineDefinition, seq: int = 1) -> tuple[str, bytes]:
    """One message of substation 001: every point at 0."""
    points = [p.code for p in definition.points if p.substation == "001"]
    message = {
        "v": 1, "mine": definition.mine.code, "substation": "001", "boot": 1, "seq": seq,
        "ts": dt.datetime.now(dt.UTC).isoformat(), "points": points,
        "values": [0] * len(points), "status": [0] * len(points),
    }  # fmt: skip
    return safety_topic(definition.mine.code, "001"), orjson.dumps(message)


async def test_definitions_arriving_together_cost_one_registry_reload(
    database_url: str, mqtt_url: str, unique_id: str
) -> None:
    # Each mine's methane alarm level, from its definition only (the database does not hold
    # these mines before): readings stored, and the registry the engine judges them by has
    # every mine's own level.
    levels = [1.5, 1.75, 2.25, 2.5, 2.5]
    definitions = [_definition(c, a) for c, a in zip(_CODES, levels, strict=True)]
    host, port = broker_address(mqtt_url)
    topics = [t for c in _CODES for t in safety_subscriptions(c)]
    async with running_gateway(
        database_url, mqtt_url, f"gw-{unique_id}", topics=topics,
        tick_s=0.2, registry_refresh_s=0.0,  # clock ticks and refresh checks as often as can be
    ) as gateway:  # fmt: skip
        reloads = gateway.metrics.registry_reloads
        assert reloads._value.get() == 0  # the start loads the registry without a reload
        messages = [_readings(d) for d in definitions]
        async with aiomqtt.Client(host, port) as client:  # in order: definitions, then data
            for d in definitions:
                await client.publish(meta_topic(d.mine.code), d.model_dump_json(), qos=1)
            for topic, payload in messages:
                await client.publish(topic, payload, qos=1)
        stored = sum(len(orjson.loads(p)["points"]) for _, p in messages)
        await eventually(lambda: gateway.metrics.readings_stored._value.get() == stored)
        assert gateway.metrics.messages.labels("meta")._value.get() == len(definitions)
        assert reloads._value.get() == 1  # one per definition before (issue 14)
        registry = gateway._writer.registry  # the engine judges by these levels
        for definition, level in zip(definitions, levels, strict=True):
            ids = registry.ids_by_mine[definition.mine.code]
            high = registry.alarm_high[ids[registry.sensor_type[ids] == "0001"]]
            assert set(high[np.isfinite(high)].tolist()) == {level}
        assert gateway._writer.engine.registry is registry
        # The broker hands the retained definitions over again (a reconnection), now between
        # readings: the same definitions again are no-ops, not a reload before each write.
        again = [_readings(d, seq=2) for d in definitions]
        async with aiomqtt.Client(host, port) as client:
            for d, (topic, payload) in zip(definitions, again, strict=True):
                await client.publish(meta_topic(d.mine.code), d.model_dump_json(), qos=1)
                await client.publish(topic, payload, qos=1)
        await eventually(lambda: gateway.metrics.readings_stored._value.get() == 2 * stored)
        assert gateway.metrics.messages.labels("meta")._value.get() == 2 * len(definitions)
        assert reloads._value.get() == 1
    stored *= 2
    assert scalar(database_url, "SELECT count(*) FROM readings") == stored
    assert scalar(database_url, "SELECT count(*) FROM quarantine") == 0  # no unknown point


async def test_the_periodic_reload_skips_an_unchanged_registry_and_sees_any_change(
    database_url: str,
) -> None:
    """``registry_refresh_s`` reloads only when ``points`` or ``calibrations`` changed
    (migration 0034), whoever changed them: here plain SQL, no definition."""
    definition = _definition(_CODES[0], 1.0)
    with psycopg.connect(database_url) as conn:
        upsert_mine(conn, definition)
    point = next(p.code for p in definition.points if p.sensor_type == "0001")
    limits = TimeLimits(300_000_000, 86_400_000_000)
    metrics = GatewayMetrics()
    async with BatchWriter(database_url, metrics, 0.0, limits) as writer:  # due at every call
        for _ in range(3):
            await writer.maybe_refresh_registry()
        assert metrics.registry_reloads._value.get() == 0
        pid = int(writer.registry.lookup(_CODES[0], [point])[0])
        with psycopg.connect(database_url) as conn:
            conn.execute("UPDATE points SET alarm_high = 1.3 WHERE id = %s", (pid,))
        await writer.maybe_refresh_registry()
        assert metrics.registry_reloads._value.get() == 1
        assert writer.registry.alarm_high[pid] == 1.3
        with psycopg.connect(database_url) as conn:
            conn.execute(
                "INSERT INTO calibrations (point_id, started_at, ended_at, declared_by) "
                "VALUES (%s, now(), now() + interval '1 hour', 'test')",
                (pid,),
            )
        await writer.maybe_refresh_registry()
        await writer.maybe_refresh_registry()
        assert metrics.registry_reloads._value.get() == 2
        assert len(writer.registry.calibrations) == 1

"""The Sparkplug source against a real broker and an edge node written by someone else
(pysparkplug, in its own environment and process): what it publishes arrives as readings, a
seq gap makes minewatch ask for a rebirth that the edge node answers, its death is seen."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest

from minewatch.feeds import broker_address
from minewatch.ingest.contract import SafetyMessage
from minewatch.ingest.quarantine import QuarantineReason, Rejection
from minewatch.ingest.sources.base import Delivery
from minewatch.ingest.sources.sparkplug import (
    DataInterruption,
    DataResumed,
    InterruptionCause,
    SourceEvent,
    decode_payload,
)
from minewatch.ingest.sources.sparkplug.adapter import SparkplugSource
from tests.helpers import eventually
from tests.sparkplug.builders import encode
from tests.sparkplug.peer import edge_node

pytestmark = pytest.mark.anyio

EDGE = "001"


def _mine() -> str:
    """A mine code of its own per test: the broker is shared, Sparkplug topics are not unique."""
    return f"9{random.randrange(10**11):011d}"


class Collected:
    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.events: list[SourceEvent] = []

    @property
    def readings(self) -> list[SafetyMessage]:
        return [d.message for d in self.deliveries if isinstance(d.message, SafetyMessage)]

    @property
    def refusals(self) -> list[Rejection]:
        return [d.message for d in self.deliveries if isinstance(d.message, Rejection)]


@contextlib.asynccontextmanager
async def running_source(mqtt_url: str, client_id: str, mine: str) -> AsyncIterator[Collected]:
    collected = Collected()
    source = SparkplugSource(
        mqtt_url, client_id, [mine], 1 << 20, on_event=collected.events.append,
        rebirth_retry_s=2.0,
    )  # fmt: skip

    async def consume() -> None:
        async for delivery in source.deliveries():
            collected.deliveries.append(delivery)
            delivery.ack()  # as the gateway does once durable

    task = asyncio.create_task(consume())
    try:
        async with asyncio.timeout(10):
            await source.connected.wait()
        yield collected
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _plan(t0_ms: int, items: int) -> dict[str, object]:
    return {
        "metrics": [
            {"name": "CH4", "datatype": "DOUBLE", "alias": 1, "value": 0.30, "t_ms": t0_ms},
            {"name": "FEED", "datatype": "BOOLEAN", "alias": 2, "value": True, "t_ms": t0_ms},
            {"name": "TEMP", "datatype": "INT16", "alias": 3, "value": -5, "t_ms": t0_ms},
        ],
        "data": [
            {"t_ms": t0_ms + 1000 * (i + 1),
             "values": {"CH4": round(0.31 + i / 100, 2), "FEED": i % 2 == 0, "TEMP": -5 - i}}
            for i in range(items)
        ],
    }  # fmt: skip


@pytest.mark.parametrize("by_alias", [False, True], ids=["by-name", "by-alias"])
async def test_what_the_edge_node_publishes_arrives_as_readings(
    mqtt_url: str, unique_id: str, peer_python: Path, by_alias: bool
) -> None:
    mine = _mine()
    t0_ms = int(time.time() * 1000) - 10_000
    plan = _plan(t0_ms, 4)
    started_ms = int(time.time() * 1000)
    options = ["--linger", "0.5", *(["--by-alias"] if by_alias else [])]
    async with (
        running_source(mqtt_url, f"spb-{unique_id}", mine) as got,
        edge_node(peer_python, mqtt_url, mine, EDGE, plan, *options) as node,
    ):
        await node.wait_for("done")
        await eventually(lambda: len(got.readings) == 5, limit_s=10)
        await node.process.wait()
        await asyncio.sleep(0.3)  # its clean NDEATH, if any, has arrived
    birth, *data = got.readings
    assert {m.source for m in got.readings} == {f"{mine}/sparkplug/{EDGE}"}
    assert started_ms - 1000 <= birth.boot <= int(time.time() * 1000)
    assert [(m.boot, m.seq) for m in got.readings] == [(birth.boot, n) for n in range(5)]
    assert birth.codes == ["CH4", "FEED", "TEMP"]  # the node's bdSeq is not a reading
    assert birth.value.tolist() == [0.30, 1.0, -5.0]
    assert (birth.time_us == t0_ms * 1000).all()
    for i, message in enumerate(data):
        assert message.codes == ["CH4", "FEED", "TEMP"]
        assert message.value.tolist() == [round(0.31 + i / 100, 2), float(i % 2 == 0), -5.0 - i]
        assert (message.time_us == (t0_ms + 1000 * (i + 1)) * 1000).all()
        assert message.value_ok.all()
    # pysparkplug 0.6.1 sends its clean-disconnect NDEATH with the *next* bdSeq, not the one of
    # its NBIRTH; a host must ignore a death that does not match (§ bdSeq), so nothing ends
    # here; the death is kept aside (stale_death) so that it leaves a trace.
    assert [r.reason for r in got.refusals] in ([], [QuarantineReason.STALE_DEATH])
    assert got.events == []


async def test_a_seq_gap_is_an_interruption_and_the_edge_node_answers_the_rebirth_request(
    mqtt_url: str, unique_id: str, peer_python: Path
) -> None:
    mine = _mine()
    t0_ms = int(time.time() * 1000) - 10_000
    options = ["--skip-seq-before", "2", "--linger", "10", "--by-alias"]
    async with (
        running_source(mqtt_url, f"spb-{unique_id}", mine) as got,
        edge_node(peer_python, mqtt_url, mine, EDGE, _plan(t0_ms, 4), *options) as node,
    ):
        await node.wait_for("rebirth_request")
        await node.wait_for("birth", times=2)
        await eventually(lambda: len(got.readings) == 7, limit_s=10)
        # leaving the block kills the node: its will (and its fault readings) come next
        events, readings = list(got.events), list(got.readings)
    assert node.count("skip") == 1 and node.count("rebirth_request") == 1
    (gap,) = events
    assert isinstance(gap, DataInterruption)
    assert (gap.cause, gap.missing_messages, gap.source) == (
        InterruptionCause.SEQUENCE_GAP, 1, f"{mine}/sparkplug/{EDGE}",
    )  # fmt: skip
    assert (gap.last_data_us, gap.resumed_us) == ((t0_ms + 2000) * 1000, (t0_ms + 3000) * 1000)
    first, *data, rebirth = readings
    assert [m.seq for m in data] == [1, 2, 3, 4, 5]  # the data after the gap is kept
    fault = data[2]  # the hole: substation-fault readings just after the last data
    assert (fault.status == 16).all() and fault.codes == ["CH4", "FEED", "TEMP"]
    assert (fault.time_us == (t0_ms + 2000) * 1000 + 1).all()
    assert not (data[3].status & 16).any()
    assert (rebirth.seq, rebirth.codes) == (0, ["CH4", "FEED", "TEMP"])
    assert rebirth.boot > first.boot
    assert rebirth.value.tolist() == [0.34, 0.0, -8.0]  # the node's current values


async def test_the_death_of_the_edge_node_is_seen_and_a_new_birth_resumes_it(
    mqtt_url: str, unique_id: str, peer_python: Path
) -> None:
    mine = _mine()
    t0_ms = int(time.time() * 1000) - 10_000
    async with running_source(mqtt_url, f"spb-{unique_id}", mine) as got:
        async with edge_node(
            peer_python, mqtt_url, mine, EDGE, _plan(t0_ms, 3), "--die-after", "2"
        ) as node:
            await node.wait_for("dying")
            await eventually(lambda: len(got.events) == 1, limit_s=10)
        (death,) = got.events
        assert isinstance(death, DataInterruption)
        assert death.cause is InterruptionCause.NODE_DEATH
        assert death.last_data_us == (t0_ms + 2000) * 1000
        await eventually(lambda: len(got.readings) == 4, limit_s=10)
        assert [m.seq for m in got.readings] == [0, 1, 2, 3]
        fault = got.readings[3]  # every point of the node: 分站故障, dated when seen
        assert (fault.status == 16).all() and fault.codes == ["CH4", "FEED", "TEMP"]
        assert (fault.time_us == death.detected_us).all()
        async with edge_node(
            peer_python, mqtt_url, mine, EDGE, _plan(t0_ms + 5000, 1), "--linger", "0"
        ) as node:
            await node.wait_for("done")
            await eventually(lambda: len(got.readings) == 6, limit_s=10)
    resumed = got.events[1]
    assert isinstance(resumed, DataResumed) and resumed.boot == got.readings[4].boot
    assert got.readings[4].boot > got.readings[0].boot


async def test_data_before_a_birth_is_refused_and_a_rebirth_is_requested_on_the_broker(
    mqtt_url: str, unique_id: str
) -> None:
    mine = _mine()
    host, port = broker_address(mqtt_url)
    data = encode([], timestamp=int(time.time() * 1000), seq=7)
    async with (
        running_source(mqtt_url, f"spb-{unique_id}", mine) as got,
        aiomqtt.Client(host, port) as client,
    ):
        await client.subscribe(f"spBv1.0/{mine}/NCMD/{EDGE}", qos=0)
        await client.publish(f"spBv1.0/{mine}/NDATA/{EDGE}", data, qos=1)
        async with asyncio.timeout(10):
            command = await anext(aiter(client.messages))
        await eventually(lambda: len(got.refusals) == 1, limit_s=10)
    (refused,) = got.refusals
    assert (refused.reason, refused.payload) == (QuarantineReason.NO_BIRTH, data)
    request = decode_payload(bytes(command.payload), source="", max_bytes=1024)  # type: ignore[arg-type]
    assert not isinstance(request, Rejection)
    assert [(m.name, m.value) for m in request.metrics] == [("Node Control/Rebirth", True)]

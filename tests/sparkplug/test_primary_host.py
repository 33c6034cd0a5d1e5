"""The gateway as a Sparkplug 3.0 Primary Host Application, against a real broker: a subscriber
of ``spBv1.0/STATE/<host id>`` sees it online once it runs (retained, with the Will's
timestamp), offline once it stops cleanly (its own message, not the Will), and offline through
the Will when the gateway process is killed; a stray offline STATE is answered at once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiomqtt
import pytest

from minewatch.feeds import broker_address
from minewatch.ingest.sources.sparkplug import HostState, parse_state, state_topic
from tests.helpers import eventually, running_gateway

pytestmark = pytest.mark.anyio


@dataclass(frozen=True)
class Seen:
    state: HostState
    retain: bool
    at_ms: int


@contextlib.asynccontextmanager
async def watching(mqtt_url: str, topic: str, client_id: str) -> AsyncIterator[list[Seen]]:
    """Collect every message on ``topic`` (the retained one first) for the block."""
    host, port = broker_address(mqtt_url)
    seen: list[Seen] = []
    async with aiomqtt.Client(host, port, identifier=client_id) as client:
        await client.subscribe(topic, qos=1)

        async def collect() -> None:
            async for message in client.messages:
                state = parse_state(bytes(message.payload))  # type: ignore[arg-type]
                assert state is not None, message.payload
                seen.append(Seen(state, bool(message.retain), int(time.time() * 1000)))

        task = asyncio.create_task(collect())
        try:
            yield seen
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _retained(mqtt_url: str, topic: str, client_id: str) -> HostState | None:
    """What a newcomer gets on ``topic``: the retained STATE, if any."""
    async with watching(mqtt_url, topic, client_id) as seen:
        with contextlib.suppress(AssertionError):
            await eventually(lambda: bool(seen), limit_s=1.0)
    return seen[0].state if seen else None


def _mine() -> str:
    return f"9{int.from_bytes(os.urandom(5)) % 10**11:011d}"


async def test_online_while_running_offline_after_a_clean_stop_and_stray_offline_answered(
    database_url: str, mqtt_url: str, unique_id: str
) -> None:
    host_id = f"host-{unique_id}"
    topic = state_topic(host_id)
    async with watching(mqtt_url, topic, f"watch-{unique_id}") as seen:
        before_ms = int(time.time() * 1000)
        async with running_gateway(
            database_url, mqtt_url, f"gw-{unique_id}", topics=[], sparkplug_groups=[_mine()],
            sparkplug_host_id=host_id,
        ):  # fmt: skip
            await eventually(lambda: len(seen) == 1)
            birth = seen[0]
            assert birth.state.online and not birth.retain  # a live publish to a subscriber
            assert before_ms <= birth.state.timestamp_ms <= birth.at_ms
            assert await _retained(mqtt_url, topic, f"late-{unique_id}") == birth.state

            # someone (a stale will of another session, say) says we are offline: answered
            async with aiomqtt.Client(*broker_address(mqtt_url)) as other:
                await other.publish(topic, HostState(False, birth.state.timestamp_ms).payload(),
                                    qos=1, retain=True)  # fmt: skip
            await eventually(lambda: len(seen) == 3)
            assert not seen[1].state.online
            assert seen[2].state.online
            assert seen[2].state.timestamp_ms >= birth.state.timestamp_ms
            assert await _retained(mqtt_url, topic, f"late2-{unique_id}") == seen[2].state
            stop_ms = int(time.time() * 1000)
        await eventually(lambda: len(seen) == 4, limit_s=5)
        await asyncio.sleep(1.0)  # a Will would follow now if the stop had not been clean
        assert len(seen) == 4, seen
    offline = seen[3].state
    assert not offline.online
    assert offline.timestamp_ms >= stop_ms  # stamped at the disconnect, not at the CONNECT
    assert await _retained(mqtt_url, topic, f"after-{unique_id}") == offline


async def test_a_killed_gateway_is_declared_offline_by_its_will(
    database_url: str, mqtt_url: str, unique_id: str
) -> None:
    host_id = f"host-{unique_id}"
    topic = state_topic(host_id)
    env = {
        **os.environ,
        "MINEWATCH_DATABASE_URL": database_url,
        "MINEWATCH_MQTT_URL": mqtt_url,
        "MINEWATCH_GATEWAY__CLIENT_ID": f"gw-{unique_id}",
        "MINEWATCH_GATEWAY__TOPICS": "[]",
        "MINEWATCH_GATEWAY__SPARKPLUG_GROUPS": json.dumps([_mine()]),
        "MINEWATCH_GATEWAY__SPARKPLUG_HOST_ID": host_id,
    }
    async with watching(mqtt_url, topic, f"watch-{unique_id}") as seen:
        gateway = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "minewatch.cli", "gateway",
            env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            await eventually(lambda: len(seen) == 1, limit_s=30)
            assert seen[0].state.online
            gateway.send_signal(signal.SIGKILL)  # no offline STATE, no DISCONNECT
            await gateway.wait()
            await eventually(lambda: len(seen) == 2, limit_s=10)
        finally:
            if gateway.returncode is None:
                gateway.send_signal(signal.SIGKILL)
                await gateway.wait()
    will = seen[1].state
    # the Will registered in CONNECT: offline, with the birth's (the CONNECT's) timestamp
    assert will == HostState(False, seen[0].state.timestamp_ms)
    assert await _retained(mqtt_url, topic, f"after-{unique_id}") == will

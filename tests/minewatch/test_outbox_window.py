"""An outbox round is published with many QoS 1 messages in flight, in order, and returns only
once the broker has acknowledged every one (issue 14, session 7: an interruption storm's
changes went out one broker round trip each)."""

from __future__ import annotations

import asyncio

import aiomqtt
import psycopg
import pytest

from minewatch.outbox import WINDOW, Outbox, Round, _publish_round

pytestmark = pytest.mark.anyio


class _Broker:
    """A client whose ``publish`` is acknowledged one event-loop turn later; it records the
    order of the messages and the most in flight at once. ``fail_at``: that message fails."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.sent: list[bytes] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.pending_calls_threshold = 10
        self._fail_at = fail_at

    async def publish(self, topic: str, payload: bytes, qos: int) -> None:
        assert qos == 1
        self.sent.append(payload)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0)
            if self._fail_at is not None and payload == str(self._fail_at).encode():
                raise aiomqtt.MqttError("the broker connection was lost")
        finally:
            self.in_flight -= 1


class _Log(Outbox):
    what = "test"
    start = "0"

    def __init__(self) -> None:
        self.acknowledged: list[int] = []

    async def next_round(self, conn: psycopg.AsyncConnection, position: int) -> Round:
        raise NotImplementedError

    def published(self, index: int) -> None:
        self.acknowledged.append(index)


def _messages(n: int) -> list[tuple[str, bytes]]:
    return [("minewatch/v1/m/alarms", str(k).encode()) for k in range(n)]


async def test_a_round_goes_out_in_order_with_a_window_in_flight() -> None:
    broker, log = _Broker(), _Log()
    await _publish_round(broker, log, _messages(250))  # type: ignore[arg-type]
    assert broker.sent == [str(k).encode() for k in range(250)]
    assert broker.most_in_flight == WINDOW > 1  # main: one at a time
    assert sorted(log.acknowledged) == list(range(250))


async def test_a_failed_message_fails_the_round_after_its_window_and_sends_no_later_one() -> None:
    broker, log = _Broker(fail_at=120), _Log()
    with pytest.raises(aiomqtt.MqttError):
        await _publish_round(broker, log, _messages(250))  # type: ignore[arg-type]
    assert broker.in_flight == 0  # nothing left running
    assert len(broker.sent) == 200  # its window ended; the next was not started
    assert 120 not in log.acknowledged and sorted(log.acknowledged) == [
        k for k in range(200) if k != 120
    ]

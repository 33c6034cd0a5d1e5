"""The Primary Host STATE payload (Sparkplug 3.0 §4.2.3): JSON with ``online`` and
``timestamp``, and when an offline STATE on our own topic asks for a new birth."""

from __future__ import annotations

import pytest

from minewatch.ingest.sources.sparkplug import HostState, parse_state, state_topic
from minewatch.ingest.sources.sparkplug.host_state import must_answer
from minewatch.ingest.sources.sparkplug.topic import valid_host_id


def test_the_state_payload_is_json_with_online_and_timestamp_only() -> None:
    assert HostState(True, 1_750_000_000_123).payload() == (
        b'{"online":true,"timestamp":1750000000123}'
    )
    assert parse_state(HostState(False, 5).payload()) == HostState(False, 5)
    assert state_topic("minewatch-a") == "spBv1.0/STATE/minewatch-a"


@pytest.mark.parametrize(
    "data",
    [b"OFFLINE", b"{}", b'{"online": "false", "timestamp": 1}', b'{"online": false}',
     b'{"online": false, "timestamp": true}', b"[1]", b"\xff"],
)  # fmt: skip
def test_anything_else_is_not_a_state(data: bytes) -> None:
    assert parse_state(data) is None


def test_an_offline_state_is_answered_unless_it_is_the_retained_will_of_an_earlier_session() -> (
    None
):
    birth = 1000
    assert must_answer(HostState(False, 1000), retained=False, birth_ms=birth)
    assert must_answer(HostState(False, 2000), retained=True, birth_ms=birth)
    assert not must_answer(HostState(False, 999), retained=True, birth_ms=birth)
    assert not must_answer(HostState(True, 5), retained=False, birth_ms=birth)
    assert not must_answer(None, retained=False, birth_ms=birth)


@pytest.mark.parametrize("host_id", ["", "a/b", "a+", "#"])
def test_a_host_id_must_be_one_topic_level(host_id: str) -> None:
    assert not valid_host_id(host_id)

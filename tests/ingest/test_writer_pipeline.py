"""The pipelined write path (ingest/writer.py): batch N+1 is prepared (validated, evaluated on
top of N's alarm state, encoded) while N's transaction runs. If N is refused by the database
and quarantined, N+1 is evaluated again from the state that committed; acknowledgements stay
after each commit, in order. Real PostgreSQL; the refusal is a trigger that waits, so N's
transaction is really running while N+1 is prepared."""

from __future__ import annotations

import asyncio
import datetime as dt

import orjson
import psycopg
import pytest

from minewatch.feeds import safety_topic
from minewatch.ingest.contract import SafetyMessage, parse_message
from minewatch.ingest.metrics import GatewayMetrics
from minewatch.ingest.time_limits import TimeLimits
from minewatch.ingest.writer import BatchWriter, PendingWrite
from minewatch.metadata import MineDefinition, upsert_mine
from minewatch.simulators.config import example_mine_path, load_mine_config
from minewatch.simulators.model import SimulatedMine
from tests.helpers import scalar

pytestmark = pytest.mark.anyio

REFUSED = 3.33  # the trigger refuses this value (inside the sensor's range: validation keeps it)
TRIGGER = f"""
CREATE FUNCTION refuse_reading() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.value = {REFUSED} THEN
        PERFORM pg_sleep(0.5);  -- N's transaction runs while N+1 is prepared
        RAISE EXCEPTION 'refused by the test';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refuse_reading BEFORE INSERT ON readings
    FOR EACH ROW EXECUTE FUNCTION refuse_reading();
"""


def _definition() -> MineDefinition:
    return SimulatedMine(load_mine_config(example_mine_path("small"))).definition


def _message(definition: MineDefinition, point: str, seq: int, at: dt.datetime,
             value: float) -> SafetyMessage:  # fmt: skip
    mine = definition.mine.code
    payload = {
        "v": 1, "mine": mine, "substation": "001", "boot": 1, "seq": seq,
        "ts": at.isoformat(), "points": [point], "values": [value], "status": [0],
    }  # fmt: skip
    message = parse_message(safety_topic(mine, "001"), orjson.dumps(payload), 1 << 20)
    assert isinstance(message, SafetyMessage)
    return message


def _pending(writer: BatchWriter, messages: list[SafetyMessage], name: str,
             acks: list[str]) -> PendingWrite:  # fmt: skip
    pending = PendingWrite()
    for message in messages:
        assert writer.accepts(pending, message)
        pending.messages.append(message)
        pending.readings += len(message)
        pending.acks.append(lambda: acks.append(name))
    return pending


@pytest.mark.parametrize("refused", [True, False], ids=["N refused", "N committed"])
async def test_batch_n_plus_1_prepared_while_n_commits_is_evaluated_from_what_committed(
    database_url: str, refused: bool
) -> None:
    definition = _definition()
    with psycopg.connect(database_url) as conn:
        upsert_mine(conn, definition)
        conn.execute(TRIGGER)
    point = next(p.code for p in definition.points if p.code.endswith("001A02"))
    t1 = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=10)
    t2, t3 = t1 + dt.timedelta(seconds=1), t1 + dt.timedelta(seconds=2)
    # N: an excursion's first reading (refused, or stored); N+1: its second and third.
    first = REFUSED if refused else 2.0
    acks: list[str] = []
    limits = TimeLimits(300_000_000, 86_400_000_000)
    async with BatchWriter(database_url, GatewayMetrics(), 30.0, limits) as writer:
        batch_n = _pending(writer, [_message(definition, point, 1, t1, first)], "N", acks)
        await writer.submit(batch_n)
        await asyncio.sleep(0.2)  # N's transaction is now inside its COPY
        later = [_message(definition, point, 2, t2, 2.0), _message(definition, point, 3, t3, 2.0)]
        batch_n1 = _pending(writer, later, "N+1", acks)
        await writer.submit(batch_n1)  # prepared on top of N while N runs, then N ends
        assert acks == ["N"]  # N is acknowledged (stored or quarantined) before N+1 commits
        await writer.drain()
    assert acks == ["N", "N+1", "N+1"]  # one acknowledgement per message

    stored = scalar(database_url, "SELECT count(*) FROM readings")
    quarantined = scalar(
        database_url, "SELECT count(*) FROM quarantine WHERE reason = 'database_rejected'"
    )
    started = scalar(
        database_url,
        "SELECT started_at FROM alarms WHERE rule = 'upper_alarm' AND state <> 'cleared'",
    )
    watermark = scalar(database_url, "SELECT seq FROM source_watermarks")
    assert watermark == 3
    if refused:  # N set aside, and the excursion starts at N+1's first reading
        assert (stored, quarantined) == (2, 1)
        assert started == t2
    else:  # N stored, and N+1 continued N's excursion
        assert (stored, quarantined) == (3, 0)
        assert started == t1


async def test_a_redelivery_of_the_batch_in_flight_is_not_taken_again(
    database_url: str,
) -> None:
    """Deduplication counts the sequence numbers of the batch whose transaction runs."""
    definition = _definition()
    with psycopg.connect(database_url) as conn:
        upsert_mine(conn, definition)
    point = next(p.code for p in definition.points if p.code.endswith("001A02"))
    at = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=10)
    message = _message(definition, point, 1, at, 0.3)
    limits = TimeLimits(300_000_000, 86_400_000_000)
    async with BatchWriter(database_url, GatewayMetrics(), 30.0, limits) as writer:
        await writer.submit(_pending(writer, [message], "N", []))
        assert not writer.accepts(PendingWrite(), message)  # in flight, not committed yet
        await writer.drain()
        assert not writer.accepts(PendingWrite(), message)  # committed
    assert scalar(database_url, "SELECT count(*) FROM readings") == 1

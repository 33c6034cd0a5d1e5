"""A national file that cannot go up in one message (docs/federation.md "National files up",
Sizes): the broker would acknowledge its message and drop it, so the drop folder of an
installation that sends its files up refuses it, byte for byte in ``rejected/`` with its
reason, and the largest file it accepts does pass a real broker with that limit."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
from pathlib import Path

import aiomqtt
import orjson
import psycopg
import pytest

from minewatch.embedded import embedded_mosquitto
from minewatch.feeds import files_topic
from minewatch.ingest.national_file_publisher import (
    ENVELOPE_BYTES,
    _FileOutbox,
    file_message,
    largest_file_sent_up,
)
from minewatch.national import ParsedFile, parse_file
from tests.federation.stacks import BINARY
from tests.helpers import eventually, running_gateway

pytestmark = pytest.mark.anyio

MINE = "141024010091"
CHINA = dt.timezone(dt.timedelta(hours=8))
#: The brokers' message size limit of this test (Mosquitto's default here is 16 MiB; a smaller
#: one keeps the files small, the rule is the same).
LIMIT = 256 * 1024


def _fzss(size: int, minutes_ago: int) -> tuple[str, bytes]:
    """A valid FZSS file of exactly ``size`` bytes (the first station's code takes the rest)."""
    t = (dt.datetime.now(CHINA) - dt.timedelta(minutes=minutes_ago)).replace(microsecond=0)
    stamp = t.strftime("%Y-%m-%d %H:%M:%S")
    head = f"{MINE};测试煤矿;{stamp}~\r\n".encode()
    record = "{code};0;1;" + stamp + "~\r\n"
    records = [
        record.format(code=f"{n:05d}") for n in range(size // len(record.format(code="00000")))
    ]
    while len(head) + sum(map(len, records)) + 2 > size:
        records.pop()
    pad = size - len(head) - sum(map(len, records)) - 2
    records[0] = record.format(code="0" * pad + "00000")
    data = head + "".join(records).encode() + b"||"
    name = f"{MINE}_FZSS_{t:%Y%m%d%H%M%S}.txt"
    assert len(data) == size and isinstance(parse_file(name, data), ParsedFile)
    return name, data


def test_the_message_of_the_largest_file_fits_whatever_its_other_fields() -> None:
    largest = largest_file_sent_up(LIMIT)
    uploaded = dt.datetime(2026, 12, 6, 12, 0, 0, 123456, tzinfo=CHINA)
    row = (2**63 - 1, MINE, f"{MINE}_RYCY_20261206120000.txt", "RYCY", uploaded, "f" * 64,
           b"x" * largest)  # fmt: skip
    _, payload = file_message(row, "s" * 51)  # the longest installation name
    assert len(payload) <= LIMIT
    assert len(payload) - len(base64.b64encode(b"x" * largest)) < ENVELOPE_BYTES // 2
    assert largest_file_sent_up(16 << 20) == 12_582_144  # the embedded broker's 16 MiB


async def test_a_file_too_large_for_one_message_up_is_refused_and_kept_byte_for_byte(
    private_dir: Path, database_url: str, unique_id: str
) -> None:
    largest = largest_file_sent_up(LIMIT)
    fits_name, fits = _fzss(largest, minutes_ago=20)
    big_name, big = _fzss(largest + 1, minutes_ago=10)
    root = private_dir / "drop"
    (root / "inbox").mkdir(parents=True)
    broker_dir = private_dir / "broker"
    broker_dir.mkdir(mode=0o755)
    with embedded_mosquitto(
        broker_dir, BINARY, extra_config=f"message_size_limit {LIMIT}"
    ) as broker:
        async with aiomqtt.Client(broker.host, broker.port, identifier=f"up-{unique_id}") as up:
            await up.subscribe(files_topic(MINE), qos=1)
            # The broker's limit is real, and silent: one byte more is acknowledged and lost.
            async with aiomqtt.Client(broker.host, broker.port) as other:
                await other.publish(files_topic(MINE), b"x" * (LIMIT + 1), qos=1)
                await other.publish(files_topic(MINE), b"marker", qos=1)
            first = await asyncio.wait_for(anext(up.messages), 30)
            assert first.payload == b"marker"

            async with running_gateway(
                database_url, broker.url, f"gw-{unique_id}", installation="mine-a",
                publish_alarms=False, files_root=root, files_scan_s=0.2,
                files_up_message_bytes=LIMIT,
            ):  # fmt: skip
                for name, data in ((big_name, big), (fits_name, fits)):
                    (root / "inbox" / f".{name}").write_bytes(data)  # hidden while written
                    (root / "inbox" / f".{name}").rename(root / "inbox" / name)
                message = await asyncio.wait_for(anext(up.messages), 60)
                await eventually(lambda: (root / "done" / fits_name).exists())

    payload = orjson.loads(message.payload)
    assert len(message.payload) <= LIMIT
    assert payload["name"] == fits_name
    assert base64.b64decode(payload["content"]) == fits
    assert payload["sha256"] == hashlib.sha256(fits).hexdigest()

    # The file too large is kept as it came, with its reason; it was neither stored nor sent.
    assert (root / "rejected" / big_name).read_bytes() == big
    reason = (root / "rejected" / f"{big_name}.reason.txt").read_text(encoding="utf-8")
    assert reason.startswith("reason: too_large_to_send_up\n")
    assert f"{largest + 1} bytes > {largest}" in reason
    with psycopg.connect(database_url) as conn:
        kept = [row[0] for row in conn.execute("SELECT name FROM national_files")]
    assert kept == [fits_name]


def test_a_kept_file_whose_message_is_too_large_is_not_published(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One kept before the rule (or before the limit was lowered): the broker would drop it."""
    outbox = _FileOutbox("mine-a", 5.0, LIMIT)
    uploaded = dt.datetime(2026, 12, 6, 12, tzinfo=CHINA)
    small = (1, MINE, f"{MINE}_FZSS_20261206120000.txt", "FZSS", uploaded, "0" * 64, b"x")
    # its base64 alone is over the limit
    large = (2, MINE, f"{MINE}_FZSS_20261206120100.txt", "FZSS", uploaded, "0" * 64,
             b"x" * (LIMIT // 4 * 3 + 3))  # fmt: skip
    assert outbox._message(small) is not None
    with caplog.at_level("ERROR"):
        assert outbox._message(large) is None
    assert f"{MINE}_FZSS_20261206120100.txt (seq 2) not sent up" in caplog.text

"""The national files this installation's drop folder accepted, sent up on
``minewatch/v1/<mine>/files`` for the levels above (docs/federation.md "National files up").

An outbox over ``national_files`` (migration 0032: each accepted file byte for byte, numbered
in commit order): the files after the durable position go out at QoS 1, one message each, and
the position moves once the broker has acknowledged them (:func:`minewatch.outbox.publish_outbox`).
A broker outage delays them, never loses them; a resend carries the same ``(source, seq)``, by
which the level above stores each file once. A new publisher starts at the beginning: the level
above gets every file kept.
"""

from __future__ import annotations

import base64
import logging

import orjson
import psycopg

from minewatch.feeds import files_topic
from minewatch.outbox import Outbox, Round, publish_outbox

log = logging.getLogger(__name__)

#: Files in one round at most, and their bytes (a single larger file still goes, alone).
BATCH_FILES = 16
BATCH_BYTES = 8 << 20

#: What a file's message holds besides its bytes in base64, at most: source (51 characters at
#: most), seq, mine, name, type, upload time, SHA-256 and the JSON around them take under 400.
ENVELOPE_BYTES = 1024


def largest_file_sent_up(message_bytes: int) -> int:
    """The largest file whose message fits ``message_bytes``: base64 makes 4 bytes of 3."""
    return (message_bytes - ENVELOPE_BYTES) // 4 * 3


_AFTER = """
SELECT seq, mine_code, name, file_type, uploaded_at, sha256, content
FROM (SELECT f.*, sum(octet_length(f.content)) OVER (ORDER BY f.seq) AS upto,
             row_number() OVER (ORDER BY f.seq) AS k
      FROM (SELECT * FROM national_files WHERE seq > %(after)s ORDER BY seq
            LIMIT %(files)s) f) f
WHERE k = 1 OR upto <= %(bytes)s
ORDER BY seq
"""


def file_message(row: tuple[object, ...], source: str) -> tuple[str, bytes]:
    """(topic, payload) of one ``national_files`` row (as :data:`_AFTER` returns it): the
    file's bytes in base64, its name, type, upload time and SHA-256."""
    seq, mine, name, file_type, uploaded_at, sha256, content = row
    assert isinstance(mine, str) and isinstance(content, bytes)
    payload = {
        "v": 1, "kind": "national_file", "source": source, "seq": seq, "mine": mine,
        "name": name, "type": file_type, "uploaded_at": uploaded_at, "sha256": sha256,
        "content": base64.b64encode(content).decode("ascii"),
    }  # fmt: skip
    return files_topic(mine), orjson.dumps(payload)


class _FileOutbox(Outbox):
    what = "national-files"
    start = "0"

    def __init__(self, source: str, poll_s: float, max_message_bytes: int) -> None:
        self._source = source
        self.poll_s = poll_s
        self._max_message_bytes = max_message_bytes

    async def next_round(self, conn: psycopg.AsyncConnection, position: int) -> Round:
        cur = await conn.execute(
            _AFTER, {"after": position, "files": BATCH_FILES, "bytes": BATCH_BYTES}
        )
        rows = await cur.fetchall()
        messages = [m for row in rows if (m := self._message(row)) is not None]
        last = int(rows[-1][0]) if rows else position
        return Round(messages, last, more=bool(rows))

    def _message(self, row: tuple[object, ...]) -> tuple[str, bytes] | None:
        """The file's message, or None (logged) where it would exceed the brokers' limit:
        they would acknowledge it and drop it. The drop folder refuses such a file when it
        arrives; one kept before (or before the limit was lowered) stays here only."""
        topic, payload = file_message(row, self._source)
        if len(payload) <= self._max_message_bytes:
            return topic, payload
        log.error(
            "national file %s (seq %s) not sent up: its message of %d bytes exceeds "
            "MINEWATCH_GATEWAY__FILES_UP_MESSAGE_BYTES (%d); it stays in national_files here",
            row[2], row[0], len(payload), self._max_message_bytes,
        )  # fmt: skip
        return None


async def publish_national_files(
    database_url: str, mqtt_url: str, client_id: str, source: str, poll_s: float = 5.0,
    max_message_bytes: int = 16 << 20,
) -> None:  # fmt: skip
    """Run until cancelled; a file whose message exceeds ``max_message_bytes`` is not sent."""
    outbox = _FileOutbox(source, poll_s, max_message_bytes)
    await publish_outbox(outbox, database_url, mqtt_url, client_id)

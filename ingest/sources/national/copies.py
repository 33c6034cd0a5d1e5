"""The copy of an accepted national file that goes up the hierarchy (docs/federation.md
"National files up"): kept byte for byte in ``national_files`` (migration 0032) before the file
moves to ``done/``, numbered for the publisher (``ingest/national_file_publisher.py``).

A file read again after a crash (kept, not yet moved) is kept once: the name is unique.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import psycopg

from minewatch.ingest.sources.national.inbox import AcceptedFile

#: Held by the writer of ``national_files`` for its transaction, so that the numbers are
#: committed in their order (several gateways may share a database).
NUMBERING_LOCK = 0x6E6174_0032


@dataclass(frozen=True, slots=True)
class FileCopy:
    """One accepted file as it arrived."""

    mine: str
    name: str
    file_type: str
    uploaded_at: dt.datetime
    sha256: str
    content: bytes = field(repr=False)

    @property
    def source(self) -> str:
        """The quarantine source, as for the file's other parts."""
        return f"{self.mine}/files/{self.name.removesuffix('.txt')}"


def file_copy(accepted: AcceptedFile) -> FileCopy:
    parsed = accepted.parsed
    return FileCopy(
        parsed.mine_code, str(parsed.name), str(parsed.file_type), parsed.header.upload_time,
        accepted.sha256, accepted.content,
    )  # fmt: skip


async def keep_copy(cur: psycopg.AsyncCursor, copy: FileCopy) -> None:
    """Keep ``copy`` in the cursor's transaction (nothing if a file of its name is kept)."""
    await cur.execute("SELECT pg_advisory_xact_lock(%s)", (NUMBERING_LOCK,))
    await cur.execute(
        "INSERT INTO national_files (mine_code, name, file_type, uploaded_at, sha256, content) "
        "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (name) DO NOTHING",
        (copy.mine, copy.name, copy.file_type, copy.uploaded_at, copy.sha256, copy.content),
    )

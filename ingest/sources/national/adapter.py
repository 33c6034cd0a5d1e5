"""The national TXT drop folder as a gateway source.

Every few seconds the inbox is scanned (:mod:`.inbox` judges the files);
each accepted file becomes one delivery or more, acknowledged together by moving the file to
``done/`` once every one of them is durable: a crash before that leaves the file in ``inbox/``
to be read again, and each part recognises the second reading (per-file sequence, watermark or
keyed upsert).

- CDSS -> readings (:class:`~ingest.contract.SafetyMessage`);
- CDDY (or FZDY) -> the mine's definition (:class:`~ingest.contract.MetaMessage`);
- RYSS, JZSS -> personnel feed batches, and RYXX, RYQY, RYJZ -> personnel definitions
  (people, areas, stations), which the gateway hands to the feed pipeline;
- FZSS, YCBJ, TJSJ, RYCS, RYCY, RYXZ -> report rows (:class:`NationalReport`), which the
  gateway hands to its report sink (:mod:`.report_store`);
- RYQJ -> both: the SOS positions for minewatch's own SOS alarm, and the mine's SOS records;
- with ``keep_copies`` (an installation with a name), first of all the file byte for byte
  (:class:`~.copies.FileCopy`, for the levels above), which the report sink keeps;
- each record the codec refused -> a :class:`Rejection` (``invalid_record``) for the quarantine
  table, whatever the share of bad records: the good ones are stored all the same.

A file with nothing to store (no records, no refused record) moves to ``done/`` at once. The
readings that validation refuses (an unknown point code...) are listed in the file's reason
file in ``done/`` as well as in the quarantine table (:attr:`Delivery.refused`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from minewatch.ingest.contract import MetaMessage
from minewatch.ingest.quarantine import QuarantineReason, Rejection
from minewatch.ingest.sources.base import Delivery, Source, SourceContext
from minewatch.ingest.sources.national.copies import file_copy
from minewatch.ingest.sources.national.inbox import AcceptedFile, Inbox, InboxConfig
from minewatch.ingest.sources.national.personnel import (
    definition_part,
    jzss_batch,
    ryqj_batch,
    ryss_batch,
)
from minewatch.ingest.sources.national.reports import REPORT_TABLES, national_report
from minewatch.ingest.sources.national.safety import cdss_messages, definition_update
from minewatch.ingest.sources.national.settings import NationalFileSettings
from minewatch.national import FileType, ParsedFile
from minewatch.settings import GatewaySettings

log = logging.getLogger(__name__)


def file_messages(accepted: AcceptedFile, keep_copy: bool = False) -> list[object]:
    """What one accepted file becomes: every message that must be durable before the file
    moves to ``done/`` (none for a file without records or refused records, unless
    ``keep_copy``: then its copy for the levels above comes first, :mod:`.copies`)."""
    copy: list[object] = [file_copy(accepted)] if keep_copy else []
    return [*copy, *_content(accepted), *record_rejections(accepted.parsed)]


def record_rejections(parsed: ParsedFile) -> list[Rejection]:
    """The records the codec refused, one quarantine entry each (its text as the payload)."""
    source = f"{parsed.mine_code}/files/{str(parsed.name).removesuffix('.txt')}"
    return [
        Rejection(
            source,
            QuarantineReason.INVALID_RECORD,
            f"record {p.index}: {p.reason}: {p.detail}",
            p.text.encode("utf-8"),
        )
        for p in parsed.problems
    ]


def _content(accepted: AcceptedFile) -> list[object]:
    parsed = accepted.parsed
    if not parsed.records and parsed.file_type not in _STORED_EVEN_EMPTY:
        return []
    match parsed.file_type:
        case FileType.CDSS:
            return list(cdss_messages(parsed))
        case FileType.CDDY | FileType.FZDY:
            cddy = parsed if parsed.file_type == FileType.CDDY else None
            fzdy = parsed if parsed.file_type == FileType.FZDY else None
            update = definition_update(cddy, fzdy)
            for problem in update.problems:
                log.warning("%s: point left out: %s", accepted.path.name, problem)
            return [MetaMessage(f"{parsed.mine_code}/files/{parsed.file_type}", update.definition)]
        case FileType.RYSS:
            return [ryss_batch(parsed)]
        case FileType.JZSS:
            return [jzss_batch(parsed)]
        case FileType.RYQJ:
            return [ryqj_batch(parsed), national_report(parsed)]
        case FileType.RYXX | FileType.RYQY | FileType.RYJZ:
            return [definition_part(parsed)]
    if parsed.file_type in REPORT_TABLES:
        return [national_report(parsed)]
    raise AssertionError(f"no ingestion for {parsed.file_type}")  # every FileType is handled


#: Types whose empty file still says something: a definition complete with no entries (an
#: RYSS file without people, i.e. nobody underground, is a snapshot too).
_STORED_EVEN_EMPTY = frozenset({
    FileType.CDDY, FileType.FZDY, FileType.RYXX, FileType.RYQY, FileType.RYJZ, FileType.RYSS,
})  # fmt: skip


class NationalFileSource(Source):
    def __init__(
        self,
        root: Path,
        config: InboxConfig | None = None,
        scan_s: float = 5.0,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        keep_copies: bool = False,
    ) -> None:
        """``keep_copies``: keep each accepted file byte for byte for the levels above (an
        installation with a name, docs/federation.md "National files up")."""
        self._root = root
        self._keep_copies = keep_copies
        self.config = config or InboxConfig()
        self._scan_s = scan_s
        self._clock = clock
        self.connected = asyncio.Event()

    async def deliveries(self) -> AsyncIterator[Delivery[Any]]:
        inbox = await asyncio.to_thread(Inbox, self._root, self.config)
        self.connected.set()
        loop = asyncio.get_running_loop()
        while True:
            result = await asyncio.to_thread(inbox.scan, self._clock())
            for rejected in result.rejected:
                log.warning("file refused: %s", rejected)
            for accepted in result.accepted:
                messages = file_messages(accepted, self._keep_copies)
                if not messages:
                    inbox.commit(accepted)
                    continue
                commit = _Commit(inbox, accepted, len(messages))
                for message in messages:
                    yield Delivery(message, commit.ack, loop.time(), commit.note_refused)
            await asyncio.sleep(self._scan_s)


class _Commit:
    """One acknowledgement per part: the file moves to ``done/`` with the last one, its reason
    file listing the readings validation refused. (The parts are acknowledged by tasks of one
    event loop, so no lock is needed.)"""

    def __init__(self, inbox: Inbox, accepted: AcceptedFile, parts: int) -> None:
        self._inbox = inbox
        self._accepted = accepted
        self._remaining = parts
        self._refused: list[str] = []

    def note_refused(self, rejections: list[Rejection]) -> None:
        self._refused += [f"{r.reason}: {r.detail}" for r in rejections]

    def ack(self) -> None:
        self._remaining -= 1
        if self._remaining == 0:
            self._inbox.commit(self._accepted, self._refused)


def create(gateway: GatewaySettings, context: SourceContext) -> NationalFileSource | None:
    """The registry's factory: the drop folder, if one is configured."""
    settings = NationalFileSettings.from_gateway(gateway)
    if settings is None:
        return None
    return NationalFileSource(
        settings.root, settings.inbox(), scan_s=settings.scan_s,
        keep_copies=gateway.installation is not None,
    )  # fmt: skip

"""The national TXT drop folder as a gateway source.

Every few seconds the inbox is scanned (``ingest/sources/national_files.py`` judges the files);
each accepted file becomes one delivery, acknowledged by moving the file to ``done/`` once its
content is durable: a crash before that leaves the file in ``inbox/`` to be read again, and the
per-file sequence makes the second reading a recognised duplicate.

- CDSS -> readings (:class:`~ingest.contract.SafetyMessage`);
- CDDY (or FZDY) -> the mine's definition (:class:`~ingest.contract.MetaMessage`);
- RYSS, JZSS, RYQJ (SOS) -> personnel feed batches, and RYXX, RYQY, RYJZ -> personnel
  definitions (people, areas, stations), which the gateway hands to the feed pipeline;
- other types are moved to ``rejected/`` with the reason that this version does not ingest them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from ingest.contract import MetaMessage
from ingest.feeds.national import definition_part, jzss_batch, ryqj_batch, ryss_batch
from ingest.sources.mqtt_json import Delivery
from ingest.sources.national_files import (
    AcceptedFile,
    Inbox,
    InboxConfig,
    cdss_messages,
    definition_update,
)
from minewatch.national import FileType

log = logging.getLogger(__name__)


def file_message(accepted: AcceptedFile) -> object | None:
    """What one accepted file becomes; None for a type that is not ingested."""
    parsed = accepted.parsed
    match parsed.file_type:
        case FileType.CDSS:
            messages = cdss_messages(parsed)
            return messages[0] if messages else None
        case FileType.CDDY | FileType.FZDY:
            cddy = parsed if parsed.file_type == FileType.CDDY else None
            fzdy = parsed if parsed.file_type == FileType.FZDY else None
            update = definition_update(cddy, fzdy)
            for problem in update.problems:
                log.warning("%s: point left out: %s", accepted.path.name, problem)
            return MetaMessage(f"{parsed.mine_code}/files/{parsed.file_type}", update.definition)
        case FileType.RYSS:
            return ryss_batch(parsed)
        case FileType.JZSS:
            return jzss_batch(parsed)
        case FileType.RYQJ:
            return ryqj_batch(parsed)
        case FileType.RYXX | FileType.RYQY | FileType.RYJZ:
            return definition_part(parsed)
    return None


class NationalFileSource:
    def __init__(
        self,
        root: Path,
        config: InboxConfig | None = None,
        scan_s: float = 5.0,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._root = root
        self._config = config or InboxConfig()
        self._scan_s = scan_s
        self._clock = clock
        self.connected = asyncio.Event()

    async def deliveries(self) -> AsyncIterator[Delivery[Any]]:
        inbox = await asyncio.to_thread(Inbox, self._root, self._config)
        self.connected.set()
        loop = asyncio.get_running_loop()
        while True:
            result = await asyncio.to_thread(inbox.scan, self._clock())
            for rejected in result.rejected:
                log.warning("file refused: %s", rejected)
            for accepted in result.accepted:
                message = file_message(accepted)
                if message is None:
                    inbox.set_aside(
                        accepted, f"{accepted.parsed.file_type} files are not ingested yet\n"
                    )
                    continue
                yield Delivery(message, _committer(inbox, accepted), loop.time())
            await asyncio.sleep(self._scan_s)


def _committer(inbox: Inbox, accepted: AcceptedFile) -> Callable[[], None]:
    def commit() -> None:
        inbox.commit(accepted)

    return commit

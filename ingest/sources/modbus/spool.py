"""A durable on-disk spool for sources whose peers keep nothing (Modbus devices).

What the poller reads is appended here (and fsynced) before anything else happens to it, so a
reading accepted from a device survives a gateway crash and a database outage of any length
the disk can hold. The pipeline reads the spool in order at its own pace and acknowledges each
record once it is durable in the database; segments whose records are all acknowledged are
removed. Acknowledgements are written without fsync: one lost in a crash only means that record
is read again, and the gateway's ``(boot, seq)`` watermark recognises it as a duplicate.

Layout: ``<dir>/<segment:08d>.log`` holds records ``[length u32][crc32 u32][payload]``;
``<dir>/<segment:08d>.ack`` holds the offsets (u64) of acknowledged records of that segment. A
torn last record (a crash mid-append) fails its length or CRC check and is cut off on open.
"""

from __future__ import annotations

import asyncio
import os
import struct
import zlib
from collections import deque
from dataclasses import dataclass
from pathlib import Path

_HEADER = struct.Struct("<II")
_OFFSET = struct.Struct("<Q")


class SpoolFull(Exception):
    """The spool holds ``max_bytes`` already: the source must pause."""


@dataclass(frozen=True, slots=True, order=True)
class RecordId:
    segment: int
    offset: int


class Spool:
    def __init__(self, directory: Path, *, segment_bytes: int = 64 << 20, max_bytes: int = 8 << 30):
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._segment_bytes = segment_bytes
        self._max_bytes = max_bytes
        self._unacked: dict[int, set[int]] = {}  # segment -> offsets not yet acknowledged
        self._sizes: dict[int, int] = {}
        self._read_queue: list[tuple[RecordId, bytes]] = []  # recovered on open, in order
        self.readable = asyncio.Event()
        self._recover()
        self._write_segment = max(self._sizes, default=-1) + 1
        self._writer = open(self._log(self._write_segment), "ab")  # noqa: SIM115 (lives with the spool)
        self._sizes[self._write_segment] = 0
        self._unacked[self._write_segment] = set()
        self._pending: deque[tuple[RecordId, bytes]] = deque(self._read_queue)
        if self._pending:
            self.readable.set()

    # -- files ------------------------------------------------------------------------------

    def _log(self, segment: int) -> Path:
        return self.directory / f"{segment:08d}.log"

    def _ack_file(self, segment: int) -> Path:
        return self.directory / f"{segment:08d}.ack"

    def _recover(self) -> None:
        for log in sorted(self.directory.glob("*.log")):
            segment = int(log.stem)
            acked = self._read_acks(segment)
            records, good_end = _read_records(log)
            if good_end < log.stat().st_size:
                with open(log, "r+b") as handle:  # a torn last append: cut it off
                    handle.truncate(good_end)
            self._sizes[segment] = good_end
            unacked = [(offset, payload) for offset, payload in records if offset not in acked]
            if not unacked:
                self._remove(segment)
                continue
            self._unacked[segment] = {offset for offset, _ in unacked}
            self._read_queue.extend((RecordId(segment, o), p) for o, p in unacked)

    def _read_acks(self, segment: int) -> set[int]:
        path = self._ack_file(segment)
        if not path.exists():
            return set()
        data = path.read_bytes()
        usable = len(data) - len(data) % _OFFSET.size
        return {o for (o,) in _OFFSET.iter_unpack(data[:usable])}

    def _remove(self, segment: int) -> None:
        self._log(segment).unlink(missing_ok=True)
        self._ack_file(segment).unlink(missing_ok=True)
        self._sizes.pop(segment, None)
        self._unacked.pop(segment, None)

    # -- writing ----------------------------------------------------------------------------

    @property
    def size_bytes(self) -> int:
        return sum(self._sizes.values())

    @property
    def unacked(self) -> int:
        """Records written and not yet acknowledged (stored): the spool's depth."""
        return sum(len(offsets) for offsets in self._unacked.values())

    def append(self, payload: bytes) -> RecordId:
        """Write and fsync one record; raises :class:`SpoolFull` beyond ``max_bytes``."""
        if self.size_bytes + len(payload) + _HEADER.size > self._max_bytes:
            raise SpoolFull(f"spool {self.directory} holds {self.size_bytes} bytes")
        if self._sizes[self._write_segment] >= self._segment_bytes:
            self._roll()
        offset = self._sizes[self._write_segment]
        self._writer.write(_HEADER.pack(len(payload), zlib.crc32(payload)) + payload)
        self._writer.flush()
        os.fsync(self._writer.fileno())
        self._sizes[self._write_segment] = offset + _HEADER.size + len(payload)
        record = RecordId(self._write_segment, offset)
        self._unacked[self._write_segment].add(offset)
        self._pending.append((record, payload))
        self.readable.set()
        return record

    def _roll(self) -> None:
        self._writer.close()
        done = self._write_segment
        self._write_segment += 1
        self._writer = open(self._log(self._write_segment), "ab")  # noqa: SIM115
        self._sizes[self._write_segment] = 0
        self._unacked[self._write_segment] = set()
        if not self._unacked.get(done):
            self._remove(done)

    # -- reading ----------------------------------------------------------------------------

    async def next(self) -> tuple[RecordId, bytes]:
        """The oldest record not yet handed out (waits for one)."""
        while not self._pending:
            self.readable.clear()
            await self.readable.wait()
        return self._pending.popleft()

    def ack(self, record: RecordId) -> None:
        """The record is durable downstream: forget it."""
        unacked = self._unacked.get(record.segment)
        if unacked is None or record.offset not in unacked:
            return
        unacked.discard(record.offset)
        with open(self._ack_file(record.segment), "ab") as handle:
            handle.write(_OFFSET.pack(record.offset))
        if not unacked and record.segment != self._write_segment:
            self._remove(record.segment)

    def close(self) -> None:
        self._writer.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_records(log: Path) -> tuple[list[tuple[int, bytes]], int]:
    """The intact records of a segment and where the intact part ends."""
    data = log.read_bytes()
    records: list[tuple[int, bytes]] = []
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, crc = _HEADER.unpack_from(data, offset)
        start = offset + _HEADER.size
        payload = data[start : start + length]
        if len(payload) < length or zlib.crc32(payload) != crc:
            break
        records.append((offset, payload))
        offset = start + length
    return records, offset

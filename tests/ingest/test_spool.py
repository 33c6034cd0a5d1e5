"""The on-disk spool: order, acknowledgement, recovery after a crash, bounds."""

from __future__ import annotations

from pathlib import Path

import pytest

from minewatch.ingest.sources.modbus.spool import Spool, SpoolFull

pytestmark = pytest.mark.anyio


async def test_records_come_back_in_order_and_acknowledged_ones_are_forgotten(
    tmp_path: Path,
) -> None:
    spool = Spool(tmp_path)
    ids = [spool.append(f"r{i}".encode()) for i in range(5)]  # closed below, like a crash
    got = [await spool.next() for _ in range(5)]
    assert [payload for _, payload in got] == [b"r0", b"r1", b"r2", b"r3", b"r4"]
    assert [record for record, _ in got] == ids
    for record in ids[:3]:
        spool.ack(record)
    spool.close()

    with Spool(tmp_path) as reopened:  # a crash: what was not acknowledged is read again
        assert [(await reopened.next())[1] for _ in range(2)] == [b"r3", b"r4"]


async def test_a_torn_last_record_is_cut_off_and_the_rest_survives(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(b"whole")
    spool.close()
    log = next(tmp_path.glob("*.log"))
    with open(log, "ab") as handle:
        handle.write(b"\x10\x00\x00\x00garbage")  # a crash in the middle of an append
    with Spool(tmp_path) as reopened:
        assert (await reopened.next())[1] == b"whole"
    assert log.stat().st_size == 8 + len(b"whole")


def test_fully_acknowledged_segments_are_removed(tmp_path: Path) -> None:
    with Spool(tmp_path, segment_bytes=64) as spool:
        ids = [spool.append(b"x" * 40) for _ in range(6)]  # two 48-byte records a segment
        assert len(list(tmp_path.glob("*.log"))) == 3
        for record in ids:
            spool.ack(record)
        assert len(list(tmp_path.glob("*.log"))) == 1  # only the segment being written


def test_a_full_spool_refuses_instead_of_growing(tmp_path: Path) -> None:
    with Spool(tmp_path, max_bytes=100) as spool:
        spool.append(b"y" * 50)
        with pytest.raises(SpoolFull):
            spool.append(b"y" * 50)

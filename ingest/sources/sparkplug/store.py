"""The repository of stored births (table ``sparkplug_births``, migration 0009): the one module
of this package that does I/O, used by the MQTT adapter (:mod:`.adapter`).

Births are written before the readings of their message are handed to the gateway, on a
connection of their own with the same retries as the pipeline's writers; they are read back,
with each source's committed watermark, when the adapter starts.
"""

from __future__ import annotations

import datetime as dt
import logging

import psycopg

from minewatch.ingest.durable import DurableWriter
from minewatch.ingest.sources.sparkplug.births import BirthRecord, StoredBirth

log = logging.getLogger(__name__)

_SELECT = (
    "SELECT b.source, b.mine_code, b.edge_node, b.device, b.bd_seq, b.boot, b.node_boot, "
    "b.born_at, b.alive, b.metrics, w.boot, w.seq "
    "FROM sparkplug_births b LEFT JOIN source_watermarks w ON w.source = b.source "
    "WHERE b.mine_code = ANY(%(mines)s)"
)
_UPSERT = (
    "INSERT INTO sparkplug_births (source, mine_code, edge_node, device, bd_seq, boot, "
    "node_boot, born_at, alive, metrics) VALUES (%(source)s, %(mine)s, %(edge_node)s, "
    "%(device)s, %(bd_seq)s, %(boot)s, %(node_boot)s, %(born_at)s, %(alive)s, %(metrics)s) "
    "ON CONFLICT (source) DO UPDATE SET mine_code = EXCLUDED.mine_code, "
    "edge_node = EXCLUDED.edge_node, device = EXCLUDED.device, bd_seq = EXCLUDED.bd_seq, "
    "boot = EXCLUDED.boot, node_boot = EXCLUDED.node_boot, born_at = EXCLUDED.born_at, "
    "alive = EXCLUDED.alive, metrics = EXCLUDED.metrics, updated_at = now()"
)


class BirthStore(DurableWriter):
    """Loads and saves :class:`BirthRecord` rows; transient database errors are retried."""

    async def __aenter__(self) -> BirthStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._close()

    async def load(self, mines: list[str]) -> list[StoredBirth]:
        async def attempt(conn: psycopg.AsyncConnection) -> list[StoredBirth]:
            async with conn.transaction():
                cur = await conn.execute(_SELECT, {"mines": mines})
                rows = await cur.fetchall()
            return [_stored(row) for row in rows]

        return await self._retrying(attempt)

    async def save(self, records: list[BirthRecord]) -> None:
        if not records:
            return

        async def attempt(conn: psycopg.AsyncConnection) -> None:
            async with conn.transaction(), conn.cursor() as cur:
                await cur.executemany(_UPSERT, [_params(r) for r in records])

        await self._retrying(attempt)


def _params(record: BirthRecord) -> dict[str, object]:
    return {
        "source": record.source,
        "mine": record.group,
        "edge_node": record.edge_node,
        "device": record.device,
        "bd_seq": record.bd_seq,
        "boot": record.boot,
        "node_boot": record.node_boot,
        "born_at": dt.datetime.fromtimestamp(record.born_ms / 1000, dt.UTC),
        "alive": record.alive,
        "metrics": record.metrics_json().decode(),
    }


def _stored(row: tuple[object, ...]) -> StoredBirth:
    source, mine, edge, device, bd_seq, boot, node_boot, born_at, alive, metrics, wb, ws = row
    assert isinstance(born_at, dt.datetime)
    record = BirthRecord(
        source=str(source),
        group=str(mine),
        edge_node=str(edge),
        device=None if device is None else str(device),
        bd_seq=int(bd_seq),  # type: ignore[call-overload]
        boot=int(boot),  # type: ignore[call-overload]
        node_boot=int(node_boot),  # type: ignore[call-overload]
        born_ms=round(born_at.timestamp() * 1000),
        metrics=BirthRecord.metrics_from_json(metrics),
        alive=bool(alive),
    )
    watermark = None if wb is None else (int(wb), int(ws))  # type: ignore[call-overload]
    return StoredBirth(record, watermark)

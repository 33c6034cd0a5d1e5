"""The audit log (append-only, migration 0013): who did what, when, from where; and the
queries of it that regulators and admins make."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from minewatch.alarms.lifecycle import Action, Recorder, Row
from minewatch.api.accounts import Identity


async def record(
    conn: AsyncConnection, identity: Identity, client_addr: str, action: str,
    mine_code: str | None, alarm_id: int | None, detail: dict[str, object],
) -> None:  # fmt: skip
    """Append one record, in the caller's transaction (it fails with it)."""
    await conn.execute(
        "INSERT INTO audit_log (actor, actor_role, client_addr, action, mine_code, alarm_id, "
        "detail) VALUES (%(actor)s, %(role)s, %(addr)s, %(action)s, %(mine)s, %(alarm)s, "
        "%(detail)s)",
        {"actor": identity.actor, "role": identity.role.value, "addr": client_addr,
         "action": action, "mine": mine_code, "alarm": alarm_id, "detail": Jsonb(detail)},
    )  # fmt: skip


def lifecycle_recorder(identity: Identity, client_addr: str) -> Recorder:
    """The audit hook of a lifecycle step taken by ``identity``."""

    async def write(conn: AsyncConnection, action: Action, alarm: Row, detail: Row) -> None:
        await record(
            conn, identity, client_addr, action.value, str(alarm["mine_code"]),
            int(alarm["id"]), detail,  # type: ignore[call-overload]
        )  # fmt: skip

    return write


@dataclass(frozen=True, slots=True)
class AuditFilter:
    scope: str | None  # prefix of mine codes the caller sees; None: everything
    mine: str | None = None
    alarm_id: int | None = None
    action: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    limit: int = 100
    offset: int = 0


_FILTER = """
FROM audit_log
WHERE (%(scope)s::text IS NULL OR starts_with(mine_code, %(scope)s))
  AND (%(mine)s::text IS NULL OR mine_code = %(mine)s)
  AND (%(alarm)s::bigint IS NULL OR alarm_id = %(alarm)s)
  AND (%(action)s::text IS NULL OR action = %(action)s)
  AND (%(since)s::timestamptz IS NULL OR at >= %(since)s)
  AND (%(until)s::timestamptz IS NULL OR at < %(until)s)
"""


async def search(conn: AsyncConnection, where: AuditFilter) -> tuple[int, list[Row]]:
    """(total matching, one page newest first). Records of no mine (sign-ins, cross-mine
    lists) are seen only by a caller without scope."""
    params = {"scope": where.scope, "mine": where.mine, "alarm": where.alarm_id,
              "action": where.action, "since": where.since, "until": where.until,
              "limit": where.limit, "offset": where.offset}  # fmt: skip
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute("SELECT count(*)::int AS n " + _FILTER, params)
    total = await cur.fetchone()
    await cur.execute(
        "SELECT id, at, actor, actor_role, client_addr, action, mine_code, alarm_id, detail "
        + _FILTER + " ORDER BY id DESC LIMIT %(limit)s OFFSET %(offset)s",
        params,
    )  # fmt: skip
    return int(total["n"]) if total else 0, await cur.fetchall()

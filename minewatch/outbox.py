"""Durable positions of the outbox publishers (migration 0024): how far in a numbered log
(``alarm_changes``, the statistics' ``change_seq``) a publisher has had the broker acknowledge
what it sent."""

from __future__ import annotations

import psycopg


async def read_position(conn: psycopg.AsyncConnection, name: str, start: str) -> int:
    """The position of the outbox publisher ``name`` (migration 0024); a new one starts at
    the value of the SQL expression ``start`` (its log's newest number): what was numbered
    before it first ran is not its to send."""
    cur = await conn.execute(
        "INSERT INTO outbox_positions (name, position) SELECT %s, " + start + " "
        "ON CONFLICT (name) DO NOTHING",
        (name,),
    )
    cur = await conn.execute("SELECT position FROM outbox_positions WHERE name = %s", (name,))
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def write_position(conn: psycopg.AsyncConnection, name: str, position: int) -> None:
    await conn.execute(
        "UPDATE outbox_positions SET position = %s, updated_at = now() WHERE name = %s",
        (position, name),
    )

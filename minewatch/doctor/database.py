"""Checks of the database: TimescaleDB, migrations, clocks, retention, replicas, disk."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import psycopg

from minewatch.db import migration_files
from minewatch.doctor.findings import Finding, fail, ok, warn

#: by_range() dimensions (migration 0001) need TimescaleDB 2.13
TIMESCALEDB_MINIMUM = (2, 13)
CLOCK_TOLERANCE_S = 5.0
MINE_CLOCK_TOLERANCE_S = 60.0
REPLICA_LAG_S = 60.0


def period(value: dt.timedelta) -> str:
    """A retention period in words: ``7 days``, ``400 days``, ``36 hours``."""
    if value.seconds == 0:
        return f"{value.days} day" + ("" if value.days == 1 else "s")
    return f"{value.total_seconds() / 3600:g} hours"


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("-")[0].split(".") if p.isdigit())


def timescaledb(conn: psycopg.Connection) -> Finding:
    row = conn.execute(
        "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
    ).fetchone()
    if row is None:
        return fail("TimescaleDB", "the extension is not installed in this database")
    if _version(row[0]) < TIMESCALEDB_MINIMUM:
        need = ".".join(map(str, TIMESCALEDB_MINIMUM))
        return fail("TimescaleDB", f"version {row[0]} is older than {need}, which minewatch needs")
    return ok("TimescaleDB", f"version {row[0]}")


def migrations(conn: psycopg.Connection) -> Finding:
    try:
        done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
    except psycopg.errors.UndefinedTable:
        conn.rollback()
        return fail("schema", "no minewatch schema: run `minewatch migrate`")
    missing = [v for v, _ in migration_files() if v not in done]
    if missing:
        return warn("schema", f"{len(missing)} migration(s) not applied ({missing[0]}...): "
                              "run `minewatch migrate`")  # fmt: skip
    return ok("schema", f"all {len(done)} migrations applied")


def clocks(conn: psycopg.Connection, now: dt.datetime) -> list[Finding]:
    out: list[Finding] = []
    row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    apart = abs((row[0] - now).total_seconds())
    if apart > CLOCK_TOLERANCE_S:
        out.append(warn("clocks", f"the database server's clock is {apart:.0f} s away from this "
                                  "machine's: synchronise both (chrony/NTP)"))  # fmt: skip
    rows = conn.execute(
        "SELECT p.mine_code, max(r.time) FROM readings r JOIN points p ON p.id = r.point_id"
        " WHERE r.time > now() - INTERVAL '1 hour' GROUP BY 1"
    ).fetchall()
    for mine, latest in rows:
        ahead = (latest - row[0]).total_seconds()
        if ahead > MINE_CLOCK_TOLERANCE_S:
            out.append(warn("clocks", f"mine {mine} stamps readings {ahead:.0f} s in the future: "
                                      "its clock is ahead of the server's"))  # fmt: skip
    refused = conn.execute(
        "SELECT count(*) FROM quarantine WHERE reason = 'time_in_future'"
        " AND received_at > now() - INTERVAL '1 day'"
    ).fetchone()
    if refused and refused[0]:
        out.append(fail("clocks", f"{refused[0]} message(s) refused in the last day as stamped "
                                  "in the future: a mine's clock is ahead"))  # fmt: skip
    return out or [ok("clocks", "server and mines agree")]


#: The mine's national files past their table's keep that a publisher has not sent up yet (and
#: that retention therefore keeps, migration 0039), per publisher.
_HELD_BACK = """
SELECT o.name, o.position, o.updated_at, p.keep, count(*)
FROM retention_policies p
JOIN outbox_positions o ON starts_with(o.name, p.outbox || ':')
JOIN national_files f ON f.stored_at < now() - p.keep AND f.seq > o.position
WHERE p.hypertable = 'national_files'
GROUP BY 1, 2, 3, 4 ORDER BY 1
"""


def held_back(conn: psycopg.Connection) -> list[Finding]:
    """National files that retention keeps because a publisher has not sent them: a publisher
    that no longer runs (its client id changed) holds every file back for ever."""
    try:
        rows = conn.execute(_HELD_BACK).fetchall()
    except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn):
        conn.rollback()  # before migration 0039: the schema check says so
        return []
    return [
        warn("retention", f"{count} national file(s) older than {period(keep)} are kept: the "
                          f"publisher {name} has not sent them up (position {position}, last "
                          f"moved {moved:%Y-%m-%d %H:%M %Z}); if it no longer runs, delete its "
                          "row of outbox_positions")
        for name, position, moved, keep, count in rows
    ]  # fmt: skip


def retention(conn: psycopg.Connection, now: dt.datetime, interval_s: float) -> list[Finding]:
    out: list[Finding] = held_back(conn)
    for table, keep, floor in conn.execute(
        "SELECT hypertable, keep, floor FROM retention_policies WHERE keep < floor"
    ).fetchall():
        out.append(warn("retention", f"{table} is kept {period(keep)}, less than the "
                                     f"{period(floor)} that AQ 6201 asks for"))  # fmt: skip
    chunks = conn.execute(
        "SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'readings'"
    ).fetchone()
    last = conn.execute("SELECT max(rolled_at) FROM rollup_chunks").fetchone()
    if chunks and chunks[0]:
        late = dt.timedelta(seconds=max(3 * interval_s, 300))
        if last is None or last[0] is None:
            out.append(fail("retention", "retention and statistics have never run on this "
                                         "database: run `minewatch gateway` or "
                                         "`minewatch maintenance`"))  # fmt: skip
        elif now - last[0] > late:
            ago = (now - last[0]).total_seconds() / 60
            out.append(fail("retention", f"retention and statistics last ran {ago:.0f} min ago: "
                                         "the maintenance task is not running"))  # fmt: skip
    return out or [ok("retention", "running, every table at or above its floor")]


def replicas(conn: psycopg.Connection) -> Finding:
    rows = conn.execute(
        "SELECT application_name, extract(epoch FROM replay_lag) FROM pg_stat_replication"
    ).fetchall()
    if not rows:
        return ok("replica", "no streaming replica attached")
    lagging = [(name, lag) for name, lag in rows if lag is not None and lag > REPLICA_LAG_S]
    if lagging:
        name, lag = lagging[0]
        return warn("replica", f"replica {name} is {lag:.0f} s behind")
    return ok("replica", f"{len(rows)} replica(s) within {REPLICA_LAG_S:.0f} s")


def disk(paths: list[Path], warn_at: float = 0.80, fail_at: float = 0.90) -> list[Finding]:
    out: list[Finding] = []
    for path in paths:
        try:
            usage = shutil.disk_usage(path)
        except OSError:  # not on this machine, or not ours to look at
            continue
        used = 1 - usage.free / usage.total
        text = f"{path}: {used:.0%} used, {usage.free / 2**30:.1f} GiB free"
        if used >= fail_at:
            out.append(fail("disk", text + ": nearly full, the database stops when it is"))
        elif used >= warn_at:
            out.append(warn("disk", text))
        else:
            out.append(ok("disk", text))
    return out


def data_directory(conn: psycopg.Connection) -> Path | None:
    """The server's data directory when it is on this machine and we may read the setting."""
    try:
        row = conn.execute("SELECT current_setting('data_directory')").fetchone()
    except psycopg.errors.InsufficientPrivilege:
        conn.rollback()
        return None
    return Path(row[0]) if row else None


def database_findings(url: str, now: dt.datetime, interval_s: float) -> list[Finding]:
    try:
        conn = psycopg.connect(url, connect_timeout=5)
    except psycopg.OperationalError as error:
        return [fail("database", f"cannot connect: {str(error).strip().splitlines()[0]}")]
    with conn:
        out = [ok("database", "reachable"), timescaledb(conn), migrations(conn)]
        if out[-1].message.startswith("no minewatch schema"):
            return out
        out += clocks(conn, now)
        out += retention(conn, now, interval_s)
        out.append(replicas(conn))
        directory = data_directory(conn)
        out += disk([directory] if directory is not None else [])
    return out

"""Two mines in different jurisdictions, accounts and keys of each role, for scope tests.

Mine A is the small example mine (141024010001: Shanxi 14, Xinzhou 1410, county 141024);
mine B (620102000001) is in Gansu. The dispatcher's scope is mine A, the regulator's the city
1410 (so A and not B), the admin's everything.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import psycopg

from minewatch.api.accounts import Hasher, Role, add_account
from minewatch.metadata import upsert_mine
from minewatch.simulators.config import example_mine_path, load_mine_config
from minewatch.simulators.model import SimulatedMine
from tests.helpers import api_key

MINE_B = "620102000001"
PASSWORD = "correct horse battery"
SCOPES = {Role.DISPATCHER: "141024010001", Role.REGULATOR: "1410", Role.ADMIN: None}


@dataclass(frozen=True)
class Mine:
    code: str
    point_id: int
    point_code: str
    alarm_id: int  # an open red power_off alarm


@dataclass(frozen=True)
class World:
    a: Mine
    b: Mine
    keys: dict[Role, str]  # API key per role
    usernames: dict[Role, str]  # a person per role, password PASSWORD


def _alarm(conn: psycopg.Connection, point_id: int) -> int:
    row = conn.execute(
        "INSERT INTO alarms (mine_code, point_id, rule, abnormal_type, classification, "
        "started_at, raised_at, start_value, max_value, max_at, min_value, min_at, "
        "value_sum, value_count) SELECT mine_code, id, 'power_off', '001', 'exceedance', "
        "now() - interval '10 s', now() - interval '10 s', 1.6, 1.6, now(), 1.6, now(), 1.6, 1 "
        "FROM points WHERE id = %s RETURNING id",
        (point_id,),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _load(conn: psycopg.Connection, definition) -> Mine:  # type: ignore[no-untyped-def]
    upsert_mine(conn, definition)
    point = definition.points[1]
    row = conn.execute(
        "SELECT id FROM points WHERE mine_code = %s AND code = %s",
        (definition.mine.code, point.code),
    ).fetchone()
    assert row is not None
    return Mine(definition.mine.code, int(row[0]), point.code, _alarm(conn, int(row[0])))


def national_file_of(mine: str) -> tuple[str, bytes]:
    """The name and bytes of the national file :func:`build_world` stores for ``mine``."""
    stamp = "2026-03-01 00:00:00"
    text = f"{mine};测试煤矿;{stamp}~01;0;1;{stamp}~||"
    return f"{mine}_FZSS_20260301000000.txt", text.encode()


async def build_world(database_url: str) -> World:
    small = SimulatedMine(load_mine_config(example_mine_path("small"))).definition
    other = small.model_copy(
        update={
            "mine": small.mine.model_copy(update={"code": MINE_B, "name": "Gansu test mine"}),
            "points": tuple(p.model_copy(update={"area_code": None}) for p in small.points),
        }
    )
    with psycopg.connect(database_url) as conn:
        a, b = _load(conn, small), _load(conn, other)
        for mine in (a, b):  # a national file each, as received from below (migration 0032)
            name, content = national_file_of(mine.code)
            conn.execute(
                "INSERT INTO federated_national_files (source, seq, mine_code, name, file_type, "
                "uploaded_at, sha256, content) VALUES (%s, 1, %s, %s, 'FZSS', "
                "'2026-03-01T00:00:00+08:00', %s, %s)",
                (f"mine-{mine.code}", mine.code, name, hashlib.sha256(content).hexdigest(),
                 content),
            )  # fmt: skip
    keys = {role: await api_key(database_url, role, scope) for role, scope in SCOPES.items()}
    usernames = {role: f"{role}1" for role in Role}
    hasher = Hasher(1, 1024)
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        for role, scope in SCOPES.items():
            await add_account(conn, hasher, usernames[role], PASSWORD, role, scope)
    return World(a, b, keys, usernames)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}

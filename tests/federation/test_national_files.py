"""The national files go up in ``alarms`` mode (docs/federation.md "National files up"): a file
the mine's drop folder accepted reaches the province once, byte for byte, under its name and
the mine's (source, seq), through a restart of the province's broker and a resend of all of
them; the province's API lists it and serves its bytes."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import uuid
from pathlib import Path

import aiomqtt
import httpx
import psycopg
import pytest

from minewatch.broker_auth import Account, Role, login_options
from minewatch.embedded import PostgresServer, broker_accounts
from minewatch.federation import BridgeLogin, Hierarchy, bridge_config, link_account
from minewatch.ingest.summary_store import SUMMARY_SUBSCRIPTIONS
from minewatch.national import ParsedFile, parse_file
from tests.federation.stacks import Broker, fresh_database
from tests.helpers import eventually, running_api, running_gateway

pytestmark = pytest.mark.anyio

MINE = "141024010091"
SOURCE = f"mine-{MINE}"
CHINA = dt.timezone(dt.timedelta(hours=8))


def _file(minutes_ago: int, states: str) -> tuple[str, bytes]:
    """An FZSS file as a vendor writes it: CRLF between records (read, and kept as written)."""
    t = (dt.datetime.now(CHINA) - dt.timedelta(minutes=minutes_ago)).replace(microsecond=0)
    stamp = t.strftime("%Y-%m-%d %H:%M:%S")
    records = "".join(f"{n:02d};{state};1;{stamp}~\r\n" for n, state in enumerate(states, 1))
    name = f"{MINE}_FZSS_{t:%Y%m%d%H%M%S}.txt"
    data = f"{MINE};测试煤矿;{stamp}~\r\n{records}||".encode()
    assert isinstance(parse_file(name, data), ParsedFile)
    return name, data


def _stored(url: str) -> dict[str, tuple[str, int, bytes, str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT name, source, seq, content, sha256 FROM federated_national_files "
            "WHERE mine_code = %s",
            (MINE,),
        ).fetchall()
    return {name: (source, seq, bytes(content), sha) for name, source, seq, content, sha in rows}


def _scalar(url: str, sql: str) -> object:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return row[0]


async def test_a_file_received_at_the_mine_reaches_the_province_once_byte_for_byte(
    private_dir: Path, pg_server: PostgresServer, unique_id: str
) -> None:
    suffix = f"{os.getpid()}_{uuid.uuid4().hex[:12]}"
    mine_db = fresh_database(pg_server, f"fedfiles_m_{suffix}")
    province_db = fresh_database(pg_server, f"fedfiles_p_{suffix}")
    up_accounts = broker_accounts(private_dir / "province")
    mine_accounts = broker_accounts(private_dir / "mine")
    for accounts in (up_accounts, mine_accounts):
        accounts.directory.mkdir(mode=0o755)
    province = Broker(up_accounts.directory, up_accounts)
    hierarchy = Hierarchy.model_validate({
        "queue": {"outage_hours": 2, "messages_per_s": 20},
        "installation": [
            {"name": "province", "broker": f"mqtt://127.0.0.1:{province.port}"},
            {"name": SOURCE, "parent": "province", "mines": [MINE], "up": "alarms"},
        ],
    })  # fmt: skip
    up_gateway = up_accounts.add(Account("gateway", Role.GATEWAY))
    link = up_accounts.add(link_account(hierarchy, SOURCE))
    mine_gateway = mine_accounts.add(Account("gateway", Role.GATEWAY))
    bridge = bridge_config(hierarchy, SOURCE, BridgeLogin(link.username, link.password),
                           restart_timeout=(1, 2))  # fmt: skip
    assert f"topic minewatch/v1/{MINE}/files out 1" in bridge
    mine = Broker(mine_accounts.directory, mine_accounts, bridge)
    root = private_dir / "drop"
    (root / "inbox").mkdir(parents=True)
    files: dict[str, bytes] = {}

    def drop(name: str, data: bytes) -> None:
        (root / "inbox" / f".{name}").write_bytes(data)  # hidden while written
        (root / "inbox" / f".{name}").rename(root / "inbox" / name)
        files[name] = data

    def arrived() -> bool:
        stored = _stored(province_db)
        return {name: row[2] for name, row in stored.items()} == files

    province.start()
    mine.start()
    up_client = f"gw-province-{unique_id}"
    # the province gateway's summary session exists before anything is sent up (the broker
    # keeps for it what arrives before the gateway has subscribed)
    async with aiomqtt.Client(
        "127.0.0.1", province.port, identifier=f"{up_client}-summaries", clean_session=False,
        **login_options(province.url(up_gateway)),
    ) as session:  # fmt: skip
        for topic in SUMMARY_SUBSCRIPTIONS:
            await session.subscribe(topic, qos=1)
    try:
        async with (
            running_gateway(province_db, province.url(up_gateway), up_client,
                            installation="province", publish_alarms=False),
            running_gateway(mine_db, mine.url(mine_gateway), f"gw-mine-{unique_id}",
                            installation=SOURCE, publish_alarms=False, files_root=root,
                            files_scan_s=0.2),
        ):  # fmt: skip
            drop(*_file(30, "01"))
            await eventually(arrived, limit_s=60)

            # The province's broker is away: the mine's files wait in its broker's queue.
            province.stop()
            drop(*_file(20, "12"))
            drop(*_file(10, "019"))
            await eventually(lambda: _scalar(mine_db, "SELECT count(*) FROM national_files")
                             == 3)  # fmt: skip
            province.start()
            await eventually(arrived, limit_s=60)

            # Everything sent again: the mine's publisher loses its position while its broker
            # (and so the bridge) restarts; then one file more, behind the resent ones.
            mine.stop()
            with psycopg.connect(mine_db) as conn:
                conn.execute("UPDATE outbox_positions SET position = 0 "
                             "WHERE name LIKE 'national-files:%'")  # fmt: skip
            mine.start()
            drop(*_file(5, "1"))
            await eventually(arrived, limit_s=60)
            await eventually(
                lambda: _scalar(mine_db, "SELECT position FROM outbox_positions "
                                "WHERE name LIKE 'national-files:%'") == 4
            )  # fmt: skip

        stored = _stored(province_db)
        assert {name: row[2] for name, row in stored.items()} == files  # byte for byte
        with psycopg.connect(mine_db) as conn:
            numbered = dict(conn.execute("SELECT name, seq FROM national_files").fetchall())
        assert {name: (row[0], row[1]) for name, row in stored.items()} == {
            name: (SOURCE, numbered[name]) for name in files
        }
        assert sorted(numbered.values()) == [1, 2, 3, 4]
        assert all(row[3] == hashlib.sha256(row[2]).hexdigest() for row in stored.values())
        assert _scalar(province_db, "SELECT count(*) FROM federated_national_files") == 4
        assert _scalar(province_db, "SELECT count(*) FROM quarantine") == 0
        # in the mine's done/ as they came
        assert {p.name: p.read_bytes() for p in (root / "done").glob("*.txt")} == files

        # A regulator at the province lists the mine's files and takes one, byte for byte.
        name = min(files)
        async with running_api(province_db) as base, httpx.AsyncClient(base_url=base) as api:
            listed = (await api.get(f"/api/v1/mines/{MINE}/national-files")).json()
            assert [row["name"] for row in listed] == sorted(files, reverse=True)
            assert {row["source"] for row in listed} == {SOURCE}
            assert listed[-1]["size"] == len(files[name])
            fzss = await api.get(f"/api/v1/mines/{MINE}/national-files", params={"type": "CDSS"})
            assert fzss.json() == []
            got = await api.get(f"/api/v1/mines/{MINE}/national-files/{name}")
            assert got.status_code == 200
            assert got.content == files[name]
            assert got.headers["etag"] == f'"{hashlib.sha256(files[name]).hexdigest()}"'
            missing = await api.get(f"/api/v1/mines/{MINE}/national-files/{MINE}_FZSS_"
                                    "20200101000000.txt")  # fmt: skip
            assert missing.status_code == 404
    finally:
        for broker in (mine, province):
            if broker.running:
                broker.stop()

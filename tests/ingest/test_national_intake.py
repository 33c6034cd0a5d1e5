"""What the drop folder keeps: a late file is stored and flagged late, never refused for its
age alone (an age limit is a setting, off by default); a file with bad records stores every
good record and puts each bad one in the quarantine table; a reading the database side refuses
(an unknown point code) is listed in the file's reason file in done/ as well."""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from minewatch.ingest.sources.base import SourceContext
from minewatch.ingest.sources.national import adapter as national
from minewatch.ingest.sources.national.adapter import NationalFileSource
from minewatch.ingest.sources.national.inbox import Inbox, InboxConfig, InboxReason
from minewatch.ingest.sources.national.settings import NationalFileSettings
from minewatch.metadata import MineDefinition, upsert_mine
from minewatch.national import CHINA_TZ, CdssRecord, FileType, Header, encode_file
from minewatch.settings import GatewaySettings
from minewatch.simulators.config import example_mine_path, load_mine_config
from minewatch.simulators.model import SimulatedMine
from tests.helpers import eventually, running_gateway, scalar

MINE = "620823009203"
NOW = dt.datetime(2026, 9, 23, 10, 15, 0, tzinfo=CHINA_TZ)
BAD = Decimal("7.77")  # a marker value, replaced by a non-number in the file's bytes


def _cdss(mine: str, codes: list[str], upload: dt.datetime, bad: int = 0) -> tuple[str, bytes]:
    values = [Decimal("0.42")] * len(codes) + [BAD] * bad
    codes = codes + codes[:1] * bad
    records = [CdssRecord(c, "", "", v, "", 0, upload) for c, v in zip(codes, values, strict=True)]
    name, data = encode_file(Header(FileType.CDSS, mine, "", upload), records)
    return name, data.replace(f";{BAD};".encode(), b";x;")


def _drop(inbox: Path, name: str, data: bytes, at: dt.datetime) -> None:
    path = inbox / name
    path.write_bytes(data)
    os.utime(path, (at.timestamp() - 5, at.timestamp() - 5))


def test_a_late_file_is_accepted_and_flagged_late_not_refused(tmp_path: Path) -> None:
    inbox = Inbox(tmp_path)  # the defaults: no age limit
    name, data = _cdss(MINE, ["0101A01"], NOW - dt.timedelta(days=2))
    _drop(inbox.inbox, name, data, NOW)
    result = inbox.scan(NOW)
    assert result.rejected == []
    (accepted,) = result.accepted
    inbox.commit(accepted)
    assert (inbox.done / name).read_bytes() == data
    reason = (inbox.done / f"{name}.reason.txt").read_text(encoding="utf-8")
    assert reason.startswith("reason: late_upload\n")
    assert "older than 86400 s" in reason


def test_the_age_limit_is_a_setting_off_by_default(tmp_path: Path) -> None:
    assert GatewaySettings().files_max_age_s is None
    assert InboxConfig().max_age_s is None
    limited = GatewaySettings(files_root=tmp_path, files_max_age_s=3600)
    settings = NationalFileSettings.from_gateway(limited)
    assert settings is not None and settings.inbox().max_age_s == 3600
    source = national.create(limited, SourceContext("mqtt://127.0.0.1:1"))
    assert isinstance(source, NationalFileSource) and source.config.max_age_s == 3600


def test_a_refused_file_can_be_dropped_again_and_is_judged_again(tmp_path: Path) -> None:
    inbox = Inbox(tmp_path, InboxConfig(max_age_s=3600))
    name, data = _cdss(MINE, ["0101A01"], NOW - dt.timedelta(hours=2))
    _drop(inbox.inbox, name, data, NOW)
    (refused,) = inbox.scan(NOW).rejected
    assert refused.reason == InboxReason.STALE
    again = Inbox(tmp_path, InboxConfig())  # the operator lifted the limit
    os.replace(refused.path, again.inbox / name)
    (accepted,) = again.scan(NOW).accepted
    assert accepted.path.name == name


@pytest.fixture
def mine(database_url: str) -> MineDefinition:
    definition = SimulatedMine(load_mine_config(example_mine_path("small"))).definition
    with psycopg.connect(database_url) as conn:
        upsert_mine(conn, definition)
    return definition


def _codes(definition: MineDefinition) -> list[str]:
    return [p.code for p in definition.points if p.substation == "001"]


def _quarantined(database_url: str) -> list[tuple[str, str, str]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT source, reason, detail FROM quarantine ORDER BY source, id"
        ).fetchall()
    return [(str(s), str(r), str(d)) for s, r, d in rows]


@pytest.mark.anyio
@pytest.mark.parametrize("good", [3, 4], ids=["1-bad-of-4", "1-bad-of-5"])
async def test_a_file_with_bad_records_stores_every_good_record_and_quarantines_each_bad_one(
    database_url: str, mqtt_url: str, unique_id: str, mine: MineDefinition, tmp_path: Path,
    good: int,
) -> None:  # fmt: skip
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    name, data = _cdss(mine.mine.code, _codes(mine)[:good], now - dt.timedelta(minutes=1), bad=1)
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / name).write_bytes(data)
    source = NationalFileSource(tmp_path, scan_s=0.1)
    async with running_gateway(database_url, mqtt_url, f"gw-{unique_id}", [source]):
        await eventually(lambda: (tmp_path / "done" / name).exists())
    assert scalar(database_url, "SELECT count(*) FROM readings") == good
    ((where, reason, detail),) = _quarantined(database_url)
    assert where == f"{mine.mine.code}/files/{name.removesuffix('.txt')}"
    assert reason == "invalid_record"
    assert detail.startswith(f"record {good}: invalid_number: ")
    listed = (tmp_path / "done" / f"{name}.reason.txt").read_text(encoding="utf-8")
    assert f"record {good}: invalid_number" in listed


@pytest.mark.anyio
async def test_a_record_with_an_unknown_point_code_leaves_a_reason_file_in_done(
    database_url: str, mqtt_url: str, unique_id: str, mine: MineDefinition, tmp_path: Path
) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    codes = [*_codes(mine)[:2], "9999Z99"]
    name, data = _cdss(mine.mine.code, codes, now - dt.timedelta(minutes=1))
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / name).write_bytes(data)
    source = NationalFileSource(tmp_path, scan_s=0.1)
    async with running_gateway(database_url, mqtt_url, f"gw-{unique_id}", [source]):
        await eventually(lambda: (tmp_path / "done" / name).exists())
    assert scalar(database_url, "SELECT count(*) FROM readings") == 2
    assert [r for _, r, _ in _quarantined(database_url)] == ["unknown_point"]
    listed = (tmp_path / "done" / f"{name}.reason.txt").read_text(encoding="utf-8")
    assert "unknown_point" in listed and "9999Z99" in listed

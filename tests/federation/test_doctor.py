"""`minewatch doctor` says in plain words what loses data: broker settings, an open broker,
TimescaleDB, clocks, retention that does not run."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import psycopg
import pytest

from minewatch.broker_accounts import BrokerAccounts
from minewatch.broker_auth import Account, Role
from minewatch.doctor import Level
from minewatch.doctor.broker import broker_findings
from minewatch.doctor.broker_config import findings, parse, read_config
from minewatch.doctor.database import database_findings
from minewatch.embedded import broker_accounts, embedded_mosquitto, mosquitto_config
from minewatch.federation import BridgeLogin, Hierarchy, bridge_config
from minewatch.ingest.maintenance import Maintenance
from minewatch.settings import RetentionSettings, Settings


def _levels(items: list) -> dict[str, set[Level]]:
    out: dict[str, set[Level]] = {}
    for item in items:
        out.setdefault(item.check, set()).add(item.level)
    return out


def _failing(items: list) -> list[str]:
    return [f"{i.check}: {i.message}" for i in items if i.level is Level.FAIL]


def test_mosquitto_defaults_are_named_as_losing_data_and_letting_anyone_in() -> None:
    found = findings(parse(["listener 1883", "allow_anonymous true"]))
    failing = _failing(found)
    assert any("persistence is off" in f for f in failing)
    assert any("max_queued_messages is 1000" in f for f in failing)
    assert any("allow_anonymous true" in f for f in failing)


def test_the_embedded_broker_and_the_bridge_minewatch_writes_pass(tmp_path: Path) -> None:
    hierarchy = Hierarchy.model_validate({"installation": [
        {"name": "city", "broker": "mqtts://city.example:8883", "ca_file": "/ca.crt"},
        {"name": "mine", "parent": "city", "mines": ["141024010031"]},
    ]})  # fmt: skip
    accounts = BrokerAccounts(tmp_path)
    bridge = bridge_config(hierarchy, "mine", BridgeLogin("link-mine", "x"))
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(mosquitto_config(1883, tmp_path, accounts, bridge))
    found = findings(read_config(conf))
    assert _failing(found) == []
    assert _levels(found)["bridge minewatch-mine-to-city"] == {Level.OK}


def test_a_bridge_that_loses_data_or_leaves_the_machine_in_clear_is_named(tmp_path: Path) -> None:
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "bridge.conf").write_text(
        "connection up\naddress 10.1.2.3:1883\ncleansession true\ntopic minewatch/v1/# out 0\n"
    )
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"persistence true\ninclude_dir {tmp_path / 'conf.d'}\n")
    failing = _failing(findings(read_config(conf)))
    assert any("cleansession true" in f for f in failing)
    assert any("local_cleansession true" in f for f in failing)
    assert any("QoS 0" in f for f in failing)
    assert any("without TLS" in f for f in failing)


@pytest.mark.anyio
async def test_an_open_broker_is_named_and_a_secured_one_passes(
    mqtt_url: str, private_dir: Path
) -> None:
    assert any(
        "anonymous client can connect" in f for f in _failing(await broker_findings(mqtt_url))
    )
    accounts = broker_accounts(private_dir / "mq")
    accounts.directory.mkdir(mode=0o755)
    login = accounts.add(Account("gateway", Role.GATEWAY))
    binary = Settings(_env_file=None).mosquitto_bin  # type: ignore[call-arg]
    with embedded_mosquitto(accounts.directory, binary, accounts=accounts) as server:
        assert _failing(await broker_findings(server.url_for(login))) == []
        wrong = server.url_for(login).replace(login.password, "wrong")
        assert any("refuses minewatch's login" in f for f in _failing(await broker_findings(wrong)))


@pytest.mark.anyio
async def test_retention_that_never_ran_a_low_floor_and_a_mine_clock_ahead_are_named(
    database_url: str,
) -> None:
    now = dt.datetime.now(dt.UTC)
    found = database_findings(database_url, now, 60)
    assert _failing(found) == []
    assert _levels(found)["TimescaleDB"] == {Level.OK}
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO mines (code, name) VALUES ('141024010071', 'doctor mine');"
            "INSERT INTO points (mine_code, code, sensor_type, value_type)"
            " VALUES ('141024010071', 'P1', '0001', 'MN');"
            "INSERT INTO readings (time, point_id, value)"
            " SELECT now() + INTERVAL '10 minutes', id, 1.0 FROM points;"
            "UPDATE retention_policies SET keep = '2 days' WHERE hypertable = 'readings'"
        )
    found = database_findings(database_url, now, 60)
    assert any("never run" in f for f in _failing(found))
    warnings = [i.message for i in found if i.level is Level.WARN]
    assert any("readings is kept 2 days, less than the 7 days" in w for w in warnings)
    assert any("mine 141024010071 stamps readings" in w for w in warnings)
    await Maintenance(database_url, RetentionSettings()).run_once()
    assert not [f for f in _failing(database_findings(database_url, now, 60)) if "retention" in f]
    later = now + dt.timedelta(hours=1)
    assert any(
        "last ran 60 min ago" in f for f in _failing(database_findings(database_url, later, 60))
    )

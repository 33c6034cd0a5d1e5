"""The hierarchy as data, and the bridge written from it (pure: no broker)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from minewatch.federation import BridgeLogin, Hierarchy, bridge_config, link_account, load_hierarchy

PROVINCE = {"name": "province", "broker": "mqtts://province.example:8883", "ca_file": "/ca.crt"}
CITY = {"name": "city", "parent": "province", "broker": "mqtt://10.0.0.2:1883", "up": "alarms"}
MINE_1 = {"name": "mine-1", "parent": "city", "mines": ["141024010031"]}
MINE_2 = {"name": "mine-2", "parent": "city", "mines": ["141024010032"], "up": "alarms"}
LOGIN = BridgeLogin("link-x", "secret")


def _hierarchy(*items: dict[str, object], **queue: float) -> Hierarchy:
    return Hierarchy.model_validate({"queue": queue, "installation": list(items)})


def test_a_readings_link_carries_every_feed_of_its_mines_at_qos_1_with_a_kept_session() -> None:
    text = bridge_config(_hierarchy(PROVINCE, CITY, MINE_1), "mine-1", LOGIN)
    assert "address 10.0.0.2:1883" in text
    assert "topic minewatch/v1/141024010031/safety/+ out 1" in text
    assert "topic minewatch/v1/141024010031/personnel out 1" in text
    assert "alarms" not in text.split("connection", 1)[1]  # the city evaluates them again
    for line in ("cleansession false", "local_cleansession false", "remote_password secret"):
        assert line in text.splitlines()


def test_an_alarms_link_carries_alarms_statistics_and_definitions_over_tls() -> None:
    hierarchy = _hierarchy(PROVINCE, CITY, MINE_1, MINE_2)
    text = bridge_config(hierarchy, "city", LOGIN)
    topics = [line for line in text.splitlines() if line.startswith("topic ")]
    assert topics == [
        "topic minewatch/v1/141024010031/meta out 1",
        "topic minewatch/v1/141024010031/alarms out 1",
        "topic minewatch/v1/141024010031/statistics out 1",
        "topic minewatch/v1/141024010031/files out 1",
        "topic minewatch/v1/141024010032/meta out 1",
        "topic minewatch/v1/141024010032/alarms out 1",
        "topic minewatch/v1/141024010032/statistics out 1",
        "topic minewatch/v1/141024010032/files out 1",
        "topic minewatch/down/v1/141024010031/directives in 1",  # down: the levels above's
        "topic minewatch/down/v1/141024010032/directives in 1",
    ]
    assert "address province.example:8883" in text and "bridge_cafile /ca.crt" in text
    assert link_account(hierarchy, "city").mines == ("141024010031", "141024010032")


def test_the_queue_limit_covers_the_outage_the_hierarchy_names() -> None:
    hierarchy = _hierarchy(PROVINCE, CITY, MINE_1, outage_hours=10, messages_per_s=30)
    assert hierarchy.queue.max_queued_messages == 1_080_000
    assert "max_queued_messages 1080000" in bridge_config(hierarchy, "mine-1", LOGIN)


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ((MINE_1,), "no installation named 'city'"),
        (({"name": "city"}, MINE_1), "needs a broker URL"),
        (({**CITY, "parent": "mine-1"}, {**MINE_1, "broker": "mqtt://x"}), "cycle"),
        ((PROVINCE, CITY, MINE_1, {**MINE_2, "mines": ["141024010031"]}), "is in mine-1"),
        ((PROVINCE, {**CITY, "broker": "http://x"}), "unsupported broker URL"),
        ((PROVINCE, {**MINE_1, "parent": "province", "mines": ["1410"]}), "12 digits"),
    ],
)
def test_a_wrong_hierarchy_is_refused_with_a_clear_reason(
    items: tuple[dict[str, object], ...], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        _hierarchy(*items)


def test_the_top_has_no_link_up() -> None:
    with pytest.raises(ValueError, match="at the top"):
        bridge_config(_hierarchy(PROVINCE, CITY, MINE_1), "province", LOGIN)


def test_the_example_hierarchy_of_the_docs_loads() -> None:
    path = Path(__file__).parents[2] / "deploy" / "federation" / "hierarchy.example.toml"
    hierarchy = load_hierarchy(path)
    assert hierarchy.mines_below(hierarchy.installation[0].name)


def test_the_command_writes_the_bridge_readable_only_by_its_owner(tmp_path: Path) -> None:
    from minewatch.cli import main

    example = Path(__file__).parents[2] / "deploy" / "federation" / "hierarchy.example.toml"
    secret = tmp_path / "link.password"
    secret.write_text("s3cret\n")
    out = tmp_path / "bridge.conf"
    argv = ["federation", "config", str(example), "--installation", "mine-141024010031",
            "--password-file", str(secret), "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    assert out.stat().st_mode & 0o777 == 0o600
    text = out.read_text()
    assert "remote_username link-mine-141024010031" in text
    assert "remote_password s3cret" in text
    assert "address city-1410.example.gov:8883" in text


def test_each_mine_below_is_known_by_the_installation_serving_it_and_the_link_carrying_it() -> None:
    hierarchy = _hierarchy(PROVINCE, CITY, MINE_1, MINE_2)
    assert hierarchy.sources("city") == [
        ("141024010031", "mine-1", "mine-1", "readings"),
        ("141024010032", "mine-2", "mine-2", "alarms"),
    ]
    # At the province both come through the city's link, which carries alarms only.
    assert hierarchy.sources("province") == [
        ("141024010031", "mine-1", "city", "alarms"),
        ("141024010032", "mine-2", "city", "alarms"),
    ]


@pytest.mark.anyio
async def test_links_record_where_each_mine_comes_from_and_the_api_tells_it(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from minewatch.cli import main
    from tests.helpers import running_api

    example = Path(__file__).parents[2] / "deploy" / "federation" / "hierarchy.example.toml"
    monkeypatch.setenv("MINEWATCH_DATABASE_URL", database_url)
    accounts, secrets = tmp_path / "accounts", tmp_path / "secrets"
    argv = ["federation", "links", str(example), "--installation", "city-1410",
            "--dir", str(accounts), "--secrets", str(secrets)]  # fmt: skip
    accounts.mkdir()
    assert main(argv) == 0
    expected = load_hierarchy(example).sources("city-1410")
    assert expected
    async with running_api(database_url) as api, httpx.AsyncClient() as http:
        answer = await http.get(f"{api}/api/v1/federation/sources")
    assert answer.status_code == 200, answer.text
    got = [(s["mine_code"], s["installation"], s["via"], s["up"]) for s in answer.json()]
    assert got == sorted((m, o, v, u.value) for m, o, v, u in expected)

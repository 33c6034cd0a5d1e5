"""Fusion across systems with the real parts: a gateway (safety, personnel and video feeds over
the broker, the alarm engine, the fusion task) on a real database, the API for dispatchers.

The mine's definition is stored before the gateway starts; readings, people and camera
heartbeats travel over MQTT like a mine's would."""

from __future__ import annotations

import datetime as dt
import itertools

import aiomqtt
import httpx
import orjson
import psycopg
import pytest

from minewatch.alarms.fusion_store import evaluate_fusion
from minewatch.feeds import (
    broker_address,
    personnel_meta_topic,
    personnel_topic,
    safety_subscriptions,
    safety_topic,
    video_meta_topic,
    video_topic,
)
from minewatch.metadata import MineDefinition, upsert_mine
from minewatch.timeutil import datetime_to_us, now_us
from tests.helpers import eventually, running_api, running_gateway, scalar

pytestmark = pytest.mark.anyio

MINE = "141024019955"  # this test's own mine: definitions on the shared broker are per mine
FACE, HEADING, GOAF, SHAFT = (f"{MINE}{n:04d}" for n in (3, 4, 6, 1))
TICK_S = 0.2
METHANE = {
    "sensor_type": "0001", "unit": "%CH4", "range_low": 0.0, "range_high": 4.0,
    "alarm_high": 1.0, "alarm_high_clear": 1.0, "poweroff_high": 1.5, "restore_high": 1.0,
    "on_delay_s": 0.0,
}  # fmt: skip
DEFINITION = MineDefinition.model_validate({
    "mine": {"code": MINE, "name": "融合测试矿"},
    "substations": [{"code": "001"}],
    "points": [
        {"code": "CH4-FACE", "substation": "001", "area_code": FACE, **METHANE},
        {"code": "CH4-GOAF", "substation": "001", "area_code": GOAF, **METHANE},
        {"code": "CH4-HEAD", "substation": "001", "area_code": HEADING, **METHANE},
        {"code": "FAN-HEAD", "substation": "001", "sensor_type": "1001", "area_code": HEADING,
         "alarm_state": 0},
    ],
})  # fmt: skip
POINTS = [p.code for p in DEFINITION.points]


def card(n: int) -> str:
    return f"{MINE}{n:05d}"


def iso(us: int) -> str:
    return dt.datetime.fromtimestamp(us / 1e6, dt.UTC).isoformat()


class Site:
    """The mine's systems, publishing over one MQTT connection."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.seq = itertools.count(1)
        self.boot = now_us() // 1000

    async def _send(self, topic: str, doc: dict[str, object]) -> None:
        await self.client.publish(topic, orjson.dumps(doc), qos=1)

    async def readings(self, t: int, **values: float) -> None:
        """One polling cycle of substation 001 at ``t`` (µs): point code -> value."""
        await self._send(safety_topic(MINE, "001"), {
            "v": 1, "mine": MINE, "substation": "001", "boot": self.boot, "seq": next(self.seq),
            "ts": iso(t), "points": list(values), "values": list(values.values()),
            "status": [0] * len(values),
        })  # fmt: skip

    async def personnel_meta(self, t: int) -> None:
        areas = {SHAFT: "shaft", FACE: "key", GOAF: "other", HEADING: "key"}
        await self._send(personnel_meta_topic(MINE), {
            "v": 1, "mine": MINE, "mine_name": "融合测试矿", "ts": iso(t),
            "people": [{"card": card(n), "name": f"工人{n}"} for n in range(1, 6)],
            "areas": [{"code": a, "name": a[-4:], "type": k} for a, k in areas.items()],
            "stations": [{"code": f"{a}000001", "area": a} for a in areas],
        })  # fmt: skip

    async def positions(self, t: int, where: dict[int, str]) -> None:
        """Cards seen at ``t`` in areas; an area of SHAFT with ``out`` semantics is not used."""
        await self._send(personnel_topic(MINE), {
            "v": 1, "mine": MINE, "system": "rydw", "boot": self.boot, "seq": next(self.seq),
            "kind": "positions", "ts": iso(t), "cards": [card(n) for n in where],
            "areas": list(where.values()), "stations": [f"{a}000001" for a in where.values()],
            "in_mine": [1] * len(where),
        })  # fmt: skip

    async def cameras(self, t: int, online: dict[str, bool] | None = None) -> None:
        if online is None:
            await self._send(video_meta_topic(MINE), {
                "v": 1, "mine": MINE, "ts": iso(t),
                "cameras": [{"code": "V-FACE", "area": FACE}, {"code": "V-HEAD", "area": HEADING}],
            })  # fmt: skip
            return
        await self._send(video_topic(MINE), {
            "v": 1, "mine": MINE, "system": "nvr", "boot": self.boot, "seq": next(self.seq),
            "kind": "heartbeats", "ts": iso(t), "cameras": list(online),
            "online": list(online.values()),
        })  # fmt: skip


@pytest.fixture
def database(database_url: str) -> str:
    with psycopg.connect(database_url) as conn:
        upsert_mine(conn, DEFINITION)
    return database_url


def connect(mqtt_url: str) -> aiomqtt.Client:
    host, port = broker_address(mqtt_url)
    return aiomqtt.Client(host, port)


def fused(database_url: str, rule: str) -> list[dict[str, object]]:
    with psycopg.connect(database_url) as conn:
        cur = conn.execute(
            "SELECT a.id, p.code AS point, a.started_at, a.ended_at, a.start_value, a.max_value,"
            " a.threshold, a.grade, f.area_code, f.source_alarm_ids, f.cards, f.cameras,"
            " f.points FROM alarms a JOIN alarm_fusions f ON f.alarm_id = a.id"
            " JOIN points p ON p.id = a.point_id WHERE a.rule = %s ORDER BY a.id",
            (rule,),
        )
        names = [c.name for c in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def alarm(database_url: str, rule: str, point: str) -> tuple[int, int, int | None]:
    """(id, started_at µs, ended_at µs) of the point's one alarm of ``rule``."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT a.id, a.started_at, a.ended_at FROM alarms a JOIN points p ON p.id = a.point_id"
            " WHERE a.rule = %s AND p.code = %s",
            (rule, point),
        ).fetchall()
    assert len(rows) == 1, rows
    aid, started, ended = rows[0]
    return aid, datetime_to_us(started), None if ended is None else datetime_to_us(ended)


def snapshot(database_url: str) -> list[tuple[object, ...]]:
    """Every alarm and fusion row, with their update times: what an evaluation could change."""
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT a.*, f.* FROM alarms a LEFT JOIN alarm_fusions f ON f.alarm_id = a.id"
            " ORDER BY a.id"
        ).fetchall()


def alarm_count(database_url: str, rule: str) -> int:
    found = scalar(database_url, "SELECT count(*) FROM alarms WHERE rule = %s", (rule,))
    return int(found)  # type: ignore[call-overload]


def headcount(database_url: str, area: str) -> int:
    found = scalar(
        database_url,
        "SELECT count(*) FROM personnel_presence WHERE underground AND area_code = %s",
        (area,),
    )
    return int(found)  # type: ignore[call-overload]


async def test_a_methane_alarm_where_three_people_are_fuses_with_their_cards_and_follows_them(
    database: str, mqtt_url: str, unique_id: str
) -> None:
    t0 = now_us() - 20_000_000  # readings stay fresh: no data interruption
    s = 1_000_000
    async with (
        running_gateway(database, mqtt_url, f"gw-{unique_id}", topics=safety_subscriptions(MINE),
                        tick_s=TICK_S),
        connect(mqtt_url) as client,
        running_api(database) as base,
    ):  # fmt: skip
        site = Site(client)
        await site.personnel_meta(t0)
        await site.positions(t0 + 1 * s, {1: FACE, 2: FACE, 3: FACE, 4: SHAFT})
        await eventually(lambda: headcount(database, FACE) == 3)
        await site.readings(t0 + 10 * s, **{"CH4-FACE": 0.3, "CH4-GOAF": 0.3})
        await site.readings(t0 + 11 * s, **{"CH4-FACE": 1.2, "CH4-GOAF": 1.2})
        await site.readings(t0 + 12 * s, **{"CH4-FACE": 1.3, "CH4-GOAF": 1.3})
        await eventually(lambda: len(fused(database, "gas_people")) == 1)
        (raised,) = fused(database, "gas_people")
        gas_id, gas_start, _ = alarm(database, "upper_alarm", "CH4-FACE")
        alarm(database, "upper_alarm", "CH4-GOAF")  # a gas alarm too, in an empty area
        incident = incident_of(database, gas_id)

        async with httpx.AsyncClient(base_url=base) as api:
            active = (await api.get("/api/v1/dispatch/alarms/active", params={"mine": MINE})).json()
        shown = [a for a in active if a["rule"] == "gas_people"]

        # card 3 walks out to the shaft: the fused alarm follows, then the gas clears
        await site.positions(t0 + 20 * s, {3: SHAFT})
        await eventually(lambda: fused(database, "gas_people")[0]["cards"] == [card(1), card(2)])
        await site.readings(t0 + 30 * s, **{"CH4-FACE": 0.3, "CH4-GOAF": 0.3})
        await eventually(lambda: fused(database, "gas_people")[0]["ended_at"] is not None)
        (ended,) = fused(database, "gas_people")
        _, _, gas_end = alarm(database, "upper_alarm", "CH4-FACE")

    assert raised["point"] == "CH4-FACE" and raised["area_code"] == FACE
    assert raised["start_value"] == 3 and raised["cards"] == [card(1), card(2), card(3)]
    assert raised["source_alarm_ids"] == [gas_id] and raised["grade"] == "red"
    # people were in the face before the gas: the fused alarm starts with the gas
    assert datetime_to_us(raised["started_at"]) == gas_start == t0 + 11 * s  # type: ignore[arg-type]
    (listed,) = shown  # the dispatcher sees it, graded, with the head-count and the cards
    assert listed["grade"] == "red" and listed["point_code"] == "CH4-FACE"
    assert listed["fusion"]["head_count"] == 3 and listed["fusion"]["fused_alarm_ids"] == [gas_id]
    assert listed["fusion"]["cards"] == [card(1), card(2), card(3)]
    assert datetime_to_us(ended["ended_at"]) == gas_end == t0 + 30 * s  # type: ignore[arg-type]
    assert ended["max_value"] == 3 and ended["cards"] == [card(1), card(2)]
    # issue 13: the fused alarm joined the gas alarm's incident live, which became red
    assert raised["id"] in incident["members"] and gas_id in incident["members"]
    assert incident["grade"] == "red"


def incident_of(database_url: str, alarm_id: int) -> dict[str, object]:
    """The incident of an alarm, with its member alarm ids."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT i.id, i.grade, array_agg(m2.alarm_id ORDER BY m2.alarm_id) AS members "
            "FROM incident_members m JOIN incidents i ON i.id = m.incident_id "
            "JOIN incident_members m2 ON m2.incident_id = i.id WHERE m.alarm_id = %s "
            "GROUP BY i.id, i.grade",
            (alarm_id,),
        ).fetchone()
    assert row is not None, f"alarm {alarm_id} is in no incident"
    return {"id": row[0], "grade": row[1], "members": row[2]}


async def test_a_gas_alarm_fuses_when_people_arrive_and_ends_when_the_area_empties(
    database: str, mqtt_url: str, unique_id: str
) -> None:
    t0 = now_us() - 20_000_000  # readings stay fresh: no data interruption
    s = 1_000_000
    async with (
        running_gateway(database, mqtt_url, f"gw-{unique_id}", topics=safety_subscriptions(MINE),
                        tick_s=TICK_S) as gateway,
        connect(mqtt_url) as client,
    ):  # fmt: skip
        site = Site(client)
        await site.personnel_meta(t0)
        await site.readings(t0 + 10 * s, **{"CH4-FACE": 1.2})
        await site.readings(t0 + 11 * s, **{"CH4-FACE": 1.3})
        await eventually(lambda: alarm_count(database, "upper_alarm") == 1)
        rounds = gateway.fusion.rounds  # type: ignore[union-attr]
        await eventually(lambda: gateway.fusion.rounds > rounds + 2)  # type: ignore[union-attr]
        assert fused(database, "gas_people") == []  # nobody in the face
        await site.positions(t0 + 20 * s, {1: FACE})
        await eventually(lambda: len(fused(database, "gas_people")) == 1)
        await site.positions(t0 + 25 * s, {1: SHAFT})
        await eventually(lambda: fused(database, "gas_people")[0]["ended_at"] is not None)
        (episode,) = fused(database, "gas_people")
        assert alarm(database, "upper_alarm", "CH4-FACE")[2] is None  # the gas goes on

    assert datetime_to_us(episode["started_at"]) == t0 + 20 * s  # type: ignore[arg-type]
    assert datetime_to_us(episode["ended_at"]) == t0 + 25 * s  # type: ignore[arg-type]


async def test_a_fan_stop_with_methane_rising_in_its_area_fuses_and_ends_with_the_restart(
    database: str, mqtt_url: str, unique_id: str
) -> None:
    with psycopg.connect(database) as conn:  # the mine's own delta, data
        conn.execute("UPDATE mines SET fan_stop_gas_rise = 0.25 WHERE code = %s", (MINE,))
    t0 = now_us() - 20_000_000  # readings stay fresh: no data interruption
    s = 1_000_000
    head = ("CH4-HEAD", "FAN-HEAD")
    async with (
        running_gateway(database, mqtt_url, f"gw-{unique_id}", topics=safety_subscriptions(MINE),
                        tick_s=TICK_S),
        connect(mqtt_url) as client,
    ):  # fmt: skip
        site = Site(client)
        for k, (gas, fan) in enumerate([(0.30, 1), (0.30, 0), (0.40, 0), (0.50, 0), (0.62, 0)]):
            await site.readings(t0 + k * s, **dict(zip(head, (gas, fan), strict=True)))
        await eventually(lambda: len(fused(database, "fan_stop_gas_rise")) == 1)
        await site.readings(t0 + 10 * s, **dict(zip(head, (0.62, 1), strict=True)))
        await eventually(lambda: fused(database, "fan_stop_gas_rise")[0]["ended_at"] is not None)
        (episode,) = fused(database, "fan_stop_gas_rise")
        stop_id, stop_start, stop_end = alarm(database, "fan_stop", "FAN-HEAD")

    assert stop_start == t0 + 1 * s and stop_end == t0 + 10 * s
    assert scalar(database, "SELECT grade FROM alarms WHERE id = %s", (stop_id,)) == "orange"
    assert episode["point"] == "FAN-HEAD" and episode["grade"] == "red"
    assert episode["source_alarm_ids"] == [stop_id] and episode["threshold"] == 0.25
    # 0.30 at the stop; +0.10 and +0.20 are not more than 0.25; +0.32 at 4 s is
    assert datetime_to_us(episode["started_at"]) == t0 + 4 * s  # type: ignore[arg-type]
    assert episode["max_value"] == pytest.approx(0.32)
    assert datetime_to_us(episode["ended_at"]) == stop_end  # type: ignore[arg-type]
    with psycopg.connect(database) as conn:
        (point_id,) = conn.execute("SELECT id FROM points WHERE code = 'CH4-HEAD'").fetchone()  # type: ignore[misc]
    assert episode["points"] == [point_id]


async def test_a_gas_alarm_while_the_areas_camera_is_offline_fuses_until_it_is_back(
    database: str, mqtt_url: str, unique_id: str
) -> None:
    t0 = now_us() - 20_000_000  # readings stay fresh: no data interruption
    s = 1_000_000
    async with (
        running_gateway(database, mqtt_url, f"gw-{unique_id}", topics=safety_subscriptions(MINE),
                        tick_s=TICK_S),
        connect(mqtt_url) as client,
    ):  # fmt: skip
        site = Site(client)
        await site.cameras(t0)
        await site.cameras(t0 + 1 * s, {"V-FACE": False, "V-HEAD": True})
        await site.readings(t0 + 10 * s, **{"CH4-FACE": 1.2, "CH4-HEAD": 1.2})
        await site.readings(t0 + 11 * s, **{"CH4-FACE": 1.3, "CH4-HEAD": 1.3})
        await eventually(lambda: len(fused(database, "gas_camera_offline")) == 1)
        await site.cameras(t0 + 20 * s, {"V-FACE": True})
        await eventually(lambda: fused(database, "gas_camera_offline")[0]["ended_at"] is not None)
        (episode,) = fused(database, "gas_camera_offline")

    assert episode["point"] == "CH4-FACE" and episode["cameras"] == ["V-FACE"]  # not the heading
    assert episode["grade"] == "orange" and episode["start_value"] == 1
    assert datetime_to_us(episode["started_at"]) == t0 + 10 * s  # type: ignore[arg-type]
    assert datetime_to_us(episode["ended_at"]) == t0 + 20 * s  # type: ignore[arg-type]


async def test_a_restarted_gateway_keeps_the_fused_alarm_and_ends_it_with_the_gas(
    database: str, mqtt_url: str, unique_id: str
) -> None:
    t0 = now_us() - 20_000_000  # readings stay fresh: no data interruption
    s = 1_000_000
    settings = {"topics": safety_subscriptions(MINE), "tick_s": TICK_S}
    async with connect(mqtt_url) as client:
        site = Site(client)
        async with running_gateway(database, mqtt_url, f"gw-{unique_id}", **settings):
            await site.personnel_meta(t0)
            await site.positions(t0 + 1 * s, {1: FACE, 2: FACE})
            await site.readings(t0 + 10 * s, **{"CH4-FACE": 1.2})
            await site.readings(t0 + 11 * s, **{"CH4-FACE": 1.3})
            await eventually(lambda: len(fused(database, "gas_people")) == 1)
        before = snapshot(database)
        async with running_gateway(database, mqtt_url, f"gw-{unique_id}", **settings) as gateway:
            await eventually(lambda: gateway.fusion.rounds >= 3)  # type: ignore[union-attr]
            assert snapshot(database) == before  # nothing raised again, nothing touched
            await site.readings(t0 + 20 * s, **{"CH4-FACE": 0.2})
            await eventually(lambda: fused(database, "gas_people")[0]["ended_at"] is not None)
    (episode,) = fused(database, "gas_people")
    assert datetime_to_us(episode["ended_at"]) == t0 + 20 * s  # type: ignore[arg-type]


async def test_evaluating_again_on_the_same_database_changes_nothing(database: str) -> None:
    """Direct evaluations on a state written by hand: the second writes nothing."""
    now = now_us()
    start = dt.datetime.fromtimestamp(now / 1e6 - 30, dt.UTC)
    with psycopg.connect(database) as conn:
        conn.execute(
            "INSERT INTO personnel_presence (mine_code, card_code, underground, entered_at,"
            " area_code, area_since, station_code, station_since, last_seen_at, changed_at)"
            " SELECT %s, c, true, %s, %s, %s, %s, %s, %s, %s FROM unnest(%s::text[]) c",
            (MINE, start, FACE, start, f"{FACE}000001", start, start, start,
             [card(1), card(2), card(3)]),
        )  # fmt: skip
        conn.execute(
            "INSERT INTO alarms (mine_code, point_id, rule, abnormal_type, started_at, raised_at,"
            " threshold, start_value, max_value, max_at, min_value, min_at, value_sum,"
            " value_count) SELECT %s, id, 'power_off', '002', %s, %s, 1.5, 1.6, 1.6, %s, 1.6,"
            " %s, 1.6, 1 FROM points WHERE code = 'CH4-FACE'",
            (MINE, start, start, start, start),
        )
    async with await psycopg.AsyncConnection.connect(database) as conn:
        first = await evaluate_fusion(conn, now)
        after_first = snapshot(database)
        second = await evaluate_fusion(conn, now + 5_000_000)
    assert [(c.event, c.fused.rule, c.fused.value) for c in first] == [("raised", "gas_people", 3)]
    assert second == [] and snapshot(database) == after_first

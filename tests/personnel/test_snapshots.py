"""Full snapshots (RYSS semantics) become enter/leave events without double counting: a
snapshot received twice, or repeated later with the same list, changes nothing; people absent
from a later snapshot, or listed with 出井, leave. Over MQTT and from national TXT files."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import aiomqtt
import httpx
import orjson
import psycopg
import pytest

from minewatch.feeds import broker_address, personnel_meta_topic, personnel_topic
from minewatch.ingest.feeds.writer import FeedPending, FeedWriter
from minewatch.ingest.sources.national.personnel import jzss_batch, ryss_batch
from minewatch.national import (
    FileType,
    Header,
    JzssRecord,
    ParsedFile,
    RyssRecord,
    ShaftFlag,
    StationPowerState,
    StationRunState,
    encode_file,
    parse_file,
)
from minewatch.simulators.personnel import CST, US, PersonnelSimConfig, PersonnelSimulator
from minewatch.timeutil import now_us
from tests.helpers import eventually, scalar
from tests.personnel.stack import running_feed_api, running_feeds, watermark

pytestmark = pytest.mark.anyio

TABLES = ("personnel_positions", "personnel_trips", "personnel_stays", "personnel_presence")


def _dump(database_url: str) -> dict[str, list[tuple[object, ...]]]:
    with psycopg.connect(database_url) as conn:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2, 3, 4").fetchall()
                for t in TABLES}  # fmt: skip


def _times() -> tuple[int, int]:
    """07:00 and 07:45 local time yesterday: between them the 0点班 comes up."""
    day = dt.datetime.now(CST).date() - dt.timedelta(days=1)
    t1 = dt.datetime(day.year, day.month, day.day, 7, 0, tzinfo=CST)
    return int(t1.timestamp() * US), int((t1 + dt.timedelta(minutes=45)).timestamp() * US)


def _restamped(payload: bytes, seq: int, t: int | None = None) -> bytes:
    doc = orjson.loads(payload)
    doc["seq"] = seq
    if t is not None:
        doc["ts"] = dt.datetime.fromtimestamp(t / US, CST).isoformat()
    return orjson.dumps(doc)


async def test_a_repeated_snapshot_changes_nothing_and_absent_people_leave(
    database_url: str, mqtt_url: str, unique_id: str
) -> None:
    sim = PersonnelSimulator(PersonnelSimConfig())
    mine = sim.config.mine_code
    t1, t2 = _times()
    first = sim.snapshot_message(t1, 1, 1)
    host, port = broker_address(mqtt_url)
    async with (
        running_feeds(database_url, mqtt_url, f"feeds-{unique_id}"),
        running_feed_api(database_url) as base,
        aiomqtt.Client(host, port, identifier=f"pub-{unique_id}") as client,
    ):
        meta = orjson.dumps(sim.meta_document(dt.datetime.fromtimestamp(t1 / US - 86400, CST)))
        await client.publish(personnel_meta_topic(mine), meta, qos=1)
        await client.publish(personnel_topic(mine), first, qos=1)
        await eventually(lambda: watermark(database_url, f"{mine}/personnel/rydw") == 1)
        before = _dump(database_url)
        assert len(before["personnel_trips"]) == len(sim.places(t1))

        # The same message again, the same snapshot as a new message, the same list 5 min on.
        for payload in (first, _restamped(first, 2), _restamped(first, 3, t1 + 300 * US)):
            await client.publish(personnel_topic(mine), payload, qos=1)
        await eventually(lambda: watermark(database_url, f"{mine}/personnel/rydw") == 3)
        assert _dump(database_url) == before

        # 45 minutes later: the night shift came up; those who left in the last 5 minutes
        # are still listed with 出井, the others are simply gone.
        await client.publish(
            personnel_topic(mine), sim.snapshot_message(t2, 1, 4, t2 - 300 * US), qos=1
        )
        await client.publish(personnel_topic(mine), sim.station_status_message(t2, 1, 5), qos=1)
        await eventually(lambda: watermark(database_url, f"{mine}/personnel/rydw") == 5)
        async with httpx.AsyncClient(base_url=f"{base}/api/v1/personnel/mines/{mine}") as api:
            now = (await api.get("/underground")).json()

    assert {p["card_code"] for p in now} == set(sim.places(t2))
    assert scalar(database_url, "SELECT count(*) FROM quarantine") == 0
    assert scalar(database_url, "SELECT count(*) FROM personnel_station_status") == len(
        sim.stations
    )
    with psycopg.connect(database_url) as conn:
        left = dict(conn.execute(
            "SELECT card_code, left_at FROM personnel_trips WHERE left_at IS NOT NULL"
        ).fetchall())  # fmt: skip
    exits = {p.card: plan.exit for p, plan in sim.exits_between(t1, t2)}
    assert set(left) == set(exits)
    for card, exit_us in exits.items():
        stamp = int(left[card].timestamp() * US)
        # listed with 出井: the exact 出井时刻; absent: the snapshot's time
        assert stamp == (exit_us if exit_us > t2 - 300 * US else t2), card


def _ryss_file(sim: PersonnelSimulator, t: int, upload: int) -> ParsedFile:
    def at(us: int) -> dt.datetime:
        return dt.datetime.fromtimestamp(us / US, CST)

    leaders = {p.card for p in sim.people if p.leader}
    records = [
        RyssRecord(
            card_code=p.card, name="", shaft_flag=ShaftFlag.IN, in_time=at(p.entered_at),
            out_time=None, area_code=p.area, area_time=at(p.area_since),
            station_code=p.station, station_time=at(p.station_since), work_pattern="三八制",
            distance_m=Decimal(str(p.distance_m)), work_state="正常",
            is_leader=p.card in leaders, is_special_worker=False, track=(),
        )
        for p in sim.places(t).values()
    ]  # fmt: skip
    name, data = encode_file(Header(FileType.RYSS, sim.config.mine_code, "示范煤矿", at(upload)),
                             records)  # fmt: skip
    parsed = parse_file(name, data)
    assert isinstance(parsed, ParsedFile) and not parsed.problems
    return parsed


async def _store(writer: FeedWriter, parsed: ParsedFile) -> None:
    batch = ryss_batch(parsed) if parsed.file_type == FileType.RYSS else jzss_batch(parsed)
    pending = FeedPending()
    if writer.accepts(pending, batch):
        pending.batches.append(batch)
    pending.acks.append(lambda: None)
    await writer.flush(pending, now_us())


async def test_national_ryss_files_feed_the_same_snapshot_diff(database_url: str) -> None:
    sim = PersonnelSimulator(PersonnelSimConfig())
    mine = sim.config.mine_code
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO mines (code, name) VALUES (%s, 'x')", (mine,))
    t1, t2 = _times()
    station = sim.stations[0][0]
    jzss = encode_file(
        Header(FileType.JZSS, mine, "示范煤矿", dt.datetime.fromtimestamp(t2 / US, CST)),
        [JzssRecord(station, StationRunState.INTERRUPTED, StationPowerState.FAULT,
                    dt.datetime.fromtimestamp(t2 / US, CST))],
    )  # fmt: skip
    async with FeedWriter(database_url, 90.0) as writer:
        await _store(writer, _ryss_file(sim, t1, t1))
        before = _dump(database_url)
        await _store(writer, _ryss_file(sim, t1, t1))  # the same file twice
        await _store(writer, _ryss_file(sim, t1, t1 + 300 * US))  # the same list, later
        assert _dump(database_url) == before
        await _store(writer, _ryss_file(sim, t2, t2))
        parsed = parse_file(*jzss)
        assert isinstance(parsed, ParsedFile)
        await _store(writer, parsed)
        assert {c for (m, c), p in writer.tracker.state.items() if p.underground} == set(
            sim.places(t2)
        )
    assert len(before["personnel_trips"]) == len(sim.places(t1))
    open_trips = scalar(database_url, "SELECT count(*) FROM personnel_trips WHERE left_at IS NULL")
    assert open_trips == len(sim.places(t2))
    assert (
        scalar(database_url, "SELECT run_state * 10 + power_state FROM personnel_station_status")
        == 12
    )

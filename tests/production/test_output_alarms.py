"""Output over capacity (超能力, domain §9) as alarms on the mine, raised by the feed writer's
periodic check from the stored 3001 readings (real TimescaleDB): a month over 10% and a year
over 110% of the approved annual capacity each raise one episode at the reading that crossed
the limit and clear at the end of the period; exactly at the limit is not over."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from minewatch.alarms.rules.output import OUTPUT_MONTH, OUTPUT_YEAR
from minewatch.ingest.feeds.writer import FeedWriter
from minewatch.metadata import upsert_mine
from minewatch.simulators.output import BeltScale
from minewatch.simulators.personnel import CST
from minewatch.timeutil import datetime_to_us, now_us
from tests.personnel.scenario import episodes

pytestmark = pytest.mark.anyio

CAPACITY = 12_000.0  # t/year: month limit 1,200 t, year limit 13,200 t


def _store(database_url: str, scale: BeltScale, readings: list[tuple[dt.datetime, float]]) -> None:
    with psycopg.connect(database_url) as conn:
        point = conn.execute(
            "SELECT id FROM points WHERE code = %s", (scale.point_code,)
        ).fetchone()
        assert point is not None
        conn.cursor().executemany(
            "INSERT INTO readings (time, point_id, value) VALUES (%s, %s, %s)",
            [(t, point[0], v) for t, v in readings],
        )


def _local(year: int, month: int, day: int, hour: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, tzinfo=CST)


def _us(stamp: dt.datetime) -> int:
    return datetime_to_us(stamp)


async def test_month_and_year_over_capacity_raise_at_the_crossing_and_clear_at_period_end(
    database_url: str,
) -> None:
    scale = BeltScale(mine_code="141024019904", approved_capacity_t=CAPACITY)
    with psycopg.connect(database_url) as conn:
        upsert_mine(conn, scale.definition())
    y = dt.datetime.now(CST).year - 1
    async with FeedWriter(database_url, 90.0) as writer:
        # November: 1,200 t exactly (at the limit), then 1 kg more on the 20th.
        _store(database_url, scale, [(_local(y, 11, 1, 1), 0.0), (_local(y, 11, 10), 1200.0)])
        await writer.tick(now_us())
        assert episodes(database_url) == []
        _store(database_url, scale, [(_local(y, 11, 20), 1200.001)])
        await writer.tick(now_us())
        await writer.tick(now_us())  # nothing new: no second episode
        # December: the month is over at once on the 5th, when the year reaches exactly
        # 13,200 t (its limit); the year goes over on the 6th.
        _store(database_url, scale, [(_local(y, 12, 5), 13200.0), (_local(y, 12, 6), 13200.002)])
        await writer.tick(now_us())
    mine = scale.mine_code
    assert episodes(database_url) == [
        ("mine", mine, OUTPUT_MONTH, _us(_local(y, 11, 20)), _us(_local(y, 12, 1))),
        ("mine", mine, OUTPUT_MONTH, _us(_local(y, 12, 5)), _us(_local(y + 1, 1, 1))),
        ("mine", mine, OUTPUT_YEAR, _us(_local(y, 12, 6)), _us(_local(y + 1, 1, 1))),
    ]
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT abnormal_type, threshold, max_value FROM alarms ORDER BY id"
        ).fetchall()
    assert rows == [("Q01", 1200.0, 1200.001), ("Q01", 1200.0, 12000.001),
                    ("Q02", 13200.0, 13200.002)]  # fmt: skip


async def test_the_current_month_stays_open_and_a_restart_does_not_raise_it_again(
    database_url: str,
) -> None:
    scale = BeltScale(mine_code="141024019905", approved_capacity_t=CAPACITY)
    with psycopg.connect(database_url) as conn:
        upsert_mine(conn, scale.definition())
    now = dt.datetime.now(CST)
    month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    first = max(month + dt.timedelta(minutes=1), now - dt.timedelta(hours=2))
    crossing = first + dt.timedelta(minutes=30)
    _store(database_url, scale, [(first, 5000.0), (crossing, 6200.5)])
    for _ in range(2):  # the second writer is a restart: it knows the open episode
        async with FeedWriter(database_url, 90.0) as writer:
            await writer.tick(now_us())
    assert episodes(database_url) == [("mine", scale.mine_code, OUTPUT_MONTH, _us(crossing), None)]

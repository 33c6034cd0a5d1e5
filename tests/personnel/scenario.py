"""Hand-made personnel scenarios for the alarm tests: a mine with a shaft, a face (核定 2), a
restricted area, a few cards; messages built as the contract's JSON, parsed by the contract's
parser and stored by a real :class:`FeedWriter` (no broker needed for these)."""

from __future__ import annotations

import datetime as dt

import orjson
import psycopg

from minewatch.feeds import personnel_meta_topic, personnel_topic
from minewatch.ingest.feeds.contract import FeedBatch, PersonnelMeta
from minewatch.ingest.feeds.parsing import parse_feed_message
from minewatch.ingest.feeds.writer import FeedPending, FeedWriter
from minewatch.simulators.personnel import CST, US
from minewatch.timeutil import datetime_to_us, us_to_datetime

MINE = "141024019902"
SHAFT, FACE, GOAF = f"{MINE}0001", f"{MINE}0003", f"{MINE}0005"
STATION = {SHAFT: f"{SHAFT}000001", FACE: f"{FACE}000001", GOAF: f"{GOAF}000001"}
LEADER = f"{MINE}00099"
MINUTE, HOUR = 60 * US, 3600 * US


def card(n: int) -> str:
    return f"{MINE}{n:05d}"


def day0() -> int:
    """00:00 local time two days ago (µs): scenarios start there."""
    day = dt.datetime.now(CST).date() - dt.timedelta(days=2)
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=CST).timestamp() * US)


def iso(t: int) -> str:
    return dt.datetime.fromtimestamp(t / US, CST).isoformat()


def meta(ts: int, limits: dict[str, object] | None = None, face_approved: int = 2) -> PersonnelMeta:
    doc: dict[str, object] = {
        "v": 1, "mine": MINE, "mine_name": "告警测试矿", "ts": iso(ts),
        "people": [{"card": card(n), "name": f"工人{n}"} for n in range(1, 10)]
        + [{"card": LEADER, "name": "带班矿长", "leader": True}],
        "areas": [
            {"code": SHAFT, "name": "主井井口", "type": "shaft"},
            {"code": FACE, "name": "1201综采工作面", "type": "key", "approved": face_approved},
            {"code": GOAF, "name": "采空区密闭", "type": "restricted", "approved": 0},
        ],
        "stations": [{"code": s, "area": a} for a, s in STATION.items()],
    }  # fmt: skip
    if limits is not None:
        doc["limits"] = limits
    parsed = parse_feed_message(personnel_meta_topic(MINE), orjson.dumps(doc), 1 << 20)
    assert isinstance(parsed, PersonnelMeta), parsed
    return parsed


class Feed:
    """Messages of one positioning system, numbered in order."""

    def __init__(self, writer: FeedWriter) -> None:
        self.writer = writer
        self.seq = 0

    async def _send(self, doc: dict[str, object], now: int) -> None:
        self.seq += 1
        doc.update(v=1, mine=MINE, system="rydw", boot=1, seq=self.seq)
        batch = parse_feed_message(personnel_topic(MINE), orjson.dumps(doc), 1 << 20)
        assert isinstance(batch, FeedBatch), batch
        pending = FeedPending()
        if self.writer.accepts(pending, batch):
            pending.batches.append(batch)
        pending.acks.append(lambda: None)
        await self.writer.flush(pending, now)

    async def positions(
        self, t: int, rows: list[tuple[int | str, str]], *, out: tuple[int | str, ...] = (),
        sos: dict[int | str, bool] | None = None, entered: int | None = None,
    ) -> None:  # fmt: skip
        """Cards (number or code) seen at ``t`` in an area; ``out`` leave the mine at ``t``."""
        cards = [_code(c) for c, _ in rows] + [_code(c) for c in out]
        areas = [a for _, a in rows] + [SHAFT] * len(out)
        doc: dict[str, object] = {
            "kind": "positions", "ts": iso(t), "cards": cards, "areas": areas,
            "stations": [STATION[a] for a in areas],
            "in_mine": [1] * len(rows) + [2] * len(out),
        }  # fmt: skip
        if entered is not None:
            doc["mine_entered_at"] = [iso(entered)] * len(cards)
        if sos is not None:
            doc["sos"] = [sos.get(c) for c, _ in rows] + [sos.get(c) for c in out]
        await self._send(doc, t)

    async def snapshot(self, t: int, rows: list[tuple[int | str, str, int]]) -> None:
        """A full list: (card, area, entered at); area_since = entered at."""
        doc: dict[str, object] = {
            "kind": "snapshot", "ts": iso(t), "cards": [_code(c) for c, _, _ in rows],
            "areas": [a for _, a, _ in rows], "stations": [STATION[a] for _, a, _ in rows],
            "in_mine": [1] * len(rows), "mine_entered_at": [iso(e) for _, _, e in rows],
            "area_since": [iso(e) for _, _, e in rows],
        }  # fmt: skip
        await self._send(doc, t)


def _code(c: int | str) -> str:
    return card(c) if isinstance(c, int) else c


Episode = tuple[str, str, str, int, int | None]  # kind, code, rule, started, ended


def episodes(database_url: str, rule: str | None = None) -> list[Episode]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT subject_kind, subject_code, rule, started_at, ended_at FROM alarms "
            "WHERE %(rule)s::text IS NULL OR rule = %(rule)s ORDER BY id",
            {"rule": rule},
        ).fetchall()
    return [
        (k, c, r, _us(s), None if e is None else _us(e))  # type: ignore[misc]
        for k, c, r, s, e in rows
    ]


def _us(stamp: dt.datetime) -> int:
    return datetime_to_us(stamp)


def at(t: int) -> dt.datetime:
    return us_to_datetime(t)

"""The personnel and output alarms of the feed pipeline: the glue between the presence state,
the rules (alarms/rules/personnel.py, alarms/rules/output.py) and their store.

The feed writer owns one :class:`FeedAlarms`. For a write batch it evaluates the personnel
rules after every personnel message, at that message's event time, on the presence state as
the message left it (:meth:`FeedAlarms.after_batch`); the changes are stored in the batch's
transaction and committed to the in-memory state only once it is durable. The writer's clock
(:meth:`FeedAlarms.tick`, on the pipeline's periodic task) evaluates what arises without a
message: overtime, and output over capacity once output readings were stored (they travel in
the safety feed; this check reads them back, see docs/alarms.md).

Limits and definitions (``mines`` columns, current areas and leaders) are reloaded on every
tick and after each personnel definition, so a limit changed in the database applies within
one tick.
"""

from __future__ import annotations

import logging

import numpy as np
import psycopg

from minewatch.alarms.output_store import output_crossings, output_mines
from minewatch.alarms.rules import output as output_rules
from minewatch.alarms.rules.personnel import (
    OVERTIME,
    AlarmUpdate,
    AreaInfo,
    MineLimits,
    PersonnelAlarms,
    SosReport,
    Underground,
)
from minewatch.alarms.subject_store import (
    load_mine_limits,
    load_personnel_definitions,
    load_subject_alarms,
    write_subject_changes,
)
from minewatch.ingest.feeds.contract import FLAG_UNKNOWN, FeedBatch
from minewatch.ingest.feeds.presence import Presence, PresenceTracker, Update
from minewatch.ingest.feeds.repository import latest_output_alarms
from minewatch.timeutil import datetime_to_us, us_to_datetime

log = logging.getLogger(__name__)


class FeedAlarms:
    def __init__(self) -> None:
        self.state = PersonnelAlarms()
        self.limits: dict[str, MineLimits] = {}
        self.areas: dict[str, dict[str, AreaInfo]] = {}
        self.leaders: set[tuple[str, str]] = set()
        self.output_checked: dict[str, int] = {}  # mine -> latest output reading checked (µs)
        # (mine, rule) -> start of the latest period that had its over-capacity episode
        self.output_done: dict[tuple[str, str], int] = {}
        self._base: dict[str, dict[str, Presence]] = {}  # per attempt: committed, per mine

    async def load(self, conn: psycopg.AsyncConnection) -> None:
        """State and limits as stored (at start)."""
        self.state = await load_subject_alarms(conn)
        self.output_done = await _output_done(conn)
        await self.reload(conn)

    async def reload(self, conn: psycopg.AsyncConnection) -> None:
        self.limits = await load_mine_limits(conn)
        self.areas, self.leaders = await load_personnel_definitions(conn)

    # -- message-driven ------------------------------------------------------------------

    def begin(self) -> AlarmUpdate:
        self._base = {}
        return self.state.begin()

    def after_batch(
        self, tracker: PresenceTracker, presence: Update, batch: FeedBatch, alarms: AlarmUpdate
    ) -> None:
        """Evaluate the mine's personnel rules on the state ``batch`` left (pure)."""
        if batch.kind not in ("positions", "snapshot") or batch.mine not in self.limits:
            return
        times = batch.columns["time_us"]
        t = batch.time_us if batch.kind == "snapshot" or not len(times) else int(times.max())
        current = self._current(tracker, presence, batch.mine)
        alarms.evaluate_personnel(
            batch.mine, t, self._columns(batch.mine, current), self.limits[batch.mine],
            self.areas.get(batch.mine, {}), _sos_reports(batch), current.get,
        )  # fmt: skip

    def _current(
        self, tracker: PresenceTracker, presence: Update | None, mine: str
    ) -> dict[str, Presence]:
        """Every card of ``mine`` as the state stands (committed, plus the update's changes)."""
        base = self._base.get(mine)
        if base is None:
            base = self._base[mine] = {k[1]: p for k, p in tracker.state.items() if k[0] == mine}
        changed = presence.changed_of(mine) if presence is not None else {}
        return {**base, **changed} if changed else base

    def _columns(self, mine: str, current: dict[str, Presence]) -> Underground:
        down = [(c, p) for c, p in current.items() if p.underground and p.entered_at is not None]
        exits = [
            p.left_at
            for c, p in current.items()
            if not p.underground and p.left_at is not None and (mine, c) in self.leaders
        ]
        if not down:
            return Underground.empty()
        cards = np.empty(len(down), dtype=object)
        cards[:] = [c for c, _ in down]
        areas = np.empty(len(down), dtype=object)
        areas[:] = [p.area for _, p in down]
        return Underground(
            cards,
            np.fromiter((p.entered_at for _, p in down), np.int64, len(down)),
            areas,
            np.fromiter((p.area_since for _, p in down), np.int64, len(down)),
            np.fromiter(((mine, c) in self.leaders for c, _ in down), bool, len(down)),
            max(exits, default=None),
        )

    def commit(self, alarms: AlarmUpdate) -> None:
        self.state.commit(alarms)
        self._base = {}

    # -- clock-driven --------------------------------------------------------------------

    async def tick(
        self, conn: psycopg.AsyncConnection, tracker: PresenceTracker, now_us: int
    ) -> AlarmUpdate:
        """Evaluate at ``now_us`` what needs no message (overtime, output), store it in one
        transaction and return the update (the caller commits it)."""
        async with conn.transaction():  # one transaction: what was read is what is decided on
            await self.reload(conn)
            alarms = self.begin()
            mines = {k[0] for k, p in tracker.state.items() if p.underground}
            mines |= {e.mine for e in self.state.open.values()}
            for mine in sorted(mines & set(self.limits)):
                current = self._current(tracker, None, mine)
                people = self._columns(mine, current)
                alarms.evaluate_clock(mine, now_us, people, self.limits[mine], current.get)
            checked, done = await self._check_output(conn, alarms, now_us)
            async with conn.cursor() as cur:
                await write_subject_changes(cur, alarms.changes)
        self.output_checked.update(checked)
        self.output_done.update(done)
        return alarms

    async def _check_output(
        self, conn: psycopg.AsyncConnection, alarms: AlarmUpdate, now_us: int
    ) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
        checked, done = {}, {}
        for m in await output_mines(conn):
            latest = None if m.latest is None else datetime_to_us(m.latest)
            last = self.output_checked.get(m.mine)
            fresh = latest is not None and latest != last
            for rule, share in ((output_rules.OUTPUT_MONTH, m.month_share),
                                (output_rules.OUTPUT_YEAR, m.year_share)):  # fmt: skip
                limit = None if m.capacity_t is None else round(m.capacity_t * share, 3)
                periods = []
                if fresh and limit is not None:
                    assert latest is not None
                    period = output_rules.PERIOD_OF[rule]
                    since = latest if last is None else min(last, latest)
                    start = output_rules.period_start(since, period, m.timezone)
                    periods = await output_crossings(
                        conn, m.mine, period, us_to_datetime(start), us_to_datetime(latest + 1),
                        m.timezone, limit,
                    )  # fmt: skip
                now = max(now_us, latest or now_us)
                last_done = self.output_done.get((m.mine, rule))
                new_done = output_rules.evaluate_output(
                    alarms, m.mine, rule, limit, periods, now, m.timezone, last_done
                )
                if new_done is not None:
                    done[(m.mine, rule)] = new_done
            if latest is not None:
                checked[m.mine] = latest
        return checked, done


async def _output_done(conn: psycopg.AsyncConnection) -> dict[tuple[str, str], int]:
    """Per (mine, output rule): the period of its latest episode (after a restart)."""
    latest = await latest_output_alarms(conn, list(output_rules.RULES))
    return {
        (mine, rule): output_rules.period_start(
            datetime_to_us(started), output_rules.PERIOD_OF[rule], tz
        )
        for mine, rule, started, tz in latest
    }


def _sos_reports(batch: FeedBatch) -> list[SosReport]:
    flags = batch.columns.get("sos")
    if flags is None:
        return []
    rows = np.flatnonzero(flags != FLAG_UNKNOWN)
    if not len(rows):
        return []
    times = batch.columns["time_us"]
    if batch.kind == "snapshot":
        times = np.full(len(flags), batch.time_us, np.int64)
    order = rows[np.argsort(times[rows], kind="stable")]
    cards = batch.columns["cards"]
    return [SosReport(int(times[i]), str(cards[i]), bool(flags[i])) for i in order.tolist()]


__all__ = ["OVERTIME", "FeedAlarms"]

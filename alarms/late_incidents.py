"""Incidents of the episodes late readings reveal (:mod:`.late_store`), as live ones join.

An episode computed late is grouped in event time by the same rules as a live one
(:class:`.incidents.IncidentTracker`): it joins an incident that was open at its raise (one
the live engine still holds open, or one stored and closed since, whose end then moves to the
last member's end), or opens one of its own, ``computed_late``, closed at once when its
off-delay has passed the watermark (else the live tracker holds it until it has). The live
tracker (the evaluation's copy, adopted on commit) is kept in step: incidents it holds that
late episodes join stay in it, and a correction that moved an episode's start moves its
member (and the key of the incident it is the root of). Runs in the write batch's transaction,
after the live changes were written.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import psycopg

from minewatch.alarms.engine import AlarmEngine, Evaluation
from minewatch.alarms.episodes import EpisodeChange
from minewatch.alarms.incidents import (
    NEVER,
    Incident,
    IncidentChange,
    IncidentTracker,
    Member,
)
from minewatch.alarms.late_store import LateOutcome
from minewatch.alarms.store import write_incidents
from minewatch.registry import PointRegistry
from minewatch.timeutil import now_us, us_to_datetime

_CLOSED = """
SELECT i.root_point_id, i.root_rule, (EXTRACT(EPOCH FROM i.started_at) * 1000000)::bigint,
       i.category, i.grade, i.peak_value, (EXTRACT(EPOCH FROM i.peak_at) * 1000000)::bigint,
       i.peak_point_id, (EXTRACT(EPOCH FROM i.ended_at) * 1000000)::bigint,
       a.point_id, a.rule, a.classification,
       (EXTRACT(EPOCH FROM a.started_at) * 1000000)::bigint,
       -- an episode computed late was raised, in event time, at its start
       (EXTRACT(EPOCH FROM CASE WHEN a.computed_late THEN a.started_at
                                ELSE coalesce(a.raised_at, a.started_at) END) * 1000000)::bigint,
       (EXTRACT(EPOCH FROM a.ended_at) * 1000000)::bigint, a.max_value,
       (EXTRACT(EPOCH FROM a.max_at) * 1000000)::bigint
FROM incidents i JOIN incident_members m ON m.incident_id = i.id JOIN alarms a ON a.id = m.alarm_id
WHERE i.ended_at IS NOT NULL AND i.mine_code = ANY(%(mines)s)
  AND i.started_at <= %(hi)s AND i.ended_at >= %(lo)s
ORDER BY i.raised_at, i.id, a.raised_at, a.id
"""


async def with_late(
    cur: psycopg.AsyncCursor,
    engine: AlarmEngine,
    evaluation: Evaluation,
    late: LateOutcome,
    registry: PointRegistry,
) -> Evaluation:
    """``evaluation`` (whose changes are written) with its incident tracker brought in step
    with what ``late`` inserted and moved; the incidents they open or join are written, in
    the cursor's transaction. ``engine.commit`` adopts the tracker."""
    if not late.inserted and not late.moved:
        return evaluation
    tracker = (evaluation.tracker or engine.incidents).copy()
    move_starts(tracker, late.moved)
    watermark = now_us() - engine.defaults.lateness_us
    changes = await group_late(cur, registry, tracker, late.inserted, watermark)
    if changes:
        await write_incidents(cur, changes, registry, computed_late=True)
    return replace(evaluation, tracker=tracker)


def move_starts(tracker: IncidentTracker, moved: list[tuple[int, str, int, int]]) -> None:
    """Members (and roots' keys) of ``tracker``'s open incidents whose episode start a
    correction moved: ``(point, rule, old start, new start)``."""
    for point, rule, old, new in moved:
        tracker.move_start(point, rule, old, new)


async def group_late(
    cur: psycopg.AsyncCursor,
    registry: PointRegistry,
    tracker: IncidentTracker,
    inserted: list[EpisodeChange],
    watermark_us: int,
) -> list[IncidentChange]:
    """The incidents ``inserted`` (ended episodes computed late) open or join; ``tracker`` (the
    live one) keeps the open incidents it held and those not due to close yet."""
    if not inserted:
        return []
    topo = tracker.topology
    off = max([topo.off_delay_us, *topo.point_off_delay_us.values()])
    starts = [c.started_at_us for c in inserted if c.started_at_us is not None]
    ends = [c.ended_at_us for c in inserted if c.ended_at_us is not None]
    mines = sorted({str(registry.mine_code[c.point_id]) for c in inserted})
    await cur.execute(_CLOSED, {
        "mines": mines, "lo": us_to_datetime(min(starts) - off),
        "hi": us_to_datetime(max(ends + starts) + off),
    })  # fmt: skip
    live = {i.key for i in tracker.open}
    closed = [i for i in _incidents(await cur.fetchall()) if i.key not in live]
    was_closed = {i.key: i.closed_at_us for i in closed}
    tracker.adopt(closed)  # after the open ones: as before, the earliest open one is joined
    touched = tracker.apply(inserted, NEVER)  # nothing closes at NEVER
    done = []
    for incident in tracker.open:
        if incident.key in live:
            continue
        end = incident.last_end()
        before = was_closed.get(incident.key)
        if before is not None:  # stored closed: its end moves to its last member's
            incident.closed_at_us = max(before, end if end is not None else before)
        elif end is not None and end + topo.off_delay_of(incident) < watermark_us:
            incident.closed_at_us = end  # opened late and already over
        else:
            continue  # the live tracker closes it when its off-delay is over
        done.append(incident.key)
    tracker.drop(done)
    return touched


def _incidents(rows: Sequence[Sequence[Any]]) -> list[Incident]:
    found: dict[tuple[int, str, int], Incident] = {}
    for r in rows:
        key = (int(r[0]), str(r[1]), int(r[2]))
        if key not in found:
            found[key] = Incident(
                key, str(r[3]), [], str(r[4]),
                peak=-math.inf if r[5] is None else float(r[5]),
                peak_at_us=NEVER if r[6] is None else int(r[6]),
                peak_point=None if r[7] is None else int(r[7]),
                closed_at_us=int(r[8]),
            )  # fmt: skip
        found[key].members.append(
            Member(int(r[9]), str(r[10]), None if r[11] is None else str(r[11]), int(r[12]),
                   int(r[13]), None if r[14] is None else int(r[14]),
                   -math.inf if r[15] is None else float(r[15]),
                   NEVER if r[16] is None else int(r[16]))
        )  # fmt: skip
    return list(found.values())

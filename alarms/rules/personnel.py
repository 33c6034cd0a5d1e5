"""Personnel alarms (人员定位报警, domain §8) as pure functions over the positioning state.

Six rules, each an episode per subject from raise to clear (like a YCBJ record), evaluated by
the feed writer after every personnel message, at that message's event time, and by its clock
(overtime arises while nobody reports):

========================  =======  ==========  =================================================
rule                      subject  type        condition (limits are data: ``mines``, areas)
========================  =======  ==========  =================================================
``overtime``              person   P01 超时      underground longer than ``max_underground_h``
``area_overcrowding``     area     P02 区域超员   head-count > the area's 核定人数 (RYQY)
``mine_overcrowding``     mine     P03 矿井超员   people underground > ``max_underground_people``
``restricted_area``       person   P04 限制区域   in an area of type 限制区域
``sos``                   person   P05 求救      the card reported ``sos`` true, until false/exit
``leader_absent``         mine     P06 带班空岗   a shift has workers underground and no leader
========================  =======  ==========  =================================================

"Over" is strict: exactly at a limit is not an alarm. The conditions are computed on columns
(numpy arrays over the cards underground); the per-subject state is the set of open episodes,
so a condition that holds again (a repeated snapshot) raises nothing new. Nothing here does
I/O: :class:`PersonnelAlarms` is the committed state, :class:`AlarmUpdate` the changes of one
write batch, committed once stored (the presence tracker's pattern).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal, Protocol
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

US = 1_000_000
HOUR_US = 3600 * US
DAY_S = 86_400

OVERTIME = "overtime"
AREA_OVERCROWDING = "area_overcrowding"
MINE_OVERCROWDING = "mine_overcrowding"
RESTRICTED_AREA = "restricted_area"
SOS = "sos"
LEADER_ABSENT = "leader_absent"

SubjectKind = Literal["person", "area", "mine"]


@dataclass(frozen=True, slots=True)
class RuleInfo:
    abnormal_type: str  # minewatch codes: P = personnel, Q = output (not in the YCBJ table)
    classification: str
    subject_kind: SubjectKind
    category: str  # who the alarm is for (the ``category`` of the live events)


#: rule name -> what its episodes are. The output rules live in alarms/rules/output.py.
RULES: dict[str, RuleInfo] = {
    OVERTIME: RuleInfo("P01", "exceedance", "person", "personnel"),
    AREA_OVERCROWDING: RuleInfo("P02", "exceedance", "area", "personnel"),
    MINE_OVERCROWDING: RuleInfo("P03", "exceedance", "mine", "personnel"),
    RESTRICTED_AREA: RuleInfo("P04", "violation", "person", "personnel"),
    SOS: RuleInfo("P05", "distress", "person", "personnel"),
    LEADER_ABSENT: RuleInfo("P06", "violation", "mine", "personnel"),
}

#: (subject kind, subject code, rule): one open episode at most per key.
Key = tuple[str, str, str]


# -- inputs -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MineLimits:
    """A mine's limits (``mines`` columns); None switches the rule off."""

    max_underground_us: int | None = None
    max_people: int | None = None
    shift_starts_h: tuple[int, ...] | None = None
    timezone: str = "Asia/Shanghai"


@dataclass(frozen=True, slots=True)
class AreaInfo:
    type: str  # shaft / key / restricted / other
    approved: int | None  # 核定人数


@dataclass(frozen=True, slots=True)
class Underground:
    """The cards of one mine underground at the evaluation time, as equal-length columns."""

    cards: npt.NDArray[np.object_]
    entered_at: npt.NDArray[np.int64]
    areas: npt.NDArray[np.object_]
    area_since: npt.NDArray[np.int64]
    leader: npt.NDArray[np.bool_]
    leader_left_at: int | None = None  # the latest exit of a leader of the mine

    def __post_init__(self) -> None:
        n = len(self.cards)
        if any(len(c) != n for c in (self.entered_at, self.areas, self.area_since, self.leader)):
            raise ValueError("columns of different lengths")

    @classmethod
    def empty(cls) -> Underground:
        objects = np.empty(0, dtype=object)
        times = np.empty(0, np.int64)
        return cls(objects, times, objects, times, np.empty(0, bool))


class Place(Protocol):
    """What a clear needs to know of a card (ingest.feeds.presence.Presence has it)."""

    @property
    def underground(self) -> bool: ...
    @property
    def left_at(self) -> int | None: ...
    @property
    def area(self) -> str: ...
    @property
    def area_since(self) -> int: ...
    @property
    def entered_at(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class SosReport:
    time_us: int
    card: str
    calling: bool


# -- the rules as functions over columns ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Condition:
    started_at: int
    value: float
    threshold: float | None


def overtime(
    entered_at: npt.NDArray[np.int64], t: int, limit_us: int
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.int64]]:
    """(over the limit at ``t``, the instant each crossed it: entry + limit)."""
    return (t - entered_at) > limit_us, entered_at + limit_us


def area_overcrowding(
    areas: npt.NDArray[np.object_], area_since: npt.NDArray[np.int64],
    approved: dict[str, int],
) -> list[tuple[str, int, int, int]]:  # fmt: skip
    """(area, head-count, 核定人数, arrival that made it too many) for each area over its
    approved count. The arrival is the (approved + 1)-th earliest ``area_since`` there."""
    if not len(areas) or not approved:
        return []
    codes, inverse, counts = np.unique(areas.astype(str), return_inverse=True, return_counts=True)
    limit = np.array([approved.get(c, -1) for c in codes.tolist()], np.int64)
    over = np.flatnonzero((limit >= 0) & (counts > limit))
    out = []
    for i in over.tolist():
        since = np.sort(area_since[inverse == i])
        out.append((str(codes[i]), int(counts[i]), int(limit[i]), int(since[limit[i]])))
    return out


def mine_overcrowding(entered_at: npt.NDArray[np.int64], quota: int) -> tuple[int, int] | None:
    """(people underground, the entry that made them too many) when over the quota."""
    if len(entered_at) <= quota:
        return None
    return len(entered_at), int(np.partition(entered_at, quota)[quota])


def restricted(
    areas: npt.NDArray[np.object_], restricted_codes: Iterable[str]
) -> npt.NDArray[np.bool_]:
    """Which cards are in a 限制区域."""
    codes = list(restricted_codes)
    if not codes or not len(areas):
        return np.zeros(len(areas), bool)
    return np.isin(areas.astype(str), np.array(codes, dtype=str))


def nearest_shift_start(
    times_us: npt.NDArray[np.int64], shift_starts_h: tuple[int, ...], utc_offset_s: int
) -> npt.NDArray[np.int64]:
    """The epoch second of the shift start nearest to each time (a crew goes down shortly
    before its shift). Shift starts are local hours; the UTC offset is taken as constant over
    the few hours concerned (exact for China, which has no daylight saving)."""
    local_s = times_us // US + utc_offset_s
    midnight = local_s - local_s % DAY_S
    hours = np.array(shift_starts_h, np.int64) * 3600
    # The day's starts, the previous day's last and the next day's first.
    offsets = np.concatenate(([hours[-1] - DAY_S], hours, [hours[0] + DAY_S]))
    candidates = midnight[:, None] + offsets[None, :]
    best = np.argmin(np.abs(candidates - local_s[:, None]), axis=1)
    starts: npt.NDArray[np.int64] = candidates[np.arange(len(local_s)), best] - utc_offset_s
    return starts


def leader_absent(
    entered_at: npt.NDArray[np.int64], leader: npt.NDArray[np.bool_],
    shift_starts_h: tuple[int, ...], utc_offset_s: int,
) -> tuple[int, int] | None:  # fmt: skip
    """(workers of shifts without a leader underground, the earliest of their entries), or
    None when every shift with workers underground has one of its own leaders down too."""
    if not len(entered_at):
        return None
    shift = nearest_shift_start(entered_at, shift_starts_h, utc_offset_s)
    uncovered = ~leader & ~np.isin(shift, shift[leader])
    if not uncovered.any():
        return None
    return int(uncovered.sum()), int(entered_at[uncovered].min())


def utc_offset_s(timezone: str, t_us: int) -> int:
    offset = dt.datetime.fromtimestamp(t_us / US, ZoneInfo(timezone)).utcoffset()
    return 0 if offset is None else int(offset.total_seconds())


def conditions(
    mine: str, t: int, people: Underground, limits: MineLimits, areas: dict[str, AreaInfo],
    floor: int | None, only_overtime: bool = False,
) -> dict[Key, Condition]:  # fmt: skip
    """Every personnel condition that holds at ``t`` except SOS (which follows reports).

    ``floor`` is the previous evaluation of the mine: a count-based condition found now began
    after it, so its start is the evidence (an arrival, an entry) but not earlier than that."""

    def since(evidence: int) -> int:
        return min(t, evidence if floor is None else max(evidence, floor))

    out: dict[Key, Condition] = {}
    if limits.max_underground_us is not None:
        over, crossed = overtime(people.entered_at, t, limits.max_underground_us)
        hours = limits.max_underground_us / HOUR_US
        for i in np.flatnonzero(over).tolist():
            value = (t - int(people.entered_at[i])) / HOUR_US
            out[("person", people.cards[i], OVERTIME)] = Condition(int(crossed[i]), value, hours)
    if only_overtime:
        return out
    approved = {c: a.approved for c, a in areas.items()
                if a.approved is not None and a.type != "restricted"}  # fmt: skip
    for area, count, limit, arrival in area_overcrowding(people.areas, people.area_since, approved):
        out[("area", area, AREA_OVERCROWDING)] = Condition(since(arrival), count, limit)
    if limits.max_people is not None:
        found = mine_overcrowding(people.entered_at, limits.max_people)
        if found is not None:
            count, entry = found
            out[("mine", mine, MINE_OVERCROWDING)] = Condition(since(entry), count,
                                                               limits.max_people)  # fmt: skip
    inside = restricted(people.areas, (c for c, a in areas.items() if a.type == "restricted"))
    for i in np.flatnonzero(inside).tolist():
        out[("person", people.cards[i], RESTRICTED_AREA)] = Condition(
            int(people.area_since[i]), 1.0, None
        )
    if limits.shift_starts_h:
        offset = utc_offset_s(limits.timezone, t)
        found = leader_absent(people.entered_at, people.leader, limits.shift_starts_h, offset)
        if found is not None:
            workers, first = found
            # Begun at the first entry of a crew without leader, or when a leader came up
            # since the previous evaluation (which found the shift covered).
            left = people.leader_left_at
            if left is not None and left <= t and (floor is None or left > floor):
                first = max(first, left)
            out[("mine", mine, LEADER_ABSENT)] = Condition(since(first), workers, None)
    return out


# -- episodes: the per-subject state ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenEpisode:
    mine: str
    started_at: int
    max_value: float
    raised_at: int  # when a rule saw it (the condition held then)


@dataclass(frozen=True, slots=True)
class SubjectChange:
    """One stored change of a subject alarm: ``raised`` (insert), ``updated`` (a new maximum)
    or ``cleared`` (ended); ``time_us`` is the start, the maximum's time or the end."""

    mine: str
    kind: str
    code: str
    rule: str
    event: Literal["raised", "updated", "cleared"]
    time_us: int
    value: float | None = None
    threshold: float | None = None
    raised_at_us: int | None = None  # when the rule saw it (event or clock time)

    @property
    def key(self) -> Key:
        return (self.kind, self.code, self.rule)


@dataclass
class PersonnelAlarms:
    """Open subject episodes (personnel and output rules) and, per mine, when the personnel
    rules last ran (event time); :meth:`begin` an update, :meth:`commit` it once stored."""

    open: dict[Key, OpenEpisode] = field(default_factory=dict)
    evaluated_at: dict[str, int] = field(default_factory=dict)

    def begin(self) -> AlarmUpdate:
        return AlarmUpdate(self)

    def commit(self, update: AlarmUpdate) -> None:
        for key, episode in update.changed.items():
            if episode is None:
                self.open.pop(key, None)
            else:
                self.open[key] = episode
        self.evaluated_at.update(update.evaluated_at)


class AlarmUpdate:
    """Episode changes on top of the committed state, not yet stored."""

    def __init__(self, base: PersonnelAlarms) -> None:
        self._base = base
        self.changed: dict[Key, OpenEpisode | None] = {}
        self.evaluated_at: dict[str, int] = {}
        self.changes: list[SubjectChange] = []

    def get(self, key: Key) -> OpenEpisode | None:
        return self.changed[key] if key in self.changed else self._base.open.get(key)

    def open_keys(self, mine: str, rules: Iterable[str]) -> list[Key]:
        wanted = set(rules)
        keys = set(self._base.open) | set(self.changed)
        found = [k for k in keys if k[2] in wanted and (e := self.get(k)) and e.mine == mine]
        return sorted(found)

    def last_evaluated(self, mine: str) -> int | None:
        return self.evaluated_at.get(mine, self._base.evaluated_at.get(mine))

    def raise_(self, mine: str, key: Key, condition: Condition, seen_at: int) -> bool:
        if self.get(key) is not None:
            return False
        self.changed[key] = OpenEpisode(mine, condition.started_at, condition.value, seen_at)
        self.changes.append(SubjectChange(
            mine, *key, "raised", condition.started_at, condition.value, condition.threshold,
            seen_at,
        ))  # fmt: skip
        return True

    def note_value(self, key: Key, value: float, at: int) -> None:
        """A count-based episode that holds on: a new maximum is stored."""
        episode = self.get(key)
        if episode is not None and value > episode.max_value:
            self.changed[key] = OpenEpisode(episode.mine, episode.started_at, value,
                                            episode.raised_at)  # fmt: skip
            self.changes.append(SubjectChange(episode.mine, *key, "updated", at, value))

    def clear(self, key: Key, at: int) -> bool:
        episode = self.get(key)
        if episode is None:
            return False
        self.changed[key] = None
        end = max(at, episode.started_at)
        self.changes.append(SubjectChange(episode.mine, *key, "cleared", end))
        return True

    # -- the personnel rules -----------------------------------------------------------

    def evaluate_personnel(
        self, mine: str, t: int, people: Underground, limits: MineLimits,
        areas: dict[str, AreaInfo], reports: list[SosReport],
        place_of: Callable[[str], Place | None],
    ) -> None:  # fmt: skip
        """Bring the mine's personnel episodes in line with the state at ``t``, the event
        time of a message (never before the previous evaluation of the mine). ``reports`` are
        the message's SOS flags in time order; ``place_of`` gives a card's current place (for
        the exact time an episode ended: the exit, the move out of a restricted area)."""
        floor = self.last_evaluated(mine)
        t = t if floor is None else max(t, floor)
        found = conditions(mine, t, people, limits, areas, floor)
        self._apply(mine, t, t, found, set(RULES) - {SOS}, limits, place_of)
        self._sos(mine, t, reports, place_of)
        self.evaluated_at[mine] = t

    def evaluate_clock(
        self, mine: str, now: int, people: Underground, limits: MineLimits,
        place_of: Callable[[str], Place | None],
    ) -> None:  # fmt: skip
        """What arises with time alone, at the clock's ``now``: overtime. The mine's event
        time (the floor of the message-driven rules) is left as it is."""
        found = conditions(mine, now, people, limits, {}, None, only_overtime=True)
        self._apply(mine, now, now, found, {OVERTIME}, limits, place_of)

    def _apply(
        self, mine: str, t: int, seen: int, found: dict[Key, Condition], rules: set[str],
        limits: MineLimits, place_of: Callable[[str], Place | None],
    ) -> None:  # fmt: skip
        for key in self.open_keys(mine, rules):
            if key in found:
                continue
            if key[2] == OVERTIME and self._overtime_holds(key, t, limits, place_of):
                continue
            self.clear(key, _end_time(key, t, place_of))
        for key, condition in found.items():
            if not self.raise_(mine, key, condition, seen) and key[2] != OVERTIME:
                self.note_value(key, condition.value, t)

    def _overtime_holds(
        self, key: Key, t: int, limits: MineLimits, place_of: Callable[[str], Place | None]
    ) -> bool:
        """An open overtime episode found at a time before the one it was raised at (the
        clock raised it, the message is older): it still holds at its raise time if the card
        is still on that trip and the limit still says so."""
        episode, place = self.get(key), place_of(key[1])
        if episode is None or place is None or limits.max_underground_us is None:
            return False
        entered = place.entered_at
        if not place.underground or entered is None or entered > episode.started_at:
            return False
        return max(t, episode.raised_at) - entered > limits.max_underground_us

    def _sos(
        self, mine: str, t: int, reports: list[SosReport], place_of: Callable[[str], Place | None]
    ) -> None:
        seen = t
        for report in reports:
            key = ("person", report.card, SOS)
            if report.calling:
                self.raise_(mine, key, Condition(report.time_us, 1.0, None), seen)
            else:
                self.clear(key, report.time_us)
        for key in self.open_keys(mine, (SOS,)):
            place = place_of(key[1])
            episode = self.get(key)
            assert episode is not None
            if (place is None or not place.underground) and (
                place is None or (place.left_at or t) > episode.started_at
            ):
                self.clear(key, t if place is None else (place.left_at or t))


def _end_time(key: Key, t: int, place_of: Callable[[str], Place | None]) -> int:
    """When a person's condition ended: the exit, or for a restricted area the move out."""
    kind, code, rule = key
    if kind != "person":
        return t
    place = place_of(code)
    if place is None:
        return t
    if not place.underground:
        return place.left_at if place.left_at is not None else t
    if rule == RESTRICTED_AREA:
        return place.area_since
    return t

"""Incidents: the alarms of one physical event, grouped for the dispatcher (issue 13).

The per-point alarm records (``alarms``, :mod:`alarms.episodes`) stay exactly as the regulation
defines them. Above them, an **incident** groups the alarms that belong to one event:

* the alarms of one point's excursion (HI -> HIHI -> power-off -> 馈电 -> restore), and every
  later alarm of that point while the incident is open (a hovering gas is one incident);
* alarms of points downstream on the same airflow path (``points.downstream``: the points the
  air of a point reaches, with the transport delay) that start after a member's start and no
  later than that member's end plus the transport delay plus the incident's off-delay;
* fused cross-system alarms (:mod:`alarms.rules.fusion`) and the alarms about the air of an
  area (a fan stopped, a duct without air: :data:`AREA_RULES`) with the gas alarms of the same
  area (``points.area_code``);
* one fault on every point of a substation (:data:`SUBSTATION_RULES`, starts within the
  off-delay of each other);
* an ``over_range`` with its point's gas excursion.

Otherwise only alarms of one category join one incident (a disconnection is not the gas
event), and the air carries gas only; record-only rules (declared calibrations, interference
spikes) make no incident.

An incident has a root (its first alarm), members, a grade that only rises while it is open
(the highest grade of its members, ``alarm_grade_rules``), and a peak (the highest reading of
its members on points of the root's sensor type). It **closes** once every member has ended
and none has been raised for ``off_delay`` after the last end (ISA-18.2's off-delay; per mine,
``mines.incident_off_delay_s``, default :data:`DEFAULT_OFF_DELAY_S`). Its end is the last
member's end; the close is announced once the event-time watermark (the latest reading less the
allowed lateness, or the clock less it) has passed ``end + off_delay``, so no alarm that could
still join is missing.

Decisions are in event time: an alarm joins an incident that is open at the alarm's
``raised_at`` (the moment the dispatcher would see it), whatever the batches. The same episodes
in any batching give the same incidents as long as every reading arrives within the allowed
lateness (``tests/alarms/test_batch_invariance.py``). :func:`group` is the whole-history form
(``minewatch evaluate``, the property test's oracle); :class:`IncidentTracker` the live one
(the engine's state, copied per evaluation and adopted on commit).
"""

from __future__ import annotations

import bisect
import copy
import heapq
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from minewatch.alarms.codes import Category, category_of
from minewatch.alarms.episodes import Episode, EpisodeChange
from minewatch.registry import PointRegistry

#: ISA-18.2 practice for the off-delay of an alarm group: 60 s (a per-mine setting).
DEFAULT_OFF_DELAY_S = 60.0
NEVER = -(2**62)
GRADE_RANK = {"blue": 1, "yellow": 2, "orange": 3, "red": 4}
FUSED_RULES = frozenset(
    {"gas_people", "gas_camera_offline", "fan_stop_gas_rise", "co_fire_confirmed"}
)
#: Alarms about the air of a whole area: a stopped fan or a duct without air explains the gas
#: and the low wind of its area, as the fused alarms do.
AREA_RULES = FUSED_RULES | {"fan_stop", "main_fan_stop", "duct_no_wind"}
#: Maintenance alarms that one fault raises on every point of a substation.
SUBSTATION_RULES = frozenset({"substation_fault", "data_interruption"})
#: A maintenance alarm that is part of its point's gas excursion (gas beyond the range).
EXCURSION_RULES = frozenset({"over_range"})
#: The default grades of ``alarm_grade_rules`` (migrations 0005, 0010, 0017, 0030), for the
#: evaluation which has no database; ``tests/alarms/test_incidents.py`` checks they agree.
DEFAULT_GRADES: dict[tuple[str, str], str] = {
    ("power_off", "*"): "red",
    ("feed_abnormal", "*"): "red",
    ("upper_alarm", "*"): "orange",
    ("lower_alarm", "*"): "orange",
    ("upper_alarm", "calibration_undeclared"): "yellow",
    ("power_off", "calibration_undeclared"): "yellow",
    ("upper_prewarn", "*"): "yellow",
    ("lower_prewarn", "*"): "yellow",
    ("main_fan_stop", "*"): "red",
    ("smoke", "*"): "red",
    ("fan_stop", "*"): "orange",
    ("duct_no_wind", "*"): "orange",
    ("gas_people", "*"): "red",
    ("fan_stop_gas_rise", "*"): "red",
    ("gas_camera_offline", "*"): "orange",
    ("upper_alarm", "co_vehicle_suspected"): "yellow",
    ("co_fire_candidate", "*"): "red",
    ("co_fire_confirmed", "*"): "red",
    **{
        (rule, "*"): "blue"
        for rule in (
            "calibration",
            "interference",
            "disconnection",
            "over_range",
            "substation_fault",
            "negative_drift",
            "flatline",
            "data_interruption",
            "cross_check",
            "sensor_stuck",
            "local_excursion",
        )
    },
    ("*", "*"): "yellow",
}
#: Categories that make incidents: what a dispatcher or the maintenance staff is shown.
SHOWN = frozenset({Category.GAS, Category.MAINTENANCE})
#: Classifications that are records only (no incident), whatever the rule.
RECORD_ONLY = frozenset({"calibration_declared", "calibration_flagged", "interference"})


def grade_of(rule: str, classification: str | None, grades: Mapping[tuple[str, str], str]) -> str:
    """The grade of an alarm, as ``alarm_grade_rules`` gives it (most specific row wins)."""
    c = classification or "exceedance"
    for key in ((rule, c), (rule, "*"), ("*", c), ("*", "*")):
        if key in grades:
            return grades[key]
    return "blue"


@dataclass(frozen=True, slots=True)
class Topology:
    """What grouping needs to know of the points (indexed by point id)."""

    area: Mapping[int, str | None]
    sensor_type: Mapping[int, str | None]
    downstream: Mapping[int, Mapping[int, int]]  # point -> {reached point: delay in us}
    substation: Mapping[int, str | None] = field(default_factory=dict)
    off_delay_us: int = round(DEFAULT_OFF_DELAY_S * 1e6)
    grades: Mapping[tuple[str, str], str] = field(default_factory=lambda: DEFAULT_GRADES)
    #: per point: its mine's off-delay (``mines.incident_off_delay_s``) where it is set
    point_off_delay_us: Mapping[int, int] = field(default_factory=dict)

    def off_delay_of(self, incident: Incident) -> int:
        """The off-delay of an incident: its root's mine's, else the default."""
        return self.point_off_delay_us.get(incident.key[0], self.off_delay_us)

    @classmethod
    def from_registry(
        cls, registry: PointRegistry, off_delay_s: Mapping[str, float] | None = None
    ) -> Topology:
        """From the registry's points (``downstream``, ``area_code``, ``substation_code``) and
        each mine's off-delay (``mines.incident_off_delay_s``; missing: the default)."""
        ids = np.flatnonzero(registry.known).tolist()
        paths = []
        for i in ids:
            for path in (registry.downstream[i] if registry.downstream is not None else None) or ():
                mine = str(registry.mine_code[i])
                target = registry.point_id(mine, str(path["target"]))
                if target >= 0:
                    paths.append((i, target, float(path.get("delay_s") or 0.0)))
        topology = cls.of(
            area={i: registry.area_code[i] for i in ids},
            sensor_type={i: registry.sensor_type[i] for i in ids},
            paths=paths,
            substation={
                i: f"{registry.mine_code[i]}/{registry.substation_code[i]}"
                for i in ids
                if registry.substation_code is not None and registry.substation_code[i]
            },
        )
        per_mine = {m: round(v * 1e6) for m, v in (off_delay_s or {}).items()}
        points = {i: per_mine[str(registry.mine_code[i])] for i in ids
                  if str(registry.mine_code[i]) in per_mine}  # fmt: skip
        return replace(topology, point_off_delay_us=points)

    @classmethod
    def of(
        cls,
        area: Mapping[int, str | None],
        sensor_type: Mapping[int, str | None],
        paths: Iterable[tuple[int, int, float]],
        off_delay_s: float | None = None,
        grades: Mapping[tuple[str, str], str] | None = None,
        substation: Mapping[int, str | None] | None = None,
    ) -> Topology:
        """From direct airflow links ``(upstream, downstream, delay_s)``: the transitive closure
        (the shortest cumulative delay to every point the air reaches)."""
        links: dict[int, list[tuple[int, int]]] = {}
        for a, b, delay in paths:
            links.setdefault(a, []).append((b, round(delay * 1e6)))
        closure: dict[int, dict[int, int]] = {}
        for start in links:
            reached: dict[int, int] = {}
            todo = [(start, 0)]
            while todo:
                here, at = todo.pop()
                for nxt, delay in links.get(here, ()):
                    if nxt != start and at + delay < reached.get(nxt, 2**62):
                        reached[nxt] = at + delay
                        todo.append((nxt, at + delay))
            closure[start] = reached
        off = DEFAULT_OFF_DELAY_S if off_delay_s is None else off_delay_s
        return cls(
            area, sensor_type, closure, substation or {}, round(off * 1e6),
            grades or DEFAULT_GRADES,
        )  # fmt: skip


Key = tuple[int, str, int]


@dataclass(slots=True)
class Member:
    point: int
    rule: str
    classification: str | None
    start_us: int
    raised_us: int
    end_us: int | None = None
    peak: float = -math.inf
    peak_at_us: int = NEVER

    def copy(self) -> Member:
        return Member(self.point, self.rule, self.classification, self.start_us,
                      self.raised_us, self.end_us, self.peak, self.peak_at_us)  # fmt: skip


@dataclass(slots=True)
class Incident:
    key: Key  # the root's (point, rule, start): stable across restarts
    category: str
    members: list[Member]
    grade: str
    peak: float = -math.inf
    peak_at_us: int = NEVER
    peak_point: int | None = None
    closed_at_us: int | None = None  # the last member's end, once closed
    #: what the tracker looks up in the members without a scan (None: not tracked)
    shape: _Shape | None = field(default=None, repr=False, compare=False)

    @property
    def root(self) -> Member:
        return self.members[0]

    @property
    def start_us(self) -> int:
        return self.root.start_us

    @property
    def raised_us(self) -> int:
        return self.root.raised_us

    def last_end(self) -> int | None:
        """The last member's end when every member has ended, else None."""
        shape = self.shape
        if shape is not None:
            return None if shape.open or shape.hidden_open else shape.last_end
        last = NEVER
        for m in self.members:  # not tracked: stop at an open member
            if m.end_us is None:
                return None
            last = max(last, m.end_us)
        return last

    def open_at(self, t_us: int, off_delay_us: int) -> bool:
        """Whether the incident is open at ``t_us``: raised, and a member not ended more than
        ``off_delay_us`` before."""
        if t_us < self.raised_us:
            return False
        shape = self.shape
        if shape is not None:
            return bool(shape.open or shape.hidden_open) or shape.last_end + off_delay_us >= t_us
        return any(m.end_us is None or m.end_us + off_delay_us >= t_us for m in self.members)

    def _clone(self, share: bool = False) -> Incident:
        """A copy to alter: a new list of the same members and its own shape (a member is
        copied when it changes: :meth:`IncidentTracker._own_member`); ``share``: a copy
        that shares them (an incident that leaves the tracker: only its end is set)."""
        if share:
            members, shape = self.members, self.shape
        else:
            members, shape = list(self.members), None if self.shape is None else self.shape.copy()
        return Incident(self.key, self.category, members, self.grade, self.peak,
                        self.peak_at_us, self.peak_point, self.closed_at_us, shape)  # fmt: skip


@dataclass(slots=True)
class _Shape:
    """An incident's members as the tracker looks them up, kept as members join and end, so
    that a change costs the same whatever the number of members (issue 14: a storm that
    recurs within the off-delay grows incidents to hundreds of members)."""

    n: int = 0  # the members described (the first ``n``)
    #: (point, rule) -> position of its first open member
    open: dict[tuple[int, str], int] = field(default_factory=dict)
    hidden_open: int = 0  # open members of a (point, rule) that has an earlier open one
    last_end: int = NEVER  # the latest end of the ended members
    points: dict[int, tuple[int, ...]] = field(default_factory=dict)  # point -> positions
    #: the starts, sorted, of the substation-rule members per (rule, substation)
    starts: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    areas: set[str] = field(default_factory=set)  # gas incidents: the members' areas
    fused_areas: set[str] = field(default_factory=set)  # ... those of an area rule's member
    topology: Topology | None = None  # the points' substations and areas it was made with

    @classmethod
    def of(cls, incident: Incident, topo: Topology) -> _Shape:
        shape = cls(topology=topo)
        for m in incident.members:
            shape.add(m, incident.category, topo)
        return shape

    def copy(self) -> _Shape:
        return _Shape(self.n, dict(self.open), self.hidden_open, self.last_end,
                      dict(self.points), {k: list(v) for k, v in self.starts.items()},
                      set(self.areas), set(self.fused_areas), self.topology)  # fmt: skip

    def add(self, m: Member, category: str, topo: Topology) -> None:
        """``m``, appended at position ``n``."""
        pos, self.n = self.n, self.n + 1
        if m.end_us is None:
            if (m.point, m.rule) in self.open:
                self.hidden_open += 1
            else:
                self.open[(m.point, m.rule)] = pos
        elif m.end_us > self.last_end:
            self.last_end = m.end_us
        self.points[m.point] = (*self.points.get(m.point, ()), pos)
        station = topo.substation.get(m.point)
        if m.rule in SUBSTATION_RULES and station is not None:
            bisect.insort(self.starts.setdefault((m.rule, station), []), m.start_us)
        area = topo.area.get(m.point)
        if category == Category.GAS and area is not None:
            self.areas.add(area)
            if m.rule in AREA_RULES:
                self.fused_areas.add(area)

    def ended(self, members: list[Member], pos: int) -> None:
        """The open member at ``pos`` has ended."""
        m = members[pos]
        assert m.end_us is not None
        self.last_end = max(self.last_end, m.end_us)
        key = (m.point, m.rule)
        if self.open.get(key) != pos:
            self.hidden_open -= 1
            return
        del self.open[key]
        if self.hidden_open:  # the next open member of the same (point, rule) comes forward
            for q in self.points[m.point]:
                other = members[q]
                if q > pos and other.rule == m.rule and other.end_us is None:
                    self.open[key] = q
                    self.hidden_open -= 1
                    return


@dataclass(frozen=True, slots=True)
class IncidentChange:
    """What happened to an incident in one evaluation: ``event`` is ``opened`` (with its root),
    ``joined`` (new members), ``updated`` (grade, peak or a member's end) or ``closed``.
    ``added``: the members this change added (the store writes only those: the others are
    stored already)."""

    key: Key
    event: str
    incident: Incident  # a snapshot after the change
    added: tuple[Member, ...] = ()


class IncidentTracker:
    """Open incidents, fed with the engine's episode changes in event time.

    Copy-on-write: :meth:`copy` shares the incidents, a change replaces an incident by a copy
    (a new list of the same members) before it alters it, and a member by a copy before it
    alters that, so an incident once published (in an :class:`IncidentChange`, or in the
    tracker an evaluation started from) never changes afterwards.

    What a batch costs follows its episode changes and the incidents that close, not the
    members of the open incidents (issue 14): each incident keeps its :class:`_Shape`; the
    incidents a member's point, substation or area leads to are in an :class:`_Index` shared
    by the tracker's copies (only added to; an entry of an incident that is no longer open
    here is skipped, and the index is rebuilt once such entries outnumber the members); the
    incidents whose members have all ended wait in a heap by their close time."""

    def __init__(
        self,
        topology: Topology,
        open: Iterable[Incident] = (),
        _upstream: dict[int, list[int]] | None = None,
    ) -> None:
        self.topology = topology
        self._upstream = _upstream
        self.open = list(open)
        self._owned: set[int] = set()  # during apply: incidents and members copied by it
        self._before: dict[Key, int] = {}  # during apply: members an incident had before it

    @property
    def open(self) -> list[Incident]:
        """The open incidents, in the order they opened (or were given)."""
        return list(self._by_key.values())

    @open.setter
    def open(self, incidents: list[Incident]) -> None:
        self._by_key: dict[Key, Incident] = {}
        self._rank: dict[Key, int] = {}  # position in ``open``, ascending (gaps allowed)
        for incident in incidents:
            shape = incident.shape
            if (
                shape is None
                or shape.n != len(incident.members)
                or (shape.topology is not self.topology)
            ):
                incident.shape = _Shape.of(incident, self.topology)  # a cache of its members
            self._by_key[incident.key] = incident
            self._rank[incident.key] = len(self._rank)
        self._next = len(self._rank)
        self._members = sum(len(i.members) for i in incidents)
        self._index = _Index.of(incidents, self.topology)
        self._heap: list[tuple[int, int, Key]] = []
        for incident in incidents:
            self._schedule(incident)

    def copy(self) -> IncidentTracker:
        out = IncidentTracker.__new__(IncidentTracker)
        out.topology, out._upstream = self.topology, self._upstream
        out._by_key, out._rank, out._next = dict(self._by_key), dict(self._rank), self._next
        out._members, out._index, out._heap = self._members, self._index, list(self._heap)
        out._owned, out._before = set(), {}
        return out

    def _upstream_of(self) -> dict[int, list[int]]:
        """Per point, the points whose gas reaches it (the reverse of ``downstream``)."""
        if self._upstream is None:
            upstream: dict[int, list[int]] = {}
            for source, reached in self.topology.downstream.items():
                for point in reached:
                    upstream.setdefault(point, []).append(source)
            self._upstream = upstream
        return self._upstream

    def apply(self, changes: list[EpisodeChange], watermark_us: int) -> list[IncidentChange]:
        """Members' ends and statistics first, then new alarms in raise order, then the
        incidents whose off-delay ended before ``watermark_us`` close."""
        self._owned, self._before = set(), {}
        self._tidy()
        touched: dict[Key, str] = {}
        for c in changes:
            if not c.opened:
                key = self._holding(c.point_id, c.rule)
                if key is not None and self._update(key, c):
                    touched.setdefault(key, "updated")
        opened = sorted(
            (c for c in changes if c.opened),
            key=lambda c: (
                c.raised_at_us or c.started_at_us or 0,
                c.started_at_us,
                c.point_id,
                c.rule,
            ),
        )
        for c in opened:
            self._open(c, touched)
        out = []
        for key, event in touched.items():
            incident = self._by_key[key]
            added = incident.members[self._before.get(key, len(incident.members)) :]
            out.append(IncidentChange(key, event, incident, tuple(added)))
            self._schedule(incident)
        return out + self.expire(watermark_us)

    def closable(self, watermark_us: int) -> bool:
        """Whether :meth:`expire` would close an incident."""
        heap = self._heap
        while heap and self._stale(heap[0]):
            heapq.heappop(heap)  # stale here for good: this tracker's incidents never change
        return bool(heap) and heap[0][0] < watermark_us

    def expire(self, watermark_us: int) -> list[IncidentChange]:
        """Close the incidents whose members all ended ``off_delay`` before ``watermark_us``."""
        due: dict[Key, int] = {}
        heap = self._heap
        while heap and heap[0][0] < watermark_us:
            entry = heapq.heappop(heap)
            if entry[2] not in due and not self._stale(entry):
                due[entry[2]] = entry[0]
        out = []
        for key in sorted(due, key=self._rank.__getitem__):  # in the order they opened
            incident = self._by_key.pop(key)
            del self._rank[key]
            self._members -= len(incident.members)
            closed = incident._clone(share=True)
            closed.closed_at_us = incident.last_end()
            out.append(IncidentChange(key, "closed", closed))
        return out

    def _schedule(self, incident: Incident) -> None:
        """Its close time in the heap, once its members have all ended."""
        end = incident.last_end()
        if end is not None:
            due = end + self.topology.off_delay_of(incident)
            heapq.heappush(self._heap, (due, self._rank[incident.key], incident.key))

    def _stale(self, entry: tuple[int, int, Key]) -> bool:
        """Whether a heap entry is not (any longer) an open incident's close time here."""
        incident = self._by_key.get(entry[2])
        if incident is None:
            return True
        end = incident.last_end()
        return end is None or end + self.topology.off_delay_of(incident) != entry[0]

    def _tidy(self) -> None:
        """Rebuild the index and the heap once stale entries outnumber the live ones (so they
        cost O(1) per member added, amortised)."""
        if self._index.size > 2 * self._members + 1024:
            self._index = _Index.of(self._by_key.values(), self.topology)
        if len(self._heap) > 2 * len(self._by_key) + 64:
            self._heap = []
            for incident in self._by_key.values():
                self._schedule(incident)

    def _holding(self, point: int, rule: str) -> Key | None:
        """The open incident (the last opened) with an open member of ``(point, rule)``."""
        best: Key | None = None
        for key in self._index.by_point.get(point, ()):
            shape = self._by_key[key].shape if key in self._by_key else None
            if (
                shape is not None
                and (point, rule) in shape.open
                and (best is None or self._rank[key] > self._rank[best])
            ):
                best = key
        return best

    def _own(self, key: Key) -> Incident:
        """The incident ``key``, copied once per :meth:`apply` before it is altered."""
        incident = self._by_key[key]
        if id(incident) not in self._owned:
            self._before[key] = len(incident.members)
            incident = self._by_key[key] = incident._clone()
            self._owned.add(id(incident))
        return incident

    def _own_member(self, incident: Incident, pos: int) -> Member:
        """The member at ``pos`` of an owned incident, copied once per :meth:`apply`."""
        m = incident.members[pos]
        if id(m) not in self._owned:
            m = incident.members[pos] = m.copy()
            self._owned.add(id(m))
        return m

    def _update(self, key: Key, c: EpisodeChange) -> bool:
        """A member's end, classification or peak; whether the incident changed."""
        shape = self._by_key[key].shape
        assert shape is not None
        pos = shape.open[(c.point_id, c.rule)]
        m = self._by_key[key].members[pos]
        ends = c.ended_at_us is not None
        relabels = c.classification is not None and c.classification != m.classification
        rises = c.count > 0 and c.max_value > m.peak
        if not (ends or relabels or rises):
            return False
        incident = self._own(key)
        m = self._own_member(incident, pos)
        _absorb(incident, m, c, self.topology)
        if m.end_us is not None:
            assert incident.shape is not None
            incident.shape.ended(incident.members, pos)
        return True

    def _open(self, c: EpisodeChange, touched: dict[Key, str]) -> None:
        category = category_of(c.rule)
        if category not in SHOWN or c.classification in RECORD_ONLY:
            return
        assert c.started_at_us is not None
        raised = c.raised_at_us if c.raised_at_us is not None else c.started_at_us
        member = Member(c.point_id, c.rule, c.classification, c.started_at_us, raised)
        self._owned.add(id(member))
        key = self._joined(member, category)
        grade = grade_of(c.rule, c.classification, self.topology.grades)
        if key is None:
            key = (c.point_id, c.rule, c.started_at_us)
            incident = Incident(key, category, [], grade, shape=_Shape(topology=self.topology))
            self._by_key[key] = incident
            self._rank[key] = self._next
            self._next += 1
            self._owned.add(id(incident))
            self._before[key] = 0
            touched[key] = "opened"
        else:
            incident = self._own(key)
            if touched.get(key, "updated") == "updated":
                touched[key] = "joined"
        _absorb(incident, member, c, self.topology)
        if GRADE_RANK[grade] > GRADE_RANK[incident.grade]:
            incident.grade = grade
        incident.members.append(member)
        assert incident.shape is not None
        incident.shape.add(member, category, self.topology)
        self._index.add(key, category, member.point, self.topology)
        self._members += 1

    def _joined(self, m: Member, category: str) -> Key | None:
        """The earliest open incident that the alarm belongs to (its key), or None."""
        topo = self.topology
        upstream = self._upstream_of()
        # only incidents it can belong to: not a scan of every open one (a flood)
        found = self._index.candidates(m, topo, upstream)
        for key in sorted((k for k in found if k in self._by_key), key=self._rank.__getitem__):
            incident = self._by_key[key]
            if not incident.open_at(m.raised_us, topo.off_delay_of(incident)):
                continue
            if incident.category == category and _belongs(m, incident, topo, upstream):
                return key
            if (
                m.rule in EXCURSION_RULES
                and incident.shape is not None
                and (m.point in incident.shape.points)
            ):
                return key
        return None

    def move_start(self, point: int, rule: str, old: int, new: int) -> None:
        """A correction moved the start of the episode ``(point, rule, old)`` to ``new``: its
        member in the open incidents (and the key of the incident it is the root of)."""
        for key in list(self._index.by_point.get(point, ())):
            incident = self._by_key.get(key)
            if incident is None or not any(
                (m.point, m.rule, m.start_us) == (point, rule, old) for m in incident.members
            ):
                continue
            moved = _copied(incident)
            for m in moved.members:
                if (m.point, m.rule, m.start_us) == (point, rule, old):
                    m.start_us = new
            if moved.key == (point, rule, old):
                moved.key = (point, rule, new)
            moved.shape = _Shape.of(moved, self.topology)
            rank = self._rank.pop(key)
            self._by_key = {(moved.key if k == key else k): (moved if k == key else i)
                            for k, i in self._by_key.items()}  # fmt: skip
            self._rank[moved.key] = rank
            for m in moved.members:
                self._index.add(moved.key, moved.category, m.point, self.topology)
            self._schedule(moved)

    def adopt(self, incidents: Iterable[Incident]) -> None:
        """Hold ``incidents`` too (after the open ones): closed ones that late alarms may join
        (alarms/late_incidents.py)."""
        for incident in incidents:
            incident.shape = _Shape.of(incident, self.topology)
            self._by_key[incident.key] = incident
            self._rank[incident.key] = self._next
            self._next += 1
            self._members += len(incident.members)
            for m in incident.members:
                self._index.add(incident.key, incident.category, m.point, self.topology)
            self._schedule(incident)

    def drop(self, keys: Iterable[Key]) -> None:
        """No longer hold the incidents ``keys`` (closed elsewhere)."""
        for key in keys:
            incident = self._by_key.pop(key)
            del self._rank[key]
            self._members -= len(incident.members)


@dataclass(slots=True)
class _Index:
    """The incidents (keys) with a member on each point, in each substation and (gas
    incidents only) in each area: every incident a new alarm can belong to (see
    :func:`_belongs`, :meth:`IncidentTracker._joined`) has a member on its point, on a point
    upstream of it, in its substation or (gas) in its area. So a flood of alarms (a mine's
    network down: every point interrupted) is grouped without comparing each with every open
    incident. Shared by a tracker and its copies and only added to, so it may name incidents
    a tracker no longer holds (closed, or opened by an evaluation that was not adopted): the
    tracker skips those, and rebuilds the index when they are many (``size``)."""

    by_point: dict[int, set[Key]] = field(default_factory=dict)
    by_station: dict[str, set[Key]] = field(default_factory=dict)
    gas_by_area: dict[str, set[Key]] = field(default_factory=dict)
    size: int = 0  # entries added

    @classmethod
    def of(cls, incidents: Iterable[Incident], topo: Topology) -> _Index:
        index = cls()
        for incident in incidents:
            for m in incident.members:
                index.add(incident.key, incident.category, m.point, topo)
        return index

    def add(self, key: Key, category: str, point: int, topo: Topology) -> None:
        self.size += 1
        self.by_point.setdefault(point, set()).add(key)
        station = topo.substation.get(point)
        if station is not None:
            self.by_station.setdefault(station, set()).add(key)
        area = topo.area.get(point)
        if category == Category.GAS and area is not None:
            self.gas_by_area.setdefault(area, set()).add(key)

    def candidates(self, m: Member, topo: Topology, upstream: dict[int, list[int]]) -> set[Key]:
        """The incidents ``m`` may belong to (a superset)."""
        out = set(self.by_point.get(m.point, ()))
        for point in upstream.get(m.point, ()):
            out.update(self.by_point.get(point, ()))
        station = topo.substation.get(m.point)
        if m.rule in SUBSTATION_RULES and station is not None:
            out.update(self.by_station.get(station, ()))
        area = topo.area.get(m.point)
        if area is not None:
            out.update(self.gas_by_area.get(area, ()))
        return out


def shifted(incident: Incident, offset: int) -> Incident:
    """A copy of ``incident`` with ``offset`` added to its point ids (``minewatch evaluate``
    numbers the trace's points from 0, the registry from 1)."""
    out = _copied(incident)
    point, rule, start = incident.key
    out.key = (point + offset, rule, start)
    for m in out.members:
        m.point += offset
    if out.peak_point is not None:
        out.peak_point += offset
    return out


def _copied(incident: Incident) -> Incident:
    """A copy with copies of the members (and no shape: the tracker derives it)."""
    out = copy.copy(incident)
    out.members = [m.copy() for m in incident.members]
    out.shape = None
    return out


def _belongs(
    m: Member, incident: Incident, topo: Topology, upstream: Mapping[int, list[int]]
) -> bool:
    """Whether ``m`` joins ``incident`` (of its category): a member on its point, of its
    substation rule in its substation within the off-delay, (gas) upstream of it within the
    transport delay and off-delay, or (gas) in its area when one of them is an area rule."""
    shape = incident.shape
    if shape is None:
        shape = _Shape.of(incident, topo)
    if m.point in shape.points:
        return True
    off = topo.off_delay_of(incident)
    station = topo.substation.get(m.point)
    if m.rule in SUBSTATION_RULES and station is not None:
        starts = shape.starts.get((m.rule, station), ())
        i = bisect.bisect_left(starts, m.start_us - off)
        if i < len(starts) and starts[i] <= m.start_us + off:
            return True
    if incident.category != Category.GAS:
        return False  # the air carries gas, not faults
    for source in upstream.get(m.point, ()):
        delay = topo.downstream[source][m.point]
        for q in shape.points.get(source, ()):
            other = incident.members[q]
            if other.start_us <= m.start_us and (
                other.end_us is None or m.start_us <= other.end_us + delay + off
            ):
                return True
    area = topo.area.get(m.point)
    if area is None:
        return False
    return area in (shape.areas if m.rule in AREA_RULES else shape.fused_areas)


def _absorb(incident: Incident, m: Member, c: EpisodeChange, topo: Topology) -> None:
    if c.ended_at_us is not None:
        m.end_us = c.ended_at_us
    if c.classification is not None:
        m.classification = c.classification
    if c.count and c.max_value > m.peak:
        m.peak, m.peak_at_us = c.max_value, c.max_at_us
        root_type = topo.sensor_type.get(incident.key[0])
        if topo.sensor_type.get(m.point) == root_type and m.peak > incident.peak:
            incident.peak, incident.peak_at_us, incident.peak_point = m.peak, m.peak_at_us, m.point


def changes_of(episode: Episode, offset: int = 0) -> EpisodeChange:
    """One episode as the single change that opens and (if it ended) ends it."""
    return EpisodeChange(
        point_id=episode.point + offset,
        rule=episode.rule,
        abnormal_type="",
        opened=True,
        started_at_us=episode.start_us,
        threshold=episode.threshold,
        start_value=episode.start_value,
        ended_at_us=episode.end_us,
        count=episode.count,
        value_sum=episode.total,
        max_value=episode.vmax,
        max_at_us=episode.vmax_at,
        min_value=episode.vmin,
        min_at_us=episode.vmin_at,
        classification=episode.classification,
        raised_at_us=episode.raised_us,
    )


def group(episodes: Iterable[Episode], topology: Topology) -> list[Incident]:
    """The incidents of a whole history of episodes (closed or still open at its end)."""
    tracker = IncidentTracker(topology)
    tracker.apply([changes_of(e) for e in episodes], NEVER)
    closed = [change.incident for change in tracker.expire(2**62)]
    return sorted(closed + tracker.open, key=lambda i: (i.raised_us, i.key))

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

import copy
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


@dataclass(slots=True)
class Incident:
    key: tuple[int, str, int]  # the root's (point, rule, start): stable across restarts
    category: str
    members: list[Member]
    grade: str
    peak: float = -math.inf
    peak_at_us: int = NEVER
    peak_point: int | None = None
    closed_at_us: int | None = None  # the last member's end, once closed

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
        last = NEVER
        for m in self.members:  # per batch over every open incident: stop at an open member
            if m.end_us is None:
                return None
            last = max(last, m.end_us)
        return last

    def open_at(self, t_us: int, off_delay_us: int) -> bool:
        """Whether the incident is open at ``t_us``: raised, and a member not ended more than
        ``off_delay_us`` before."""
        if t_us < self.raised_us:
            return False
        return any(m.end_us is None or m.end_us + off_delay_us >= t_us for m in self.members)


@dataclass(frozen=True, slots=True)
class IncidentChange:
    """What happened to an incident in one evaluation: ``event`` is ``opened`` (with its root),
    ``joined`` (new members), ``updated`` (grade, peak or a member's end) or ``closed``."""

    key: tuple[int, str, int]
    event: str
    incident: Incident  # a snapshot after the change


@dataclass
class IncidentTracker:
    """Open incidents, fed with the engine's episode changes in event time.

    Copy-on-write: :meth:`copy` shares the incidents, and a change replaces an incident by a
    copy before it alters it, so an incident once published (in an :class:`IncidentChange`,
    or in the tracker an evaluation started from) never changes afterwards."""

    topology: Topology
    open: list[Incident] = field(default_factory=list)
    _owned: set[int] = field(default_factory=set, repr=False)
    #: during :meth:`apply`: where the open incidents' members are (see :class:`_Index`)
    _index: _Index | None = field(default=None, repr=False)
    _upstream: dict[int, list[int]] | None = field(default=None, repr=False)

    def copy(self) -> IncidentTracker:
        return IncidentTracker(self.topology, list(self.open), _upstream=self._upstream)

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
        self._owned = set()
        touched: dict[tuple[int, str, int], str] = {}
        where = {
            (m.point, m.rule): k
            for k, incident in enumerate(self.open)
            for m in incident.members
            if m.end_us is None
        }
        for c in changes:
            k = where.get((c.point_id, c.rule))
            if not c.opened and k is not None and self._update(k, c):
                touched.setdefault(self.open[k].key, "updated")
        opened = sorted(
            (c for c in changes if c.opened),
            key=lambda c: (
                c.raised_at_us or c.started_at_us or 0,
                c.started_at_us,
                c.point_id,
                c.rule,
            ),
        )
        if opened:
            self._index = _Index.of(self.open, self.topology)
            try:
                for c in opened:
                    self._open(c, touched)
            finally:
                self._index = None
        by_key = {incident.key: incident for incident in self.open}
        out = [IncidentChange(k, e, by_key[k]) for k, e in touched.items()]
        return out + self.expire(watermark_us)

    def closable(self, watermark_us: int) -> bool:
        """Whether :meth:`expire` would close an incident."""
        return any(self._due(incident, watermark_us) for incident in self.open)

    def expire(self, watermark_us: int) -> list[IncidentChange]:
        """Close the incidents whose members all ended ``off_delay`` before ``watermark_us``."""
        out, keep = [], []
        for incident in self.open:
            end = self._due(incident, watermark_us)
            if end is not None:
                closed = _copied(incident)
                closed.closed_at_us = end
                out.append(IncidentChange(incident.key, "closed", closed))
            else:
                keep.append(incident)
        self.open = keep
        return out

    def _due(self, incident: Incident, watermark_us: int) -> int | None:
        """The incident's end when it is due to close before ``watermark_us``, else None."""
        end = incident.last_end()
        if end is not None and end + self.topology.off_delay_of(incident) < watermark_us:
            return end
        return None

    def _own(self, k: int) -> Incident:
        """The incident at ``k``, copied once per :meth:`apply` before it is altered."""
        if id(self.open[k]) not in self._owned:
            self.open[k] = _copied(self.open[k])
            self._owned.add(id(self.open[k]))
        return self.open[k]

    def _update(self, k: int, c: EpisodeChange) -> bool:
        """A member's end, classification or peak; whether the incident changed."""
        m = next(m for m in self.open[k].members if (m.point, m.rule) == (c.point_id, c.rule)
                 and m.end_us is None)  # fmt: skip
        ends = c.ended_at_us is not None
        relabels = c.classification is not None and c.classification != m.classification
        rises = c.count > 0 and c.max_value > m.peak
        if not (ends or relabels or rises):
            return False
        incident = self._own(k)
        m = next(m for m in incident.members if (m.point, m.rule) == (c.point_id, c.rule)
                 and m.end_us is None)  # fmt: skip
        _absorb(incident, m, c, self.topology)
        return True

    def _open(self, c: EpisodeChange, touched: dict[tuple[int, str, int], str]) -> None:
        category = category_of(c.rule)
        if category not in SHOWN or c.classification in RECORD_ONLY:
            return
        assert c.started_at_us is not None
        raised = c.raised_at_us if c.raised_at_us is not None else c.started_at_us
        member = Member(c.point_id, c.rule, c.classification, c.started_at_us, raised)
        k = self._joined(member, category)
        grade = grade_of(c.rule, c.classification, self.topology.grades)
        if k is None:
            incident = Incident((c.point_id, c.rule, c.started_at_us), category, [], grade)
            self.open.append(incident)
            self._owned.add(id(incident))
            touched[incident.key] = "opened"
            k = len(self.open) - 1
        else:
            incident = self._own(k)
            if touched.get(incident.key, "updated") == "updated":
                touched[incident.key] = "joined"
        incident.members.append(member)
        if self._index is not None:
            self._index.add(k, incident.category, member.point, self.topology)
        if GRADE_RANK[grade] > GRADE_RANK[incident.grade]:
            incident.grade = grade
        _absorb(incident, member, c, self.topology)

    def _joined(self, m: Member, category: str) -> int | None:
        """The earliest open incident that the alarm belongs to (its position), or None."""
        topo = self.topology
        if self._index is None:
            candidates: Iterable[int] = range(len(self.open))
        else:  # only incidents it can belong to: not a scan of every open one (a flood)
            candidates = self._index.candidates(m, topo, self._upstream_of())
        for k in candidates:
            incident = self.open[k]
            if not incident.open_at(m.raised_us, topo.off_delay_of(incident)):
                continue
            if incident.category == category and _belongs(m, incident, topo):
                return k
            if m.rule in EXCURSION_RULES and any(o.point == m.point for o in incident.members):
                return k
        return None


@dataclass(slots=True)
class _Index:
    """Positions of the open incidents by their members' points and substations, and (gas
    incidents only) areas: every incident a new alarm can belong to (see :func:`_belongs`,
    :meth:`IncidentTracker._joined`) has a member on its point, on a point upstream of it,
    in its substation or (gas) in its area. So a flood of alarms (a mine's network down:
    every point interrupted) is grouped without comparing each with every open incident."""

    by_point: dict[int, set[int]] = field(default_factory=dict)
    by_station: dict[str, set[int]] = field(default_factory=dict)
    gas_by_area: dict[str, set[int]] = field(default_factory=dict)

    @classmethod
    def of(cls, incidents: list[Incident], topo: Topology) -> _Index:
        index = cls()
        for k, incident in enumerate(incidents):
            for m in incident.members:
                index.add(k, incident.category, m.point, topo)
        return index

    def add(self, k: int, category: str, point: int, topo: Topology) -> None:
        self.by_point.setdefault(point, set()).add(k)
        station = topo.substation.get(point)
        if station is not None:
            self.by_station.setdefault(station, set()).add(k)
        area = topo.area.get(point)
        if category == Category.GAS and area is not None:
            self.gas_by_area.setdefault(area, set()).add(k)

    def candidates(self, m: Member, topo: Topology, upstream: dict[int, list[int]]) -> list[int]:
        """Positions, in order, of the incidents ``m`` may belong to (a superset)."""
        out = set(self.by_point.get(m.point, ()))
        for point in upstream.get(m.point, ()):
            out.update(self.by_point.get(point, ()))
        station = topo.substation.get(m.point)
        if m.rule in SUBSTATION_RULES and station is not None:
            out.update(self.by_station.get(station, ()))
        area = topo.area.get(m.point)
        if area is not None:
            out.update(self.gas_by_area.get(area, ()))
        return sorted(out)


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
    out = copy.copy(incident)
    out.members = [copy.copy(m) for m in incident.members]
    return out


def _belongs(m: Member, incident: Incident, topo: Topology) -> bool:
    area = topo.area.get(m.point)
    station = topo.substation.get(m.point)
    for other in incident.members:
        if other.point == m.point:
            return True
        if (
            m.rule in SUBSTATION_RULES
            and other.rule == m.rule
            and station is not None
            and topo.substation.get(other.point) == station
            and abs(m.start_us - other.start_us) <= topo.off_delay_of(incident)
        ):
            return True
        if incident.category != Category.GAS:
            continue  # the air carries gas, not faults
        delay = topo.downstream.get(other.point, {}).get(m.point)
        if delay is not None and other.start_us <= m.start_us:
            end = other.end_us
            if end is None or m.start_us <= end + delay + topo.off_delay_of(incident):
                return True
        fused = m.rule in AREA_RULES or other.rule in AREA_RULES
        if fused and area is not None and topo.area.get(other.point) == area:
            return True
    return False


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

"""The mine's other systems with labelled scenarios: personnel positioning, video, output.

:class:`MineFeeds` builds, from a :class:`~simulators.config.MineConfig` (sections
``personnel``, ``video``, ``output``, ``feed_scenarios``, ``random_feed_scenarios``), the
positioning system of the mine (a :class:`~simulators.personnel.PersonnelSimulator` whose
areas are the mine's workings), its cameras and its belt scale, resolves the scenarios into
changes of trips, extra crews, silent cameras and production above plan, and labels them
(:class:`FeedLabel`). The columns of each feed over a time range are in
:mod:`simulators.feed_tables`. Times: labels in seconds from ``simulation.start`` like the
safety labels, feeds in epoch µs. Everything comes from the seed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from minewatch.simulators.config import FIRST_WORKING, RESTRICTED, ROADWAY, SHAFT, MineConfig
from minewatch.simulators.feed_config import PERSONNEL_KINDS, FeedScenarioConfig
from minewatch.simulators.personnel import (
    CST,
    MINUTE,
    US,
    AreaSpec,
    PersonnelSimConfig,
    PersonnelSimulator,
    Plan,
    SosEvent,
    TripEdit,
    Visit,
)
from minewatch.trace import FeedLabel, GroundTruth

GAP_US = 10 * MINUTE  # between two personnel scenarios of the random schedule


@dataclass
class _Resolved:
    edits: list[TripEdit] = field(default_factory=list)
    visits: list[Visit] = field(default_factory=list)
    sos: list[SosEvent] = field(default_factory=list)
    offline: list[tuple[int, int, int]] = field(default_factory=list)  # camera, start, end µs
    boost: list[tuple[int, int, float]] = field(default_factory=list)  # start, end µs, factor
    # facts resolved per scenario, their keys depend on its kind
    roots: list[tuple[FeedScenarioConfig, dict[str, Any]]] = field(default_factory=list)


class MineFeeds:
    """The personnel, video and output systems of one simulated mine, with ground truth."""

    def __init__(
        self, config: MineConfig, gas_labels: list[GroundTruth] | None = None,
        horizon_s: float | None = None,
    ) -> None:  # fmt: skip
        self.config = config
        self.start_us = round(config.simulation.start.timestamp() * US)
        self.gas_labels = list(gas_labels or [])
        pc = config.personnel
        self.cycle_us = pc.cycle_s * US
        names = [w.name for w in config.workings] or ["采掘工作面"]
        kinds = [w.kind for w in config.workings] or ["longwall"]
        approved = [pc.longwall_approved if k == "longwall" else pc.heading_approved
                    for k in kinds]  # fmt: skip
        self.areas = (
            AreaSpec(SHAFT, "主井井口", "shaft", None, 1),
            AreaSpec(ROADWAY, "主运输大巷", "other", None, 2),
            AreaSpec(RESTRICTED, "采空区密闭", "restricted", 0, 1),
            *(AreaSpec(FIRST_WORKING + i, n, "key", a, 2)
              for i, (n, a) in enumerate(zip(names, approved, strict=True))),
        )  # fmt: skip
        self.working_area = {n: 3 + i for i, n in enumerate(names)}  # area index per working
        per_shift = pc.workers_per_working * len(names)
        self.max_people = pc.max_people or 2 * (per_shift + 1) + max(approved) + 10
        self.limit_us = round(pc.max_underground_h * 3600) * US
        production = config.production
        self.shift_starts_h = tuple(
            int(production.first_shift_start_h + i * production.shift_hours) % 24
            for i in range(round(24 / production.shift_hours))
        )
        self._base_settings = PersonnelSimConfig(
            mine_code=config.mine.code, mine_name=config.mine.name, workers_per_shift=per_shift,
            leaders=3, shift_hours=round(production.shift_hours),
            first_shift_hour=round(production.first_shift_start_h), cycle_s=pc.cycle_s,
            seed=config.simulation.seed, areas=self.areas,
        )  # fmt: skip
        base = PersonnelSimulator(self._base_settings)
        self.area_codes = base.area_codes
        self.station_codes = [code for code, _ in base.stations]
        # cameras: the shaft's, then one per working
        self.camera_codes = [f"{config.mine.code}V{n + 1:03d}" for n in range(len(names) + 1)]
        self.camera_area = [self.area_codes[0]] + [self.area_codes[3 + i]
                                                   for i in range(len(names))]  # fmt: skip
        self.camera_working = ["", *names]
        self.horizon_s = horizon_s if horizon_s is not None else max(
            [config.random_feed_scenarios.horizon_s, 86400.0]
            + [s.end_s for s in config.feed_scenarios]
        )  # fmt: skip
        scenarios = [*config.feed_scenarios, *self._draw_random(base)]
        resolved = self._resolve(base, scenarios)
        self.offline = resolved.offline
        self.boost = resolved.boost
        self.personnel = PersonnelSimulator(replace(
            self._base_settings, sos=tuple(resolved.sos), edits=tuple(resolved.edits),
            visitors=1 + max((v.visitor for v in resolved.visits), default=-1),
            visits=tuple(resolved.visits),
        ))  # fmt: skip
        self.labels = self._labels(resolved)

    # ---- helpers ----------------------------------------------------------------------

    def us(self, offset_s: float) -> int:
        """Epoch µs of an offset, on the positioning grid (floored)."""
        t = self.start_us + round(offset_s * US)
        return t // self.cycle_us * self.cycle_us

    def s(self, t_us: int) -> float:
        return (t_us - self.start_us) / US

    def _leader_plan(self, sim: PersonnelSimulator, k: int) -> tuple[int, Plan] | None:
        for p in sim.people:
            if p.leader:
                plan = sim._plan(p.index, k)
                if plan is not None:
                    return p.index, plan
        return None

    def _shift_at(self, sim: PersonnelSimulator, t: int) -> int:
        """The shift occurrence whose start is nearest to ``t`` (the rule's assignment)."""
        return round((t - sim._origin) / sim.shift_us)

    def _trip_at(self, sim: PersonnelSimulator, person: int, t: int) -> tuple[int, Plan] | None:
        k0 = (t - sim._origin) // sim.shift_us
        for k in range(k0 - 1, k0 + 3):
            plan = sim._plan(person, k)
            if plan is not None and plan.entry <= t < plan.exit:
                return k, plan
        return None

    def stays(self, sim: PersonnelSimulator, t0: int, t1: int) -> tuple[npt.NDArray[np.int64], ...]:
        """Every stage of every trip overlapping [t0, t1), as columns: person, station,
        stage start, stage end, trip entry, trip exit, shift occurrence."""
        k0 = (t0 - sim._origin) // sim.shift_us - 1
        k1 = (t1 - sim._origin) // sim.shift_us + 2
        rows: list[tuple[int, int, int, int, int, int, int]] = []
        for k in range(k0, k1 + 1):
            for p in sim.people:
                plan = sim._plan(p.index, k)
                if plan is None or plan.exit <= t0 or plan.entry >= t1:
                    continue
                ends = [t for t, _ in plan.stages[1:]] + [plan.exit]
                for (start, station), end in zip(plan.stages, ends, strict=True):
                    if end > start:
                        rows.append((p.index, station, start, end, plan.entry, plan.exit, k))
        if not rows:
            return tuple(np.zeros(0, np.int64) for _ in range(7))
        table = np.array(rows, np.int64)
        return tuple(table[:, j] for j in range(7))

    def _counts(self, sim: PersonnelSimulator, t0: int, t1: int, area: int | None
                ) -> npt.NDArray[np.int64]:  # fmt: skip
        """Head-count at each positioning instant of [t0, t1): of an area, or underground."""
        grid = np.arange(t0, t1, self.cycle_us)
        person, station, start, end, entry, exit_, _ = self.stays(sim, t0, t1)
        if area is not None:
            area_of = np.array([a for _, a in sim.stations], np.int64)
            keep = area_of[station] == area
            start, end = start[keep], end[keep]
        else:
            start, end = np.unique(np.stack([entry, exit_, person]), axis=1)[:2]
        a = np.searchsorted(grid, start)
        b = np.searchsorted(grid, end)
        diff = np.zeros(len(grid) + 1, np.int64)
        np.add.at(diff, a, 1)
        np.add.at(diff, b, -1)
        return np.cumsum(diff)[:-1]

    # ---- the random schedule ------------------------------------------------------------

    def _draw_random(self, base: PersonnelSimulator) -> list[FeedScenarioConfig]:
        spec = self.config.random_feed_scenarios
        kinds = [k for k, r in spec.per_day.items() if r > 0]
        if not kinds:
            return []
        total = sum(spec.per_day[k] for k in kinds)
        weights = np.array([spec.per_day[k] for k in kinds]) / total
        rng = np.random.default_rng([self.config.simulation.seed, 0xFEED])
        gas = [
            i
            for i, g in enumerate(self.gas_labels)
            if g.kind == "methane_exceedance" and self._camera_of_point(g) is not None
        ]
        out: list[FeedScenarioConfig] = []
        t = spec.start_after_s
        while True:
            t += rng.exponential(86400.0 / total)
            if t >= spec.horizon_s:
                return out
            kind = kinds[int(rng.choice(len(kinds), p=weights))]
            fields: dict[str, object] = {"kind": kind, "start_s": round(t, 1)}
            minutes = {"area_overcrowding": (10, 60), "mine_overcrowding": (10, 60),
                       "overtime": (30, 120), "restricted_area": (2, 20),
                       "leader_absent": (1, 2), "sos": (1, 20), "camera_offline": (1, 10),
                       "output_month": (60, 600)}[kind]  # fmt: skip
            fields["duration_s"] = round(float(rng.uniform(*minutes)) * 60, 1)
            if kind == "camera_offline":
                if not gas:
                    continue
                g = self.gas_labels[gas[int(rng.integers(len(gas)))]]
                fields["start_s"] = round(g.start_s + rng.uniform(0, 0.5) * (g.end_s - g.start_s))
                fields["working"] = self.camera_working[self._camera_of_point(g) or 0]
            elif kind == "area_overcrowding":
                fields["working"] = list(self.working_area)[int(rng.integers(
                    len(self.working_area)))]  # fmt: skip
            elif kind == "output_month":
                fields["factor"] = round(float(rng.uniform(1.3, 2.0)), 2)
            out.append(FeedScenarioConfig.model_validate(fields))

    def _camera_of_point(self, g: GroundTruth) -> int | None:
        for i, working in enumerate(self.config.workings):
            if g.substation in working.substations:
                return i + 1
        return None

    # ---- resolution -------------------------------------------------------------------

    def _resolve(self, base: PersonnelSimulator, scenarios: list[FeedScenarioConfig]) -> _Resolved:
        """Scenarios -> trip edits, SOS calls, silent cameras, production boosts; then the
        crews (which need the head-counts with the edits). A random personnel scenario that
        would overlap another (10 minutes apart) or cannot be placed is dropped; an explicit
        one that cannot be placed is an error."""
        out = _Resolved()
        explicit = len(self.config.feed_scenarios)
        rng = np.random.default_rng([self.config.simulation.seed, 0x9E05])
        busy: list[tuple[int, int]] = []
        edited: set[tuple[int, int]] = set()
        crowds: list[tuple[int, FeedScenarioConfig, int, int]] = []
        workers = [p.index for p in base.people if not p.leader and not p.visitor]
        for n, sc in enumerate(scenarios):
            s, e = self.us(sc.start_s), self.us(sc.end_s)
            found: dict[str, object] | None = None
            window: tuple[int, int] | None = None
            if sc.kind in ("overtime", "restricted_area", "sos"):
                if sc.person is not None:
                    who = [sc.person - 1]
                else:
                    here = [i for i in workers if self._trip_at(base, i, s) is not None]
                    who = [here[int(rng.integers(len(here)))]] if here else []
                trip = self._trip_at(base, who[0], s) if who else None
                if trip is not None and (who[0], trip[0]) not in edited:
                    person, (k, plan) = who[0], trip
                    found, window = self._person_scenario(base, sc, person, k, plan, s, e, out)
                    if found is not None and sc.kind != "sos":
                        edited.add((person, k))
            elif sc.kind == "leader_absent":
                k = self._shift_at(base, s)  # the leader down at s surfaces; else nobody goes
                for j in (k - 1, k):
                    down = self._leader_plan(base, j)
                    if down is not None and down[1].entry <= s < down[1].exit:
                        k = j
                leader = self._leader_plan(base, k)
                if leader is not None and (leader[0], k) not in edited:
                    person, plan = leader
                    last = max(p.exit for q in workers if (p := base._plan(q, k)) is not None)
                    first = min(p.entry for q in workers if (p := base._plan(q, k)) is not None)
                    s = max(s, first)
                    if s < last:
                        out.edits.append(TripEdit(person, k, exit_us=s))
                        edited.add((person, k))
                        found = {"subject_kind": "mine", "subject": self.config.mine.code,
                                 "shift": k, "leader": person}  # fmt: skip
                        window = (s, last)
            elif sc.kind in ("area_overcrowding", "mine_overcrowding"):
                k = self._shift_at(base, s - (5 * MINUTE if sc.kind == "area_overcrowding"
                                              else 0))  # fmt: skip
                leader = self._leader_plan(base, k)
                if leader is not None:
                    pre = 5 * MINUTE if sc.kind == "area_overcrowding" else 0
                    lo, hi = leader[1].entry + pre, leader[1].exit - pre
                    s, e = max(s, lo), min(e, hi)
                    middle = base.shift_start(k) + base.shift_us // 2 - pre
                    if s < min(e, middle):
                        found, window = {"shift": k}, (s, e)
                        crowds.append((n, sc, s, e))
            elif sc.kind == "camera_offline":
                grid = self.config.video.heartbeat_s * US
                s = self.start_us + round(sc.start_s * US)
                e = self.start_us + round(sc.end_s * US)
                s, e = -(-s // grid) * grid, -(-e // grid) * grid
                camera = self.camera_working.index(sc.working) if sc.working else 1
                out.offline.append((camera, s, e))
                found, window = {"camera": camera, "offline": (s, e)}, None
            elif sc.kind == "output_month":
                out.boost.append((self.start_us + round(sc.start_s * US),
                                  self.start_us + round(sc.end_s * US), sc.factor))  # fmt: skip
                found, window = {}, None
            if found is None or (
                window is not None and sc.kind in PERSONNEL_KINDS and n >= explicit
                and any(a < window[1] + GAP_US and window[0] - GAP_US < b for a, b in busy)
            ):  # fmt: skip
                if n < explicit:
                    raise ValueError(f"feed scenario {sc.kind} at {sc.start_s}s: cannot be "
                                     "placed (nobody / no shift there)")  # fmt: skip
                if found is not None:  # placed but overlapping: undo
                    self._undo(out, sc, crowds, n)
                continue
            if window is not None:
                busy.append(window)
            out.roots.append((sc, found | ({"window": window} if window else {})))
        if crowds:
            self._crowds(crowds, out)
        return out

    def _undo(self, out: _Resolved, sc: FeedScenarioConfig, crowds: list, n: int) -> None:
        if sc.kind == "sos":
            out.sos.pop()
        elif sc.kind in ("overtime", "restricted_area", "leader_absent"):
            out.edits.pop()
        elif crowds and crowds[-1][0] == n:
            crowds.pop()

    def _person_scenario(
        self, base: PersonnelSimulator, sc: FeedScenarioConfig, person: int, k: int,
        plan: Plan, s: int, e: int, out: _Resolved,
    ) -> tuple[dict[str, object] | None, tuple[int, int] | None]:  # fmt: skip
        card = base.people[person].card
        subject = {"subject_kind": "person", "subject": card, "person": person, "shift": k}
        if sc.kind == "overtime":
            crossed = plan.entry + self.limit_us
            exit_ = crossed + max(self.cycle_us, e - s)
            out.edits.append(TripEdit(person, k, exit_us=exit_))
            return subject, (crossed, exit_)
        if sc.kind == "restricted_area":
            lo, hi = plan.stages[1][0] + self.cycle_us, plan.stages[-2][0] - self.cycle_us
            s, e = max(s, lo), min(e, hi)
            if s >= e:
                return None, None
            station = base._stations_of[2][0]  # the restricted area (third)
            out.edits.append(TripEdit(person, k, detour=(s, e, station)))
            return subject, (s, e)
        out.sos.append(SosEvent(person, s, round((e - s) / US)))
        return subject, (s, min(e, plan.exit))

    def _crowds(self, crowds: list[tuple[int, FeedScenarioConfig, int, int]], out: _Resolved
                ) -> None:  # fmt: skip
        """Extra cards for the overcrowding scenarios, sized on the head-counts with the
        edits: quota + ``extra`` - the smallest count in the window."""
        sim = PersonnelSimulator(replace(self._base_settings, edits=tuple(out.edits)))
        shaft, road = sim._stations_of[0][0], sim._stations_of[1]
        used: list[set[int]] = []  # per visitor, the shifts it has a visit in (one trip each)
        for _, sc, s, e in crowds:
            k = next(int(f["shift"]) for c, f in out.roots if c is sc)
            if sc.kind == "area_overcrowding":
                area = self.working_area[sc.working or next(iter(self.working_area))]
                quota = self.areas[area].approved or 0
                size = quota + sc.extra - int(self._counts(sim, s, e, area).min())
                places = sim._stations_of[area]
                entry, exit_ = s - 5 * MINUTE, e + 5 * MINUTE
            else:
                quota = self.max_people
                size = quota + sc.extra - int(self._counts(sim, s, e, None).min())
                entry, exit_ = s, e
            chosen = [v for v, shifts in enumerate(used) if k not in shifts][:size]
            while len(chosen) < size:
                used.append(set())
                chosen.append(len(used) - 1)
            for j, v in enumerate(chosen):
                used[v].add(k)
                if sc.kind == "area_overcrowding":
                    stages: tuple[tuple[int, int], ...] = (
                              (entry, shaft), (entry + 2 * MINUTE, road[j % len(road)]),
                              (s, places[j % len(places)]), (e, road[j % len(road)]),
                              (e + 3 * MINUTE, shaft))  # fmt: skip
                else:
                    stages = ((s, road[j % len(road)]),)
                out.visits.append(Visit(v, k, entry, exit_, stages))
            for c, f in out.roots:
                if c is sc:
                    f["crowd"] = size
                    f["quota"] = quota
                    f["area"] = area if sc.kind == "area_overcrowding" else None

    # ---- labels -----------------------------------------------------------------------

    def _labels(self, resolved: _Resolved) -> list[FeedLabel]:
        sim = self.personnel
        labels: list[FeedLabel] = []
        derived: list[FeedLabel] = []
        mine = self.config.mine.code
        hours = self.limit_us / 3600 / US
        for sc, f in resolved.roots:
            window = f.get("window")
            if sc.kind == "output_month":
                continue  # from the series, below
            if sc.kind == "camera_offline":
                camera = int(f["camera"])
                s, e = f["offline"]
                gas = self._gas_during(camera, s, e)
                labels.append(FeedLabel(
                    "camera_offline", "camera", self.camera_codes[camera], self.s(s), self.s(e),
                    related=self.gas_labels[gas].point if gas is not None
                    else self.camera_working[camera],
                    detail="during_gas" if gas is not None else "", gas_label=gas,
                ))  # fmt: skip
                continue
            assert isinstance(window, tuple)
            s, e = window
            if sc.kind == "overtime":
                labels.append(FeedLabel("overtime", "person", str(f["subject"]), self.s(s),
                                        self.s(e), (e - s + self.limit_us) / 3600 / US,
                                        hours))  # fmt: skip
                k = int(f["shift"])
                leader = self._leader_plan(sim, k)
                if leader is not None and leader[1].exit - leader[1].entry > self.limit_us:
                    person, plan = leader
                    derived.append(FeedLabel(
                        "overtime", "person", sim.people[person].card,
                        self.s(plan.entry + self.limit_us), self.s(plan.exit),
                        (plan.exit - plan.entry) / 3600 / US, hours, cause=len(labels) - 1,
                    ))  # fmt: skip
            elif sc.kind == "restricted_area":
                labels.append(FeedLabel("restricted_area", "person", str(f["subject"]),
                                        self.s(s), self.s(e),
                                        related=self.area_codes[2]))  # fmt: skip
            elif sc.kind == "sos":
                card = str(f["subject"])
                first, stop = next((a, b) for c, a, b in sim.sos_truth() if c == card and
                                   a == -(-s // self.cycle_us) * self.cycle_us)  # fmt: skip
                labels.append(FeedLabel("sos", "person", card, self.s(first), self.s(stop)))
            elif sc.kind == "leader_absent":
                labels.append(
                    FeedLabel(
                        "leader_absent",
                        "mine",
                        mine,
                        self.s(s),
                        self.s(e),
                        detail=sim.people[int(f["leader"])].card,
                    )
                )
            elif sc.kind == "area_overcrowding":
                area = int(f["area"])
                top = int(self._counts(sim, s, e, area).max())
                labels.append(
                    FeedLabel(
                        "area_overcrowding",
                        "area",
                        self.area_codes[area],
                        self.s(s),
                        self.s(e),
                        top,
                        float(f["quota"]),
                    )
                )
            elif sc.kind == "mine_overcrowding":
                top = int(self._counts(sim, s, e, None).max())
                labels.append(FeedLabel("mine_overcrowding", "mine", mine, self.s(s), self.s(e),
                                        top, float(self.max_people)))  # fmt: skip
        labels += self._output_labels()
        return labels + derived

    def _gas_during(self, camera: int, s: int, e: int) -> int | None:
        if camera == 0:
            return None
        stations = set(self.config.workings[camera - 1].substations)
        for i, g in enumerate(self.gas_labels):
            a, b = self.start_us + round(g.start_s * US), self.start_us + round(g.end_s * US)
            if g.kind == "methane_exceedance" and g.substation in stations and a < e and s < b:
                return i
        return None

    # ---- output ---------------------------------------------------------------------

    @property
    def output_point(self) -> str:
        return f"{self.config.mine.code}01OUTL01"

    def month_start_us(self) -> int:
        local = self.config.simulation.start.astimezone(CST)
        first = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        return round(first.timestamp() * US)

    def output_series(self, end_us: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Belt-scale readings from the local start of the month of ``simulation.start`` to
        ``end_us``: times (µs) and the counter in hundredths of a tonne (not yet wrapped),
        each increment produced in (t[i-1], t[i]]."""
        oc, prod = self.config.output, self.config.production
        cycle = oc.cycle_s * US
        times = np.arange(self.month_start_us(), end_us, cycle, dtype=np.int64)
        previous = times - cycle
        local_h = ((previous // US + 8 * 3600) % 86400) / 3600.0
        shift = ((local_h - prod.first_shift_start_h) % 24 // prod.shift_hours).astype(int)
        cutting = np.isin(shift, prod.cutting_shifts)
        hours = len(prod.cutting_shifts) * prod.shift_hours
        rate = self._capacity_t() / 365.0 / hours  # t per cutting hour
        rng = np.random.default_rng([self.config.simulation.seed, 0xBE17])
        spread = rng.uniform(1 - oc.noise, 1 + oc.noise, len(times))
        factor = np.ones(len(times))
        for a, b, f in self.boost:
            factor[(previous >= a) & (previous < b)] *= f
        produced = np.round(rate * oc.cycle_s / 3600 * spread * factor * cutting * 100)
        produced[0] = 0
        return times, np.cumsum(produced.astype(np.int64))

    def _capacity_t(self) -> float:
        capacity = self.config.mine.approved_capacity_t
        if capacity is None:
            raise ValueError("the simulated output feed needs the mine's approved_capacity_t")
        return capacity

    def _output_labels(self) -> list[FeedLabel]:
        """``output_month``: from the reading whose increment takes the month's total above
        ``month_share`` x capacity to the end of the month (local time), as the rule."""
        end = self.start_us + round(self.horizon_s * US)
        times, counter = self.output_series(end)
        if not len(times):
            return []
        limit = self.config.output.month_share * self._capacity_t()
        first = times[0]
        local = dt.datetime.fromtimestamp(first / US, CST)
        year, month = divmod(local.month, 12)
        month_end = round(dt.datetime(local.year + year, month + 1, 1, tzinfo=CST).timestamp()
                          * US)  # fmt: skip
        inside = times < month_end
        over = np.flatnonzero(inside & (counter > round(limit * 100)))
        if not len(over):
            return []
        total = float(counter[inside][-1]) / 100
        start = self.s(int(times[over[0]]))
        mine = self.config.mine.code
        return [FeedLabel("output_month", "mine", mine, start, self.s(month_end), total, limit)]

    def limits_document(self) -> dict[str, object]:
        return {"max_underground_h": self.config.personnel.max_underground_h,
                "max_underground_people": self.max_people,
                "shift_starts": list(self.shift_starts_h), "timezone": "Asia/Shanghai"}  # fmt: skip

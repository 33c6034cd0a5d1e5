"""A simulated personnel positioning system (人员定位): cards, areas, stations, shifts, truth.

Workers belong to one shift of the 三八制 (0点班, 8点班, 4点班 in mine local time) and a work
area. Each shift they enter at the shaft (井口区域) 20-40 minutes before it starts, walk the
main roadway to their face or heading, move between its stations, walk back and leave 20-40
minutes before it ends. Each shift's leader (矿领导 带班) goes down with the first worker of
the shift and comes up with the last (与工人同时下井、同时升井).

Every plan is a pure function of (seed, person, shift occurrence), with all times on the
positioning-cycle grid, so the state at any instant, the messages of any cycle and the ground
truth (head-count per area at every minute) are exact and cheap to recompute.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from dataclasses import dataclass, field
from functools import cache

import aiomqtt
import numpy as np
import orjson

from minewatch.broker_auth import login_options
from minewatch.feeds import broker_address, personnel_meta_topic, personnel_topic

US = 1_000_000
MINUTE = 60 * US
CST = dt.timezone(dt.timedelta(hours=8), "CST")  # mine local time (China Standard Time)


@dataclass(frozen=True, slots=True)
class AreaSpec:
    suffix: int  # 4 digits after the mine code
    name: str
    type: str  # shaft / key / restricted / other
    approved: int | None
    stations: int


DEFAULT_AREAS = (
    AreaSpec(1, "主井井口", "shaft", None, 1),
    AreaSpec(2, "主运输大巷", "other", None, 2),
    AreaSpec(3, "1201综采工作面", "key", 25, 2),
    AreaSpec(4, "2101掘进工作面", "key", 18, 2),
    AreaSpec(5, "采空区密闭", "restricted", 0, 1),
)


@dataclass(frozen=True, slots=True)
class SosEvent:
    """A labelled scenario: the card of ``person`` calls for help (求救) from ``at_us`` for
    ``duration_s``, if the person is underground then (the card reports it while it does)."""

    person: int
    at_us: int
    duration_s: int


@dataclass(frozen=True, slots=True)
class TripEdit:
    """A labelled scenario's change to one person's trip of shift occurrence ``shift``:
    ``exit_us`` moves the exit (later: stays on, overtime; earlier: a leader who surfaces
    early; at or before the entry: does not go down), ``detour`` = (start µs, end µs, station
    index) sends the person to that station over [start, end) and back."""

    person: int
    shift: int
    exit_us: int | None = None
    detour: tuple[int, int, int] | None = None


@dataclass(frozen=True, slots=True)
class Visit:
    """A trip of an extra card (visitors and support crews, ``PersonnelSimConfig.visitors``)
    counted with shift occurrence ``shift``: ``stages`` as in :class:`Plan`."""

    visitor: int  # 0 .. visitors - 1
    shift: int
    entry: int
    exit: int
    stages: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class PersonnelSimConfig:
    mine_code: str = "141024010001"
    mine_name: str = "洪洞示范煤矿"
    workers_per_shift: int = 10
    leaders: int = 3  # 矿领导 who take turns (one per shift)
    shift_hours: int = 8  # 三八制
    first_shift_hour: int = 0  # shifts start at 0:00, 8:00, 16:00 local time
    cycle_s: int = 30  # positioning cycle; divides 60 so that minutes are cycle instants
    seed: int = 1
    system: str = "rydw"
    areas: tuple[AreaSpec, ...] = DEFAULT_AREAS
    sos: tuple[SosEvent, ...] = ()  # with any, messages carry the ``sos`` column
    visitors: int = 0  # extra cards (visits), after the leaders
    visits: tuple[Visit, ...] = ()
    edits: tuple[TripEdit, ...] = ()

    def __post_init__(self) -> None:
        if 60 % self.cycle_s:
            raise ValueError("cycle_s must divide 60")
        if len(self.mine_code) != 12:
            raise ValueError("mine code must have 12 digits")


@dataclass(frozen=True, slots=True)
class Person:
    index: int
    card: str
    name: str
    job: str
    leader: bool
    special: bool
    shift: int  # 0, 1, 2: which shift of the day
    work_area: int  # index into areas (leaders: -1, they tour)
    visitor: bool = False


@dataclass(frozen=True, slots=True)
class Plan:
    """One descent: stages (start µs, station index) and the exit time; [entry, exit)."""

    entry: int
    exit: int
    stages: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class Place:
    card: str
    station: str
    area: str
    entered_at: int
    area_since: int
    station_since: int
    distance_m: float


@dataclass
class PersonnelSimulator:
    config: PersonnelSimConfig = field(default_factory=PersonnelSimConfig)

    def __post_init__(self) -> None:
        c = self.config
        self.cycle_us = c.cycle_s * US
        self.shift_us = c.shift_hours * 3600 * US
        offset = CST.utcoffset(None)
        assert offset is not None
        # Epoch µs of a shift start (local first_shift_hour) modulo the shift length.
        self._origin = ((c.first_shift_hour * 3600 - int(offset.total_seconds())) * US) % (
            self.shift_us
        )
        self.area_codes = [f"{c.mine_code}{a.suffix:04d}" for a in c.areas]
        self.stations: list[tuple[str, int]] = []  # (station code, area index)
        for i, area in enumerate(c.areas):
            for k in range(area.stations):
                self.stations.append((f"{self.area_codes[i]}{k + 1:06d}", i))
        self._stations_of = {
            i: [s for s, (_, a) in enumerate(self.stations) if a == i] for i in range(len(c.areas))
        }
        kinds = [a.type for a in c.areas]
        self._shaft = kinds.index("shaft")
        self._roadway = kinds.index("other")
        self._faces = [i for i, k in enumerate(kinds) if k == "key"]
        self.people = self._make_people()
        self.card_index = {p.card: p.index for p in self.people}
        self._edits = {(e.person, e.shift): e for e in c.edits}
        self._visits: dict[tuple[int, int], Visit] = {}
        first_visitor = len(self.people) - c.visitors
        for v in c.visits:
            self._visits[(first_visitor + v.visitor, v.shift)] = v
        self._plan = cache(self._make_plan)

    # -- metadata ---------------------------------------------------------------------------

    def _make_people(self) -> list[Person]:
        c = self.config
        jobs = ("采煤工", "掘进工", "支护工", "电钳工", "瓦斯检查工", "运输工")
        people: list[Person] = []
        for shift in range(3):
            for w in range(c.workers_per_shift):
                n = len(people)
                job = jobs[w % len(jobs)]
                people.append(
                    Person(
                        n,
                        f"{c.mine_code}{n + 1:05d}",
                        f"工人{n + 1:03d}",
                        job,
                        False,
                        job in ("电钳工", "瓦斯检查工"),
                        shift,
                        self._faces[w % len(self._faces)],
                    )
                )
        for k in range(c.leaders):
            n = len(people)
            people.append(
                Person(
                    n, f"{c.mine_code}{n + 1:05d}", f"矿领导{k + 1}", "管理", True, False, k % 3, -1
                )
            )
        for k in range(c.visitors):
            n = len(people)
            people.append(Person(n, f"{c.mine_code}{n + 1:05d}", f"支援{k + 1:03d}", "支援工",
                                 False, False, -1, self._roadway, visitor=True))  # fmt: skip
        return people

    def meta_document(self, ts: dt.datetime) -> dict[str, object]:
        c = self.config
        return {
            "v": 1, "mine": c.mine_code, "mine_name": c.mine_name, "ts": ts.isoformat(),
            "people": [
                {"card": p.card, "name": p.name, "job": p.job, "title": "带班矿领导" if p.leader
                 else "", "team": f"{('零点', '八点', '四点')[p.shift]}班", "leader": p.leader,
                 "special": p.special}
                for p in self.people
            ],
            "areas": [
                {"code": self.area_codes[i], "name": a.name, "type": a.type,
                 "approved": a.approved}
                for i, a in enumerate(c.areas)
            ],
            "stations": [
                {"code": code, "area": self.area_codes[a], "name": f"{c.areas[a].name}{k}号基站"}
                for k, (code, a) in enumerate(self.stations)
            ],
        }  # fmt: skip

    # -- plans ------------------------------------------------------------------------------

    def shift_start(self, k: int) -> int:
        """Epoch µs of shift occurrence ``k`` (consecutive shifts are consecutive k)."""
        return self._origin + k * self.shift_us

    def shift_of_day(self, k: int) -> int:
        local = dt.datetime.fromtimestamp(self.shift_start(k) / US, CST)
        hours = (local.hour - self.config.first_shift_hour) % 24
        return hours // self.config.shift_hours

    def _grid(self, t: int) -> int:
        return t // self.cycle_us * self.cycle_us

    def _make_plan(self, person: int, k: int) -> Plan | None:
        p = self.people[person]
        if p.visitor:
            v = self._visits.get((person, k))
            return None if v is None else Plan(v.entry, v.exit, v.stages)
        if self.shift_of_day(k) != p.shift:
            return None
        plan = self._base_plan(person, k)
        edit = self._edits.get((person, k))
        if plan is None or edit is None:
            return plan
        if edit.detour is not None:
            start, end, station = edit.detour
            back = [s for t, s in plan.stages if t <= end][-1]
            stages = [x for x in plan.stages if x[0] < start]
            stages += [(start, station), (end, back)] + [x for x in plan.stages if x[0] > end]
            plan = Plan(plan.entry, plan.exit, tuple(stages))
        if edit.exit_us is not None:
            plan = self._move_exit(plan, edit.exit_us)
        return plan

    def _move_exit(self, plan: Plan, exit_: int) -> Plan | None:
        """The trip ending at ``exit_`` instead: later, the walk out (the last two stages)
        moves with it; earlier, the stages after the walk out are dropped."""
        if exit_ <= plan.entry:
            return None
        delta = exit_ - plan.exit
        if delta >= 0:
            stages = list(plan.stages[:-2]) + [(t + delta, s) for t, s in plan.stages[-2:]]
            return Plan(plan.entry, exit_, tuple(stages))
        shaft = self._stations_of[self._shaft][0]
        out = self._grid(max(plan.entry, exit_ - 5 * MINUTE))
        stages = [x for x in plan.stages if x[0] < out] + [(out, shaft)]
        return Plan(plan.entry, exit_, tuple(stages))

    def _base_plan(self, person: int, k: int) -> Plan | None:
        p = self.people[person]
        if p.leader:
            # Rotating duty: on each occurrence of its shift, one leader of that shift goes down.
            same = [q.index for q in self.people if q.leader and q.shift == p.shift]
            day = k // 3
            if same[day % len(same)] != person:
                return None
            workers = [self._plan(q.index, k) for q in self.people
                       if not q.leader and not q.visitor]  # fmt: skip
            plans = [w for w in workers if w is not None]
            entry, exit_ = min(w.entry for w in plans), max(w.exit for w in plans)
            route = [self._shaft, self._roadway, *self._faces, self._roadway, self._shaft]
            rng = np.random.default_rng([self.config.seed, person, k])
            return self._walk(entry, exit_, route, rng)
        rng = np.random.default_rng([self.config.seed, person, k])
        start = self.shift_start(k)
        entry = self._grid(start - int(rng.integers(20, 41)) * MINUTE)
        exit_ = self._grid(start + self.shift_us - int(rng.integers(20, 41)) * MINUTE)
        return self._walk(entry, exit_, [self._shaft, self._roadway, p.work_area, self._roadway,
                                         self._shaft], rng)  # fmt: skip

    def _walk(self, entry: int, exit_: int, route: list[int], rng: np.random.Generator) -> Plan:
        """Stages along ``route``: short walks through shaft and roadway at both ends, the rest
        split over the work areas, hopping between their stations every 20-60 minutes."""
        walk = [int(rng.integers(3, 9)) * MINUTE for _ in range(4)]  # shaft, road, road, shaft
        work_start = entry + walk[0] + walk[1]
        work_end = exit_ - walk[2] - walk[3]
        stages: list[tuple[int, int]] = [
            (entry, self._station(route[0], rng)),
            (self._grid(entry + walk[0]), self._station(route[1], rng)),
        ]
        work = route[2:-2]
        span = (work_end - work_start) // len(work)
        for j, area in enumerate(work):
            t = self._grid(work_start + j * span)
            end = work_start + (j + 1) * span
            while t < end:
                stages.append((t, self._station(area, rng)))
                t = self._grid(t + int(rng.integers(20, 61)) * MINUTE)
        stages.append((self._grid(work_end), self._station(route[-2], rng)))
        stages.append((self._grid(exit_ - walk[3]), self._station(route[-1], rng)))
        clean: list[tuple[int, int]] = []
        for t, s in sorted(stages):
            if clean and clean[-1][0] == t:
                clean[-1] = (t, s)
            elif not clean or clean[-1][1] != s:
                clean.append((t, s))
        return Plan(entry, exit_, tuple(clean))

    def _station(self, area: int, rng: np.random.Generator) -> int:
        options = self._stations_of[area]
        return options[int(rng.integers(0, len(options)))]

    def plans_around(self, t: int) -> list[tuple[Person, Plan]]:
        """Every plan that may be underground at ``t``."""
        k0 = (t - self._origin) // self.shift_us
        out = []
        for k in range(k0 - 1, k0 + 3):
            for p in self.people:
                plan = self._plan(p.index, k)
                if plan is not None:
                    out.append((p, plan))
        return out

    # -- state and ground truth -------------------------------------------------------------

    def places(self, t: int) -> dict[str, Place]:
        """Who is underground at ``t`` (after the changes at ``t``), and where since when."""
        out = {}
        for p, plan in self.plans_around(t):
            if not plan.entry <= t < plan.exit:
                continue
            i = max(j for j, (start, _) in enumerate(plan.stages) if start <= t)
            station = plan.stages[i][1]
            area = self.stations[station][1]
            j = i
            while j > 0 and self.stations[plan.stages[j - 1][1]][1] == area:
                j -= 1
            distance = float(np.round(((t // self.cycle_us) * 7919 + p.index * 31) % 400 / 10, 1))
            out[p.card] = Place(
                p.card, self.stations[station][0], self.area_codes[area], plan.entry,
                plan.stages[j][0], plan.stages[i][0], distance,
            )  # fmt: skip
        return out

    def exits_between(self, t0: int, t1: int) -> list[tuple[Person, Plan]]:
        """Plans whose exit lies in (t0, t1]."""
        return [(p, plan) for p, plan in self.plans_around(t1) if t0 < plan.exit <= t1]

    def headcounts(self, t: int) -> dict[str, int]:
        """Ground truth: people per area code at ``t`` (areas with nobody left out)."""
        counts: dict[str, int] = {}
        for place in self.places(t).values():
            counts[place.area] = counts.get(place.area, 0) + 1
        return counts

    def leader_down(self, t: int) -> bool:
        leaders = {p.card for p in self.people if p.leader}
        return bool(leaders & set(self.places(t)))

    def calling(self, card: str, t: int) -> bool:
        """Whether the card reports 求救 at ``t`` (only meaningful while it is underground)."""
        return any(
            self.people[e.person].card == card and e.at_us <= t < e.at_us + e.duration_s * US
            for e in self.config.sos
        )

    def sos_truth(self) -> list[tuple[str, int, int]]:
        """Ground truth of the SOS scenarios as alarm episodes (card, start, end): from the
        first positioning cycle at or after the call to the first cycle that reports it
        stopped, or to the exit if the person leaves first. Calls made while the person is
        not underground are not reported, so they are not episodes."""
        out = []
        for e in self.config.sos:
            p = self.people[e.person]
            for q, plan in self.plans_around(e.at_us):
                first = -(-e.at_us // self.cycle_us) * self.cycle_us
                if q != p or not plan.entry <= e.at_us < plan.exit or first >= plan.exit:
                    continue
                stop = -(-(e.at_us + e.duration_s * US) // self.cycle_us) * self.cycle_us
                out.append((p.card, first, min(stop, plan.exit)))
        return sorted(out)

    def random_sos(self, start: dt.datetime, end: dt.datetime, n: int, seed: int = 7
                   ) -> tuple[SosEvent, ...]:  # fmt: skip
        """``n`` calls at random cycle instants in [start, end), each by someone underground
        then (at most one per person), lasting 1-20 minutes."""
        rng = np.random.default_rng(seed)
        cycles = self.cycles(start, end)
        events: list[SosEvent] = []
        used: set[int] = set()
        while len(events) < n:
            t = cycles[int(rng.integers(0, len(cycles)))]
            here = sorted(self.places(t))
            choices = [self.card_index[c] for c in here if self.card_index[c] not in used]
            if not choices:
                continue
            person = choices[int(rng.integers(0, len(choices)))]
            used.add(person)
            events.append(SosEvent(person, t, int(rng.integers(1, 21)) * 60))
        return tuple(events)

    def cycles(self, start: dt.datetime, end: dt.datetime) -> list[int]:
        """Cycle instants (µs) in [start, end)."""
        t0 = -(-int(start.timestamp() * US) // self.cycle_us) * self.cycle_us
        return list(range(t0, int(end.timestamp() * US), self.cycle_us))

    # -- messages ---------------------------------------------------------------------------

    def _envelope(self, kind: str, t: int, boot: int, seq: int) -> dict[str, object]:
        return {"v": 1, "mine": self.config.mine_code, "system": self.config.system,
                "boot": boot, "seq": seq, "kind": kind, "ts": _iso(t)}  # fmt: skip

    def positions_message(self, t: int, boot: int, seq: int) -> bytes:
        """Everyone underground at ``t`` at their station (入井), plus those who left since
        the previous cycle, at the shaft (出井)."""
        here = sorted(self.places(t).values(), key=lambda p: p.card)
        gone = sorted(self.exits_between(t - self.cycle_us, t), key=lambda x: x[0].card)
        shaft_station = self.stations[self._stations_of[self._shaft][0]][0]
        doc = self._envelope("positions", t, boot, seq)
        doc.update(
            cards=[p.card for p in here] + [p.card for p, _ in gone],
            stations=[p.station for p in here] + [shaft_station] * len(gone),
            areas=[p.area for p in here] + [self.area_codes[self._shaft]] * len(gone),
            in_mine=[1] * len(here) + [2] * len(gone),
            distance_m=[p.distance_m for p in here] + [0.0] * len(gone),
            mine_entered_at=[_iso(p.entered_at) for p in here] + [_iso(x.entry) for _, x in gone],
            offsets_ms=[0] * len(here) + [(plan.exit - t) // 1000 for _, plan in gone],
        )
        if self.config.sos:
            doc["sos"] = [self.calling(p.card, t) for p in here] + [False] * len(gone)
        return orjson.dumps(doc)

    def snapshot_message(
        self, t: int, boot: int, seq: int, exited_since: int | None = None
    ) -> bytes:
        """A full snapshot (RYSS semantics): everyone underground at ``t``; people who left
        in (``exited_since``, t] are kept with 出井 and their 出井时刻, as vendors do."""
        here = sorted(self.places(t).values(), key=lambda p: p.card)
        gone = [] if exited_since is None else self.exits_between(exited_since, t)
        shaft_station = self.stations[self._stations_of[self._shaft][0]][0]
        doc = self._envelope("snapshot", t, boot, seq)
        doc.update(
            cards=[p.card for p in here] + [p.card for p, _ in gone],
            stations=[p.station for p in here] + [shaft_station] * len(gone),
            areas=[p.area for p in here] + [self.area_codes[self._shaft]] * len(gone),
            in_mine=[1] * len(here) + [2] * len(gone),
            mine_entered_at=[_iso(p.entered_at) for p in here] + [_iso(x.entry) for _, x in gone],
            mine_left_at=[None] * len(here) + [_iso(x.exit) for _, x in gone],
            area_since=[_iso(p.area_since) for p in here] + [_iso(x.exit) for _, x in gone],
            station_since=[_iso(p.station_since) for p in here] + [_iso(x.exit) for _, x in gone],
            distance_m=[p.distance_m for p in here] + [0.0] * len(gone),
        )
        if self.config.sos:
            doc["sos"] = [self.calling(p.card, t) for p in here] + [False] * len(gone)
        return orjson.dumps(doc)

    def station_status_message(self, t: int, boot: int, seq: int) -> bytes:
        doc = self._envelope("station_status", t, boot, seq)
        doc.update(
            stations=[code for code, _ in self.stations],
            run_state=[0] * len(self.stations),
            power_state=[1] * len(self.stations),
        )
        return orjson.dumps(doc)


def _iso(t: int) -> str:
    return dt.datetime.fromtimestamp(t / US, CST).isoformat()


@dataclass
class PersonnelPublishReport:
    messages: int = 0
    cycles: list[int] = field(default_factory=list)


async def publish_personnel(
    sim: PersonnelSimulator,
    mqtt_url: str,
    start: dt.datetime,
    end: dt.datetime,
    *,
    mode: str = "positions",
    snapshot_every: int = 10,
    realtime: bool = False,
    client_id: str | None = None,
    boot: int | None = None,
) -> PersonnelPublishReport:
    """Publish the definition (retained), then per cycle in [start, end) a positions batch
    (``mode="positions"``) or, every ``snapshot_every`` cycles, a full snapshot
    (``mode="snapshot"``), plus station states with each snapshot. Stamped with the
    simulated time; ``realtime`` paces cycles on the wall clock."""
    host, port = broker_address(mqtt_url)
    boot = boot if boot is not None else int(time.time() * 1000)
    c = sim.config
    report = PersonnelPublishReport()
    seq = 0
    async with aiomqtt.Client(
        host, port, identifier=client_id or f"minewatch-sim-rydw-{c.mine_code}",
        max_inflight_messages=1000, **login_options(mqtt_url),
    ) as client:  # fmt: skip
        meta = orjson.dumps(sim.meta_document(start - dt.timedelta(days=1)))
        await client.publish(personnel_meta_topic(c.mine_code), meta, qos=1, retain=True)
        loop = asyncio.get_running_loop()
        t_wall = loop.time()
        cycles = sim.cycles(start, end)
        previous_snapshot: int | None = None
        for n, t in enumerate(cycles):
            if realtime:
                await asyncio.sleep(max(0.0, t_wall + (t - cycles[0]) / US - loop.time()))
            payloads = []
            if mode == "positions":
                seq += 1
                payloads.append(sim.positions_message(t, boot, seq))
            elif n % snapshot_every == 0:
                seq += 1
                payloads.append(sim.snapshot_message(t, boot, seq, previous_snapshot))
                seq += 1
                payloads.append(sim.station_status_message(t, boot, seq))
                previous_snapshot = t
            for payload in payloads:
                await client.publish(personnel_topic(c.mine_code), payload, qos=1)
            report.messages += len(payloads)
            report.cycles.append(t)
    return report

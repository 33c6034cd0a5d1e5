"""Fusion across systems: alarms that only exist when two systems are read together.

Pure logic on columnar inputs (pandas frames, built from the database by
:mod:`alarms.fusion_store`); no I/O, no state of its own. Each evaluation computes what the
fused alarms *should* say now from the current facts, and :func:`plan` compares that with the
fused alarms stored open: raise, update, clear. Nothing else is remembered, so an evaluation
repeated on the same facts plans nothing, and a restart loses nothing.

The join between the systems is the personnel area (RYQY 区域编码) of a point
(``points.area_code``) and of a camera (``video_cameras.area_code``).

* ``gas_people`` (F01): a gas alarm (``upper_alarm``, ``power_off``, ``feed_abnormal``) is open
  on a point whose area has people underground in it. One per gas point: it fuses every gas
  alarm of the point while they overlap. Value: the head-count (``start_value`` at raise, max
  over the episode); the cards present now are kept with it. Starts at the later of the gas
  alarm's start and the arrival of the longest-present card; ends when the point's gas alarms
  have all ended (at the last end) or the area empties (at the last departure).
* ``gas_camera_offline`` (F03): a gas alarm is open on a point while a camera of its area is
  offline (status ``offline``: reported or timed out; a camera never heard of is unknown, not
  offline). Value: the cameras offline. Ends with the gas alarms, or when the area's cameras
  are all back online (at the last one's return).
* ``fan_stop_gas_rise`` (F02): a fan stop (``fan_stop``/``main_fan_stop``, the switch-state
  alarms) is open and a methane point of the fan's area ("downstream": the area is the only
  placement relation the data holds for every point; see docs/alarms.md) has either risen by
  more than ``rise`` (%CH4, per mine, default :data:`DEFAULT_FAN_STOP_GAS_RISE`) over its last
  valid reading at or before the stop, or has a pre-warning/alarm episode overlapping the stop.
  Starts at the first such reading (or at the episode's start, not before the stop); value:
  the largest rise so far; ends when the fan stop ends. The methane point often sits on
  another substation than the fan, whose readings may arrive after the fan stop has already
  ended: a stop that ended within the allowed lateness and was never fused is still examined
  (readings up to its end only), and a rise found then is raised and ended at once, at the
  stop's end (:attr:`Fused.ended_us`).
* ``co_fire_confirmed`` (F04): a CO alarm is open on a CO point (sensor type 0004: an
  ``upper_alarm`` classed ``exceedance`` or ``co_vehicle_suspected``, or a
  ``co_fire_candidate``) and, overlapping it, the point's area has a smoke alarm (``smoke``,
  the switch-state rule of sensor type 1008), or a temperature point (0003) of the area has an
  ``upper_alarm`` or has risen by more than ``rise`` (°C, per mine, default
  :data:`DEFAULT_CO_FIRE_TEMPERATURE_RISE`) over its last valid reading at or before the CO
  alarm's start. Only smoke confirms a point whose open CO alarms are all suspected exhaust
  puffs (``co_vehicle_suspected``): a vehicle warms the air too. One per CO point: it fuses the
  point's CO alarms and the smoke/temperature alarms that confirm them. Value: the confirming
  points (``points``); threshold: the temperature rise. Starts at the later of the CO alarm's
  start and the first confirmation; ends when the point's CO alarms have all ended (the
  confirmation holds for the rest of the CO episode: smoke that cleared does not make the CO
  less suspicious).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd

#: Gas alarms that fuse with people and cameras.
GAS_RULES = ("upper_alarm", "power_off", "feed_abnormal")
#: A methane point of a stopped fan's area reaching one of these is "rising".
LEVEL_RULES = ("upper_prewarn", "upper_alarm", "power_off")
FAN_RULES = ("fan_stop", "main_fan_stop")
#: %CH4 gained since the fan stopped that counts as rising, where the mine sets none
#: (``mines.fan_stop_gas_rise``). A heading's methane at 0.2-0.4 % that gains 0.2 % within a
#: stop is heading for the 1.0 % alarm; a smaller gain is within a catalytic sensor's error.
DEFAULT_FAN_STOP_GAS_RISE = 0.2

#: CO alarms (on CO points: sensor type 0004) that a fire confirmation fuses; an
#: ``upper_alarm`` counts when classed ``exceedance`` or ``co_vehicle_suspected``.
CO_RULES = ("upper_alarm", "co_fire_candidate")
CO_SENSOR_TYPE = "0004"
CO_CLASSES = ("exceedance", "co_vehicle_suspected")
PUFF = "co_vehicle_suspected"
SMOKE_RULE = "smoke"  # the switch-state alarm of a smoke sensor (1008 有烟雾)
TEMPERATURE_SENSOR_TYPES = ("0003",)  # 环境温度
#: °C gained by an area's temperature point since a CO alarm's start that confirms a fire,
#: where the mine sets none (``mines.co_fire_temperature_rise``). Twice the ±1 °C error of an
#: ambient temperature sensor: within one CO episode, ventilation alone does not move the
#: air's temperature that much; a smouldering belt or coal does.
DEFAULT_CO_FIRE_TEMPERATURE_RISE = 2.0

GAS_PEOPLE, FAN_STOP_GAS_RISE, GAS_CAMERA_OFFLINE, CO_FIRE_CONFIRMED = (
    "gas_people", "fan_stop_gas_rise", "gas_camera_offline", "co_fire_confirmed",
)  # fmt: skip
FUSION_RULES = (GAS_PEOPLE, FAN_STOP_GAS_RISE, GAS_CAMERA_OFFLINE, CO_FIRE_CONFIRMED)

Area = tuple[str, str]  # (mine, area code)

#: Columns of the input frames (times in µs since the epoch; ``ended_us`` NaN while open).
ALARM_COLUMNS = ["alarm_id", "mine", "point_id", "area", "rule", "started_us", "ended_us"]
PRESENCE_COLUMNS = ["mine", "area", "card", "since_us"]
CAMERA_COLUMNS = ["mine", "area", "camera", "online", "since_us"]
FAN_COLUMNS = [*ALARM_COLUMNS, "rise"]
READING_COLUMNS = ["fan_alarm_id", "point_id", "time_us", "value"]
LEVEL_COLUMNS = ["fan_alarm_id", "alarm_id", "point_id", "started_us"]
CO_COLUMNS = [*ALARM_COLUMNS, "classification", "rise"]
#: Alarms of a CO point's area that confirm a fire (kind: "smoke" or "temperature").
CONFIRM_COLUMNS = ["co_point_id", "kind", "alarm_id", "point_id", "started_us"]
TEMPERATURE_COLUMNS = ["co_point_id", "point_id", "time_us", "value"]


@dataclass(frozen=True, slots=True)
class Fused:
    """What a fused alarm says (should say, for :func:`plan`'s input)."""

    rule: str
    mine: str
    point_id: int  # the subject: the gas point, or the fan point
    area: str
    sources: tuple[int, ...]  # the alarms it fuses (the fan stop first)
    started_us: int
    value: float  # head-count, cameras offline, largest methane rise, or confirming points
    threshold: float | None = None
    cards: tuple[str, ...] = ()
    cameras: tuple[str, ...] = ()
    points: tuple[int, ...] = ()
    ended_us: int | None = None  # raised and ended at once (its sources ended: late readings)


@dataclass(frozen=True, slots=True)
class Stored:
    """An open fused alarm as stored."""

    alarm_id: int
    fused: Fused
    max_value: float


@dataclass(frozen=True, slots=True)
class Facts:
    """What decides when a stored fused alarm ended (the ones no longer wanted)."""

    ended: dict[int, int | None]  # source alarm id -> its end (None: still open)
    primary: frozenset[int]  # source ids that are gas alarms or fan stops
    emptied: dict[Area, int] = field(default_factory=dict)  # empty areas: last departure
    restored: dict[Area, int] = field(default_factory=dict)  # no camera offline: last return
    co: frozenset[int] = frozenset()  # source ids that are CO alarms (``co_fire_confirmed``)


@dataclass(frozen=True, slots=True)
class FusionChange:
    event: str  # "raised", "updated", "cleared"
    fused: Fused  # raised/updated: what it says now; cleared: what it said
    time_us: int  # raised: start; updated: evaluation time; cleared: end
    alarm_id: int | None = None  # updated, cleared


def frame(rows: Iterable[tuple[object, ...]], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=columns)


def open_alarms(alarms: pd.DataFrame) -> pd.DataFrame:
    """The open alarms of a frame of ALARM_COLUMNS, on points with an area."""
    return alarms[alarms["ended_us"].isna() & alarms["area"].notna()]


def _by_point(gas: pd.DataFrame) -> pd.DataFrame:
    """Open gas alarms per point: their ids (sorted) and the earliest start."""
    return (
        open_alarms(gas)
        .groupby(["mine", "point_id", "area"], sort=True)
        .agg(
            sources=("alarm_id", lambda s: tuple(sorted(int(i) for i in s))),
            started_us=("started_us", "min"),
        )
        .reset_index()
    )


def gas_people(gas: pd.DataFrame, presence: pd.DataFrame) -> list[Fused]:
    """``gas_people`` wanted now: points with an open gas alarm and people in their area."""
    points = _by_point(gas)
    if points.empty or presence.empty:
        return []
    areas = (
        presence.groupby(["mine", "area"], sort=True)
        .agg(cards=("card", lambda s: tuple(sorted(s))), since_us=("since_us", "min"))
        .reset_index()
    )
    joined = points.merge(areas, on=["mine", "area"])
    return [
        Fused(
            GAS_PEOPLE,
            str(r.mine),
            int(r.point_id),
            str(r.area),
            r.sources,
            max(int(r.started_us), int(r.since_us)),
            float(len(r.cards)),
            cards=r.cards,
        )
        for r in joined.itertuples(index=False)
    ]


def gas_cameras(gas: pd.DataFrame, cameras: pd.DataFrame) -> list[Fused]:
    """``gas_camera_offline`` wanted now: points with an open gas alarm and an area camera
    offline."""
    points = _by_point(gas)
    offline = cameras[~cameras["online"].astype(bool)]
    if points.empty or offline.empty:
        return []
    areas = (
        offline.groupby(["mine", "area"], sort=True)
        .agg(cameras=("camera", lambda s: tuple(sorted(s))), since_us=("since_us", "min"))
        .reset_index()
    )
    joined = points.merge(areas, on=["mine", "area"])
    return [
        Fused(
            GAS_CAMERA_OFFLINE,
            str(r.mine),
            int(r.point_id),
            str(r.area),
            r.sources,
            max(int(r.started_us), int(r.since_us)),
            float(len(r.cameras)),
            cameras=r.cameras,
        )
        for r in joined.itertuples(index=False)
    ]


def fan_gas_rise(
    fans: pd.DataFrame,
    readings: pd.DataFrame,
    levels: pd.DataFrame,
    fused_stops: frozenset[int] = frozenset(),
) -> list[Fused]:
    """``fan_stop_gas_rise`` wanted now, per fan stop: the open ones, and the ended ones of
    ``fans`` not in ``fused_stops`` (those that already have a fused alarm).

    ``readings``: valid methane readings of the fan's area, per fan stop: the last one at or
    before the stop (the baseline) and every one after it (up to its end). ``levels``: the
    methane points' pre-warning/alarm episodes that overlap the stop.
    """
    stops = examined_stops(fans, fused_stops).set_index("alarm_id")
    if stops.empty:
        return []
    # Merged on columns, not on an index: a join on an index can give the result that index
    # (named "fan_alarm_id"), which a groupby by that column then finds twice.
    per_stop = stops[["started_us", "rise"]].rename_axis("fan_alarm_id").reset_index()
    r = readings.merge(per_stop, on="fan_alarm_id")
    r = r.sort_values(["fan_alarm_id", "point_id", "time_us"], kind="stable")
    before = r["time_us"] <= r["started_us"]
    base = r[before].groupby(["fan_alarm_id", "point_id"])["value"].last().rename("base")
    after = r[~before].merge(base.reset_index(), on=["fan_alarm_id", "point_id"])
    after = after.assign(gain=after["value"] - after["base"])
    crossed = after[after["gain"] > after["rise"]]
    first = crossed.groupby(["fan_alarm_id", "point_id"])["time_us"].min().reset_index()
    gain = after.groupby("fan_alarm_id")["gain"].max()
    lv = levels.merge(per_stop[["fan_alarm_id", "started_us"]], on="fan_alarm_id",
                      suffixes=("", "_stop"))  # fmt: skip
    lv = lv.assign(at_us=lv[["started_us", "started_us_stop"]].max(axis=1))
    out = []
    for fan_id, stop in stops.iterrows():
        fan_first = first[first["fan_alarm_id"] == fan_id]
        fan_levels = lv[lv["fan_alarm_id"] == fan_id]
        starts = [*fan_first["time_us"].tolist(), *fan_levels["at_us"].tolist()]
        if not starts:
            continue
        points = {*fan_first["point_id"].tolist(), *fan_levels["point_id"].tolist()}
        levels_ids = sorted(int(i) for i in fan_levels["alarm_id"])
        sources = (int(str(fan_id)), *levels_ids)
        out.append(
            Fused(
                FAN_STOP_GAS_RISE,
                str(stop["mine"]),
                int(stop["point_id"]),
                str(stop["area"]),
                sources,
                int(min(starts)),
                max(float(gain.get(fan_id, 0.0)), 0.0),
                threshold=float(stop["rise"]),
                points=tuple(sorted(int(p) for p in points)),
                ended_us=None if pd.isna(stop["ended_us"]) else int(stop["ended_us"]),
            )
        )
    return out


def co_points(co: pd.DataFrame) -> pd.DataFrame:
    """Per CO point with an open CO alarm (rows of ``co``, CO_COLUMNS): its open alarms' ids
    (sorted), the earliest start, whether they are all suspected puffs, the mine's rise."""
    cols = ["mine", "point_id", "area", "sources", "started_us", "puff_only", "rise"]
    opened = open_alarms(co)
    if opened.empty:
        return pd.DataFrame(columns=cols)
    return (
        opened.assign(puff=opened["classification"] == PUFF)
        .groupby(["mine", "point_id", "area"], sort=True)
        .agg(
            sources=("alarm_id", lambda s: tuple(sorted(int(i) for i in s))),
            started_us=("started_us", "min"),
            puff_only=("puff", "all"),
            rise=("rise", "first"),
        )
        .reset_index()[cols]
    )


def co_fire(co: pd.DataFrame, confirming: pd.DataFrame, readings: pd.DataFrame) -> list[Fused]:
    """``co_fire_confirmed`` wanted now, per CO point with an open CO alarm.

    ``confirming``: the smoke alarms and temperature ``upper_alarm`` episodes of each CO
    point's area that overlap its CO alarms (started before now, not ended before the CO's
    start). ``readings``: valid readings of the area's temperature points, per CO point: the
    last one at or before the CO's start (the baseline) and every one after it.
    """
    points = co_points(co)
    if points.empty:
        return []
    out = []
    for p in points.itertuples(index=False):
        start, rise = int(p.started_us), float(p.rise)
        conf = confirming[confirming["co_point_id"] == p.point_id]
        if p.puff_only:  # an exhaust puff warms the air: only smoke says fire
            conf = conf[conf["kind"] == "smoke"]
        found = {(int(a), int(q), max(int(s), start))
                 for a, q, s in conf[["alarm_id", "point_id", "started_us"]].itertuples(
                     index=False)}  # fmt: skip
        crossed = {} if p.puff_only else temperature_rises(
            readings[readings["co_point_id"] == p.point_id], start, rise)  # fmt: skip
        starts = [s for _, _, s in found] + list(crossed.values())
        if not starts:
            continue
        confirmed = {q for _, q, _ in found} | set(crossed)
        out.append(
            Fused(
                CO_FIRE_CONFIRMED,
                str(p.mine),
                int(p.point_id),
                str(p.area),
                (*p.sources, *sorted({a for a, _, _ in found})),
                min(starts),
                float(len(confirmed)),
                threshold=rise,
                points=tuple(sorted(confirmed)),
            )
        )
    return out


def temperature_rises(readings: pd.DataFrame, start_us: int, rise: float) -> dict[int, int]:
    """Temperature point -> its first reading after ``start_us`` more than ``rise`` above its
    last reading at or before it (points without such a baseline never rise)."""
    r = readings.sort_values(["point_id", "time_us"], kind="stable")
    before = r["time_us"] <= start_us
    base = r[before].groupby("point_id")["value"].last().rename("base").reset_index()
    after = r[~before].merge(base, on="point_id")
    crossed = after[after["value"] - after["base"] > rise]
    return {int(q): int(t) for q, t in crossed.groupby("point_id")["time_us"].min().items()}


def examined_stops(fans: pd.DataFrame, fused_stops: frozenset[int]) -> pd.DataFrame:
    """The fan stops (rows of ``fans``, on points with an area) that may want a fused alarm:
    the open ones, and the ended ones without one yet."""
    ended = fans["ended_us"].notna()
    unfused = ~fans["alarm_id"].isin(list(fused_stops))
    return fans[fans["area"].notna() & (~ended | unfused)]


def emptied_areas(
    areas: Iterable[Area], presence: pd.DataFrame, departures: pd.DataFrame
) -> dict[Area, int]:
    """Areas of ``areas`` with nobody in them now -> their last departure (``departures``:
    mine, area, left_us)."""
    occupied = set(zip(presence["mine"], presence["area"], strict=True))
    left = {(m, a): int(t) for m, a, t in departures[["mine", "area", "left_us"]].itertuples(
        index=False)}  # fmt: skip
    return {key: left[key] for key in set(areas) - occupied if key in left}


def restored_areas(areas: Iterable[Area], cameras: pd.DataFrame) -> dict[Area, int]:
    """Areas of ``areas`` with no camera offline now -> the last camera's return online."""
    offline = set(zip(*(cameras.loc[~cameras["online"].astype(bool), c] for c in ("mine", "area")),
                      strict=True))  # fmt: skip
    online = cameras[cameras["online"].astype(bool)].groupby(["mine", "area"])["since_us"].max()
    return {key: int(online[key]) for key in set(areas) - offline if key in online.index}


def plan(
    wanted: list[Fused], stored: list[Stored], facts: Facts, now_us: int
) -> list[FusionChange]:
    """The changes that make the stored fused alarms say what is ``wanted``; in an order the
    database accepts (an episode ends before its successor on the same subject opens). A
    wanted alarm that has ended already (``Fused.ended_us``) is raised as it is, after the
    clears and before the other raises."""
    want = {(f.rule, f.point_id): f for f in wanted if f.ended_us is None}
    out: list[FusionChange] = []
    raises = [FusionChange("raised", f, f.started_us) for f in wanted if f.ended_us is not None]
    for s in stored:
        old = s.fused
        new = want.pop((old.rule, old.point_id), None)
        if new is not None and not _succeeds(old, new, facts):
            merged = _merged(old, new)
            if merged != old or new.value > s.max_value:
                out.append(FusionChange("updated", merged, now_us, s.alarm_id))
            continue
        out.append(FusionChange("cleared", old, _end(old, facts, now_us), s.alarm_id))
        if new is not None:  # a new episode of the condition, on the same subject
            raises.append(FusionChange("raised", new, new.started_us))
    raises += [FusionChange("raised", f, f.started_us) for f in want.values()]
    return out + raises


def _succeeds(old: Fused, new: Fused, facts: Facts) -> bool:
    """``new`` is a later episode: ``old``'s primary alarms all ended, ``new`` has none of them
    (a gas alarm ended and another began between two evaluations)."""
    primary = _primary(old, facts)
    ended = [facts.ended.get(i) for i in primary]
    return (
        bool(primary) and all(e is not None for e in ended) and not set(primary) & set(new.sources)
    )


def _primary(old: Fused, facts: Facts) -> list[int]:
    """The sources of ``old`` whose end ends it: its CO alarms for ``co_fire_confirmed`` (not
    the smoke or temperature alarms that confirmed them), else its gas alarms or fan stop."""
    own = facts.co if old.rule == CO_FIRE_CONFIRMED else facts.primary
    return [i for i in old.sources if i in own]


def _merged(old: Fused, new: Fused) -> Fused:
    """``new`` on ``old``'s episode: its start, and every alarm it fused so far."""
    sources = old.sources + tuple(i for i in new.sources if i not in old.sources)
    return Fused(
        old.rule, old.mine, old.point_id, old.area, sources, old.started_us, new.value,
        old.threshold, new.cards, new.cameras, tuple(sorted({*old.points, *new.points})),
    )  # fmt: skip


def _end(old: Fused, facts: Facts, now_us: int) -> int:
    """When ``old``'s condition stopped holding: the earliest known reason, else now."""
    candidates = []
    primary = [facts.ended.get(i) for i in _primary(old, facts)]
    if primary and all(e is not None for e in primary):
        candidates.append(max(e for e in primary if e is not None))
    key = (old.mine, old.area)
    if old.rule == GAS_PEOPLE and key in facts.emptied:
        candidates.append(facts.emptied[key])
    if old.rule == GAS_CAMERA_OFFLINE and key in facts.restored:
        candidates.append(facts.restored[key])
    return max(min(candidates) if candidates else now_us, old.started_us)

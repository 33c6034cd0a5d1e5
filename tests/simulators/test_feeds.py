"""Personnel, video and output scenarios: the labelled situation is in the feed data, only
inside its label window, and the alarm rules (alarms/rules) find exactly the labels."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from minewatch.alarms.rules.output import OUTPUT_MONTH, PeriodOutput, evaluate_output
from minewatch.alarms.rules.personnel import (
    AreaInfo,
    MineLimits,
    PersonnelAlarms,
    Underground,
    conditions,
)
from minewatch.simulators.config import MineConfig, example_mine_path, load_mine_config
from minewatch.simulators.feed_tables import events, heartbeats, output, positions
from minewatch.simulators.feeds import MineFeeds
from minewatch.simulators.model import SimulatedMine
from minewatch.trace import FeedLabel

US = 1_000_000
DAY_S = 86400
SCHEDULE: list[dict[str, Any]] = [
    {"kind": "camera_offline", "working": "1201综采工作面", "start_s": 25, "duration_s": 150},
    {"kind": "area_overcrowding", "working": "1201综采工作面", "start_s": 3600,
     "duration_s": 1200, "extra": 2},
    {"kind": "restricted_area", "start_s": 6000, "duration_s": 600},
    {"kind": "mine_overcrowding", "start_s": 9000, "duration_s": 900},
    {"kind": "sos", "start_s": 12000, "duration_s": 300, "person": 20},
    {"kind": "overtime", "start_s": 20000, "duration_s": 3600},
    {"kind": "leader_absent", "start_s": 45000, "duration_s": 60},
]  # fmt: skip


def config_with(schedule: list[dict[str, Any]], **simulation: Any) -> MineConfig:
    data = load_mine_config(example_mine_path("small")).model_dump(mode="json")
    data["feed_scenarios"] = schedule
    data["simulation"] |= simulation
    return MineConfig.model_validate(data)


@pytest.fixture(scope="module")
def day() -> tuple[MineFeeds, pa.Table]:
    config = config_with(SCHEDULE)
    feeds = MineFeeds(config, SimulatedMine(config).ground_truth)
    t0 = feeds.start_us
    return feeds, positions(feeds, t0, t0 + DAY_S * US)


def label(feeds: MineFeeds, kind: str) -> FeedLabel:
    found = [g for g in feeds.labels if g.kind == kind and g.cause is None]
    assert len(found) == 1, feeds.labels
    return found[0]


def rows(table: pa.Table) -> dict[str, np.ndarray]:
    return {name: np.asarray(table.column(name).to_pylist()) for name in table.column_names}


def test_every_scheduled_kind_is_labelled_once_and_the_leader_who_stays_is_derived(
    day: tuple[MineFeeds, pa.Table],
) -> None:
    feeds, _ = day
    roots = sorted(g.kind for g in feeds.labels if g.cause is None)
    assert roots == sorted(s["kind"] for s in SCHEDULE)
    (derived,) = [g for g in feeds.labels if g.cause is not None]
    assert derived.kind == "overtime" and feeds.labels[derived.cause].kind == "overtime"


def test_the_overcrowded_area_is_over_its_quota_in_the_label_window_and_never_outside(
    day: tuple[MineFeeds, pa.Table],
) -> None:
    feeds, table = day
    g = label(feeds, "area_overcrowding")
    r = rows(table.filter(pa.compute.equal(table["in_mine"], 1)))
    here = r["time_us"][r["area"] == g.subject]
    grid = np.arange(feeds.start_us, feeds.start_us + DAY_S * US, feeds.cycle_us)
    count = np.searchsorted(np.sort(here), grid, "right") - np.searchsorted(np.sort(here), grid)
    inside = (grid >= feeds.start_us + g.start_s * US) & (grid < feeds.start_us + g.end_s * US)
    assert g.limit == 25 and np.all(count[inside] > 25) and np.all(count[~inside] <= 25)
    assert count[inside].max() == g.value


def test_the_mine_is_over_its_quota_only_in_the_label_window(
    day: tuple[MineFeeds, pa.Table],
) -> None:
    feeds, table = day
    g = label(feeds, "mine_overcrowding")
    r = rows(table.filter(pa.compute.equal(table["in_mine"], 1)))
    times, count = np.unique(r["time_us"], return_counts=True)
    inside = (times >= feeds.start_us + g.start_s * US) & (times < feeds.start_us + g.end_s * US)
    assert np.all(count[inside] > feeds.max_people) and np.all(count[~inside] <= feeds.max_people)
    assert inside.sum() == 900 // 30


def test_the_overtime_worker_stays_past_the_limit_until_the_label_ends(
    day: tuple[MineFeeds, pa.Table],
) -> None:
    feeds, table = day
    g = label(feeds, "overtime")
    r = rows(table)
    mine = r["card"] == g.subject
    entered = r["entered_us"][mine & (r["time_us"] == feeds.start_us + g.start_s * US)]
    assert entered[0] + 10 * 3600 * US == feeds.start_us + g.start_s * US
    exit_row = mine & (r["in_mine"] == 2) & (r["entered_us"] == entered[0])
    assert r["time_us"][exit_row].tolist() == [feeds.start_us + g.end_s * US]
    down = mine & (r["in_mine"] == 1) & (r["entered_us"] == entered[0])
    assert r["time_us"][down].max() == feeds.start_us + g.end_s * US - feeds.cycle_us


def test_the_restricted_area_holds_the_person_exactly_in_the_window(
    day: tuple[MineFeeds, pa.Table],
) -> None:
    feeds, table = day
    g = label(feeds, "restricted_area")
    r = rows(table)
    there = r["time_us"][r["area"] == g.related]
    assert set(r["card"][r["area"] == g.related]) == {g.subject}
    assert there.min() == feeds.start_us + g.start_s * US
    assert there.max() == feeds.start_us + g.end_s * US - feeds.cycle_us


def test_no_leader_of_the_shift_is_underground_in_the_no_leader_window(
    day: tuple[MineFeeds, pa.Table],
) -> None:
    feeds, table = day
    g = label(feeds, "leader_absent")
    r = rows(table)
    leader = (r["card"] == g.detail) & (r["in_mine"] == 1)
    start, end = feeds.start_us + g.start_s * US, feeds.start_us + g.end_s * US
    assert r["time_us"][leader & (r["time_us"] < start)].max() == start - feeds.cycle_us
    assert not np.any(leader & (r["time_us"] >= start) & (r["time_us"] < end))


def test_sos_is_reported_exactly_in_its_window(day: tuple[MineFeeds, pa.Table]) -> None:
    feeds, table = day
    g = label(feeds, "sos")
    r = rows(table)
    calling = r["time_us"][r["sos"]]
    assert set(r["card"][r["sos"]]) == {g.subject}
    assert calling.min() == feeds.start_us + g.start_s * US
    assert calling.max() == feeds.start_us + g.end_s * US - feeds.cycle_us


def test_the_camera_sends_nothing_while_offline_during_a_gas_label_of_its_area(
    day: tuple[MineFeeds, pa.Table],
) -> None:
    feeds, _ = day
    g = label(feeds, "camera_offline")
    gas = feeds.gas_labels[g.gas_label]  # type: ignore[index]
    assert g.detail == "during_gas" and gas.kind == "methane_exceedance"
    assert gas.start_s < g.end_s and g.start_s < gas.end_s and gas.substation == "001"
    t0 = feeds.start_us
    beats = rows(heartbeats(feeds, t0, t0 + 3600 * US))
    mine = beats["time_us"][beats["camera"] == g.subject]
    start, end = t0 + g.start_s * US, t0 + g.end_s * US
    assert not np.any((mine >= start) & (mine < end))
    assert start - 30 * US in mine and end in mine
    assert len(set(beats["camera"])) == len(feeds.camera_codes)
    seen = rows(events(feeds, t0, t0 + DAY_S * US))
    assert len(seen["time_us"]) > 0
    assert not np.any((seen["camera"] == g.subject) & (seen["time_us"] >= start)
                      & (seen["time_us"] < end))  # fmt: skip


def test_the_personnel_rules_hold_exactly_where_the_labels_are(
    day: tuple[MineFeeds, pa.Table],
) -> None:
    """alarms.rules.personnel.conditions at every positioning instant of the day, on the
    positions feed, against the labels: no condition without a label, none missing."""
    feeds, table = day
    meta = feeds.personnel.meta_document(dt.datetime.now(dt.UTC))
    leaders = {p["card"] for p in meta["people"] if p["leader"]}  # type: ignore[index]
    areas = {a["code"]: AreaInfo(a["type"], a["approved"]) for a in meta["areas"]}  # type: ignore[index]
    limits = MineLimits(10 * 3600 * US, feeds.max_people, feeds.shift_starts_h)
    r = rows(table.filter(pa.compute.equal(table["in_mine"], 1)))
    since: dict[tuple[str, str], int] = {}
    found: set[tuple[str, str, int]] = set()
    times = np.unique(r["time_us"])
    bounds = np.searchsorted(r["time_us"], times)
    for i, t in enumerate(times.tolist()):
        sl = slice(bounds[i], bounds[i + 1] if i + 1 < len(times) else len(r["time_us"]))
        cards, area = r["card"][sl], r["area"][sl]
        area_since = np.array(
            [since.setdefault((c, a), t) for c, a in zip(cards, area, strict=True)], np.int64
        )
        since = {(c, a): s for c, a, s in zip(cards, area, area_since.tolist(), strict=True)}
        people = Underground(cards.astype(object), r["entered_us"][sl].astype(np.int64),
                             area.astype(object), area_since,
                             np.array([c in leaders for c in cards], bool))  # fmt: skip
        for _, code, rule in conditions(feeds.config.mine.code, t, people, limits, areas, None):
            found.add((rule, code, t))
    expected = set()
    for g in feeds.labels:
        if g.kind in ("camera_offline", "sos", "output_month"):
            continue
        for t in times.tolist():
            start, end = feeds.start_us + g.start_s * US, feeds.start_us + g.end_s * US
            if (start < t < end) if g.kind == "overtime" else (start <= t < end):
                expected.add((g.kind, g.subject, t))
    assert found == expected


def test_a_month_above_its_limit_is_labelled_from_the_crossing_and_the_rule_raises() -> None:
    start = dt.datetime(2024, 3, 29, 8, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    config = config_with([{"kind": "output_month", "start_s": -27 * DAY_S, "duration_s":
                           30 * DAY_S, "factor": 1.4}], start=start.isoformat())  # fmt: skip
    feeds = MineFeeds(config, [])
    g = label(feeds, "output_month")
    table = rows(output(feeds, feeds.start_us + DAY_S * US))
    t, v = table["time_us"], table["value"]
    assert t[0] == round(dt.datetime(2024, 3, 1, tzinfo=start.tzinfo).timestamp() * US)
    total = np.cumsum(np.concatenate([[0.0], np.diff(v)]))  # no wrap in a month here
    limit = 0.1 * config.mine.approved_capacity_t
    crossing = int(np.flatnonzero(total > limit)[0])
    assert t[crossing] == feeds.start_us + g.start_s * US and g.limit == limit
    assert g.end_s == (round(dt.datetime(2024, 4, 1, tzinfo=start.tzinfo).timestamp())
                       - feeds.start_us // US)  # fmt: skip
    update = PersonnelAlarms().begin()
    evaluate_output(update, config.mine.code, OUTPUT_MONTH, limit,
                    [PeriodOutput(int(t[0]), float(total[-1]), int(t[crossing]))],
                    int(t[-1]), "Asia/Shanghai", None)  # fmt: skip
    assert [(c.event, c.time_us) for c in update.changes] == [("raised", int(t[crossing]))]
    normal = MineFeeds(config_with([], start=start.isoformat()), [])
    assert not [x for x in normal.labels if x.kind == "output_month"]


def test_random_feed_scenarios_come_from_the_seed() -> None:
    per_day = {"area_overcrowding": 3, "overtime": 3, "restricted_area": 3, "sos": 3,
               "camera_offline": 3, "mine_overcrowding": 2, "leader_absent": 1}  # fmt: skip
    data = config_with([]).model_dump(mode="json")
    data["random_feed_scenarios"] = {"per_day": per_day}
    config = MineConfig.model_validate(data)
    gas = SimulatedMine(config).ground_truth
    first, second = MineFeeds(config, gas), MineFeeds(config, gas)
    assert first.labels == second.labels
    kinds = {g.kind for g in first.labels}
    assert {"area_overcrowding", "overtime", "restricted_area", "sos"} <= kinds

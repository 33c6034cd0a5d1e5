"""The temperature capture of the F04 scoring (alarms/evaluation/fire_score.py,
``TemperatureTap``) keeps only the readings a fire confirmation can look at, and the
confirmations stay those of keeping every reading (hand-made series; the simulated day is in
test_evaluate_golden.py)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from minewatch.alarms.episodes import Episode, EpisodeChange
from minewatch.alarms.evaluation.fire_score import LOOKBACK_US, TemperatureTap, confirmed_fires
from tests.alarms.test_fire_score import (
    CO_BELT,
    CO_FACE,
    DEFINITION,
    ELSEWHERE,
    SMOKE,
    TEMP_BELT,
    TEMP_FACE,
    episode,
    ramp,
)

S = 1_000_000
TEMPS = (TEMP_BELT, TEMP_FACE, ELSEWHERE)


def change(e: Episode, *, opened: bool, ended: bool) -> EpisodeChange:
    return EpisodeChange(
        e.point, e.rule, "", opened, e.start_us if opened else None, 24.0, 0.0,
        e.end_us if ended else None, 0, 0.0, 0.0, 0, 0.0, 0,
        e.classification, e.raised_us if opened else None,
    )  # fmt: skip


def captured(episodes: list[Episode], readings: pd.DataFrame, end_s: int) -> TemperatureTap:
    """The tap driven as the replay drives it, one second a batch: the engine opens each CO
    alarm when it raises it (and holds its run unraised from its start until then)."""
    tap = TemperatureTap.of(DEFINITION)
    by_second = readings.groupby(readings["time_us"] // S)
    for second in range(end_s):
        now = second * S
        changes = [change(e, opened=e.raised_us == now, ended=e.end_us == now)
                   for e in episodes if now in (e.raised_us, e.end_us)]  # fmt: skip
        tap.track([c for c in changes if c.rule in ("upper_alarm", "co_fire_candidate")])
        if second in by_second.groups:
            rows = by_second.get_group(second).sort_values("point_id", kind="stable")
            p = rows["point_id"].to_numpy(np.int32)
            tap.feed(p, rows["time_us"].to_numpy(np.int64), rows["value"].to_numpy(),
                     np.ones(len(rows), bool))  # fmt: skip
        bound = np.full(len(DEFINITION.points), now + 1, np.int64)
        for e in episodes:
            if e.raised_us is not None and e.start_us <= now < e.raised_us:
                bound[e.point] = min(bound[e.point], e.start_us)
        tap.settle(bound, force=second % 7 == 0)  # settled at uneven cuts
    tap.finish()
    return tap


def everything(readings: pd.DataFrame) -> pd.DataFrame:
    tap = TemperatureTap.of(DEFINITION)
    p = readings["point_id"].to_numpy(np.int32)
    order = np.argsort(p, kind="stable")
    tap.feed(p[order], readings["time_us"].to_numpy(np.int64)[order],
             readings["value"].to_numpy()[order], np.ones(len(p), bool))  # fmt: skip
    return tap.frame()


def warm_air(end_s: int) -> pd.DataFrame:
    return pd.concat([ramp(TEMP_BELT, 0, end_s, 24.0, 0.03), ramp(TEMP_FACE, 0, end_s, 22.0, 0.012),
                      ramp(ELSEWHERE, 0, end_s, 20.0, 0.05)])  # fmt: skip


def test_temperature_readings_far_from_any_co_alarm_are_not_kept() -> None:
    readings = warm_air(3000)
    tap = captured([], readings, 3000)
    assert tap.frame().empty and tap.pending_rows == 0
    assert tap.dropped == 2 * 3000  # the two areas with a CO point; ELSEWHERE is never tapped
    # one CO alarm on the face from 2,000 s to 2,300 s (raised at 2,002 s): the face's readings
    # from ten minutes before its start to its end, nothing of the belt
    alarm = episode(CO_FACE, "upper_alarm", "exceedance", 2000, 2300, raised_s=2002)
    kept = captured([alarm], readings, 3000).frame()
    assert set(kept["point_id"]) == {TEMP_FACE}
    t = kept["time_us"]
    assert (int(t.min()), int(t.max()), len(kept)) == (2000 * S - LOOKBACK_US, 2299 * S, 900)


def test_confirmations_are_those_of_keeping_every_reading() -> None:
    episodes = [
        # a face fire confirmed by its warming air (a fire candidate raised 180 s in)
        episode(CO_FACE, "upper_alarm", "exceedance", 1500, 2400, raised_s=1502),
        episode(CO_FACE, "co_fire_candidate", "exceedance", 1500, 2400, raised_s=1680),
        # a puff on the belt, later a belt fire, and a CO alarm still open at the end
        episode(CO_BELT, "upper_alarm", "co_vehicle_suspected", 150, 240, raised_s=152),
        episode(SMOKE, "smoke", "exceedance", 200, 260),
        episode(CO_BELT, "upper_alarm", "exceedance", 2600, 3200, raised_s=2602),
        episode(CO_BELT, "co_fire_candidate", "exceedance", 2600, 3200, raised_s=2780),
        episode(CO_BELT, "upper_alarm", "exceedance", 4200, None, raised_s=4202),
        episode(CO_BELT, "co_fire_candidate", "exceedance", 4200, None, raised_s=4380),
    ]
    readings = warm_air(5000)
    tap = captured(episodes, readings, 5000)
    full = confirmed_fires(DEFINITION, episodes, everything(readings))
    assert len(full) == 4  # the puff by smoke, the face fire, both belt fires by heat
    assert [dataclasses.astuple(e) for e in confirmed_fires(DEFINITION, episodes, tap.frame())] \
        == [dataclasses.astuple(e) for e in full]  # fmt: skip
    assert tap.dropped > 0 and len(tap.frame()) + tap.dropped == 2 * 5000


def test_a_co_alarm_opening_before_the_bound_given_is_refused() -> None:
    tap = TemperatureTap.of(DEFINITION)
    tap.feed(np.array([TEMP_FACE], np.int32), np.array([10 * S]), np.array([22.0]),
             np.ones(1, bool))  # fmt: skip
    tap.settle(np.full(len(DEFINITION.points), 1000 * S, np.int64), force=True)
    late = episode(CO_FACE, "upper_alarm", "exceedance", 300, 500)
    with pytest.raises(RuntimeError, match="dropped"):
        tap.track([change(late, opened=True, ended=False)])

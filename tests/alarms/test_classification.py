"""Every excursion gets a class: calibration flagged, declared or undeclared, interference."""

from __future__ import annotations

from tests.alarms.helpers import T0, S, recorder, series

CALIBRATION = 4
#: A test-gas excursion: zero air, 2.00 %CH4 standard gas held ~1 min, back to the baseline.
TEST_GAS = [0.3, 0.0, 0.0, 1.2, 2.0, 2.0, 2.01, 1.99, 2.0, 2.0, 2.0, 1.1, 0.4, 0.3]


def test_flagged_calibration_is_recorded_as_calibration_not_as_a_gas_alarm() -> None:
    rec = recorder({})
    status = [0, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 0, 0]
    rec.feed(series(1, TEST_GAS, status=status))
    (episode,) = rec.episodes
    assert episode.rule == "calibration" and episode.abnormal_type == "007"
    assert episode.classification == "calibration_flagged"
    assert (episode.started_s, episode.ended_s) == (3.0, 12.0)  # from 1.2 until below 1.0
    assert episode.max == 2.01


def test_declared_window_makes_the_same_excursion_a_declared_calibration() -> None:
    window = (1, T0 + 1 * S, T0 + 13 * S)
    rec = recorder({}, calibrations=[window])
    rec.feed(series(1, TEST_GAS))  # no status bit at all: the declaration is enough
    (episode,) = rec.episodes
    assert episode.rule == "calibration" and episode.classification == "calibration_declared"


def test_a_declared_window_elsewhere_in_time_does_not_cover_the_excursion() -> None:
    rec = recorder({}, calibrations=[(1, T0 + 100 * S, T0 + 200 * S)])
    rec.feed(series(1, TEST_GAS))
    assert {e.rule for e in rec.episodes} == {"upper_alarm", "power_off"}


def test_undeclared_calibration_raises_then_is_reclassified_when_it_ends() -> None:
    rec = recorder({})
    changes = rec.feed(series(1, TEST_GAS[:8]))
    # while it lasts it is an exceedance: nobody can know it will come back (recall first)
    assert {(c.rule, c.classification) for c in changes} == {
        ("upper_alarm", "exceedance"),
        ("power_off", "exceedance"),
    }
    rec.feed(series(1, TEST_GAS[8:], start_s=8))
    assert {(e.rule, e.classification) for e in rec.episodes} == {
        ("upper_alarm", "calibration_undeclared"),
        ("power_off", "calibration_undeclared"),
    }


def test_a_real_exceedance_with_a_noisy_plateau_stays_an_exceedance() -> None:
    rec = recorder({})
    real = [0.3, 0.7, 1.1, 1.6, 1.83, 1.77, 1.91, 1.86, 1.72, 1.8, 1.69, 1.2, 0.7, 0.4]
    rec.feed(series(1, real))
    assert {(e.rule, e.classification) for e in rec.episodes} == {
        ("upper_alarm", "exceedance"),
        ("power_off", "exceedance"),
    }


def test_a_long_plateau_at_the_gas_level_is_not_a_calibration() -> None:
    rec = recorder({"poweroff_high": None})
    rec.feed(series(1, [0.3] + [2.0] * 12 + [0.3], step_s=60))  # 12 minutes at 2.0
    (episode,) = rec.episodes
    assert episode.classification == "exceedance"


def test_point_calibration_gas_replaces_the_default_levels() -> None:
    rec = recorder({"calibration_gas": 2.5, "poweroff_high": None})
    rec.feed(series(1, [0.3, 0.0, 2.5, 2.5, 2.5, 2.5, 0.3]))
    rec.feed(series(1, [0.3, 0.0, 2.0, 2.0, 2.0, 2.0, 0.3], start_s=100))
    gas = [e.classification for e in rec.episodes if e.rule != "data_interruption"]
    assert gas == ["calibration_undeclared", "exceedance"]


def test_spike_across_a_batch_boundary_is_still_interference() -> None:
    rec = recorder({})
    assert rec.feed(series(1, [0.3, 3.5])) == []  # pending: not yet raised, not yet a spike
    rec.feed(series(1, [0.3, 0.3], start_s=2))
    (spike,) = rec.episodes
    assert spike.rule == "interference" and (spike.started_s, spike.ended_s) == (1.0, 2.0)


def test_spikes_never_raise_and_every_two_sample_excursion_does() -> None:
    """Recall 1.0 on excursions of two readings or more; no gas alarm from a lone spike."""
    values, truth = [], []
    for k in range(1, 40):  # excursions of 1..3 readings at different heights
        length = k % 3 + 1
        values += [0.3, 0.3] + [1.0 + 0.07 * k] * length
        truth.append(length >= 2)
    rec = recorder({"poweroff_high": None})
    rec.feed(series(1, [*values, 0.3]))
    gas = rec.of("upper_alarm")
    assert len(gas) == sum(truth)
    assert len(rec.of("interference")) == truth.count(False)


def test_a_test_gas_shape_without_the_zero_gas_step_stays_an_exceedance() -> None:
    """Real gas can plateau at a standard-gas level; it does not begin from fresh air."""
    rec = recorder({})
    no_zero = [0.3, 0.5, 1.2, 2.0, 2.0, 2.01, 1.99, 2.0, 2.0, 2.0, 1.1, 0.4, 0.3]
    rec.feed(series(1, no_zero))
    assert {e.classification for e in rec.episodes} == {"exceedance"}


def test_the_zero_step_counts_across_batches_and_only_shortly_before() -> None:
    rec = recorder({"poweroff_high": None})
    rec.feed(series(1, [0.3, 0.0, 0.0]))  # zero gas at t=1, 2; the gas comes in the next batch
    rec.feed(series(1, [1.2, 2.0, 2.0, 2.0, 0.3], start_s=3))
    rec.feed(series(1, [0.0], start_s=100))  # zero again, but 20 minutes before the next one
    rec.feed(series(1, [0.3, 2.0, 2.0, 2.0, 2.0, 0.3], start_s=1300))
    gas = [e.classification for e in rec.episodes if e.rule != "data_interruption"]
    assert gas == ["calibration_undeclared", "exceedance"]

"""The presence tracker without I/O: snapshots and observations become trips and stays,
idempotently."""

from __future__ import annotations

from minewatch.ingest.feeds.presence import (
    PresenceTracker,
    SnapshotRow,
    StayClosed,
    StayOpened,
    StayRetargeted,
    TripClosed,
    TripOpened,
)

MINE = "141024010001"
SHAFT, FACE = f"{MINE}0001", f"{MINE}0003"
S_SHAFT, S_FACE = f"{SHAFT}000001", f"{FACE}000001"
A, B = f"{MINE}00001", f"{MINE}00002"
MIN = 60_000_000


def _apply_snapshot(tracker: PresenceTracker, t: int, rows: list[SnapshotRow]):  # type: ignore[no-untyped-def]
    update = tracker.begin()
    applied = update.snapshot(MINE, t, rows)
    tracker.commit(update)
    return applied, update


def test_a_snapshot_turns_into_entries_and_a_repeated_snapshot_changes_nothing() -> None:
    tracker = PresenceTracker()
    rows = [
        SnapshotRow(A, S_FACE, FACE, 1, mine_entered_at=0, area_since=10 * MIN,
                    station_since=12 * MIN),
        SnapshotRow(B, S_SHAFT, SHAFT, 1, mine_entered_at=14 * MIN),
    ]  # fmt: skip
    applied, update = _apply_snapshot(tracker, 15 * MIN, rows)
    assert applied
    assert update.transitions == [
        TripOpened((MINE, A), 0), StayOpened((MINE, A), FACE, 10 * MIN),
        TripOpened((MINE, B), 14 * MIN), StayOpened((MINE, B), SHAFT, 15 * MIN),
    ]  # fmt: skip
    state = dict(tracker.state)
    # The same snapshot again (same time: stale) and the same content later: no change.
    for t in (15 * MIN, 20 * MIN):
        _, again = _apply_snapshot(tracker, t, rows)
        assert again.transitions == [] and again.positions == [] and again.changed == {}
    assert tracker.state == state


def test_absence_from_a_snapshot_or_an_exit_flag_ends_the_trip() -> None:
    tracker = PresenceTracker()
    rows = [SnapshotRow(A, S_FACE, FACE, 1, mine_entered_at=0, area_since=0),
            SnapshotRow(B, S_FACE, FACE, 1, mine_entered_at=0, area_since=0)]  # fmt: skip
    _apply_snapshot(tracker, 5 * MIN, rows)
    exit_b = SnapshotRow(B, S_SHAFT, SHAFT, 2, mine_entered_at=0, mine_left_at=8 * MIN)
    _, update = _apply_snapshot(tracker, 10 * MIN, [exit_b])
    assert update.transitions == [
        StayClosed((MINE, B), 0, 8 * MIN), TripClosed((MINE, B), 0, 8 * MIN),
        StayClosed((MINE, A), 0, 10 * MIN), TripClosed((MINE, A), 0, 10 * MIN),
    ]  # fmt: skip
    assert tracker.underground(MINE) == {}
    _, again = _apply_snapshot(tracker, 15 * MIN, [exit_b])  # vendors repeat the exit
    assert again.transitions == []


def test_a_trip_seen_only_as_an_exit_is_recorded_once() -> None:
    tracker = PresenceTracker()
    row = SnapshotRow(A, S_SHAFT, SHAFT, 2, mine_entered_at=1 * MIN, mine_left_at=4 * MIN)
    _, update = _apply_snapshot(tracker, 5 * MIN, [row])
    assert update.transitions == [TripOpened((MINE, A), MIN), TripClosed((MINE, A), MIN, 4 * MIN)]
    _, again = _apply_snapshot(tracker, 6 * MIN, [row])
    assert again.transitions == []


def test_observations_move_cards_and_late_ones_are_not_applied() -> None:
    tracker = PresenceTracker()
    update = tracker.begin()
    update.observe((MINE, A), 0, S_SHAFT, SHAFT, 1)
    update.observe((MINE, A), 0, S_FACE, FACE, 1)  # a second move at the same instant
    update.observe((MINE, A), 5 * MIN, S_FACE, FACE, 1, distance_m=3.5)
    update.observe((MINE, A), 2 * MIN, S_SHAFT, SHAFT, 1)  # late: stored, not applied
    update.observe((MINE, A), 9 * MIN, S_SHAFT, SHAFT, 2)
    tracker.commit(update)
    assert update.transitions == [
        TripOpened((MINE, A), 0), StayOpened((MINE, A), SHAFT, 0),
        StayRetargeted((MINE, A), 0, FACE),
        StayClosed((MINE, A), 0, 9 * MIN), TripClosed((MINE, A), 0, 9 * MIN),
    ]  # fmt: skip
    assert update.late == 1 and len(update.positions) == 5
    presence = tracker.state[(MINE, A)]
    assert not presence.underground and presence.left_at == 9 * MIN

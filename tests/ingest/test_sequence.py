"""Exact deduplication by (boot, seq) whatever the order of arrival (ingest/sequence.py): what a
bridge does after a link outage (resends, late messages, a boot's tail after the next boot)."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from minewatch.ingest.sequence import (
    MAX_EARLIER,
    MAX_MISSING,
    UNKNOWN,
    SourceMark,
    Watermark,
    first_mark,
)


def _admit_all(marks: list[Watermark], start: SourceMark | None) -> tuple[list[Watermark], int]:
    """The marks admitted as new, in order, and the gaps counted."""
    state, new, gaps = start, [], 0
    for mark in marks:
        if state is None:
            state = first_mark(mark)
            new.append(mark)
            continue
        admitted = state.admit(mark)
        assert admitted is not UNKNOWN  # every boot from the first one on is remembered here
        if admitted is not None:
            state, gap = admitted
            gaps += gap
            new.append(mark)
    return new, gaps


def test_in_order_each_message_is_new_once_and_redeliveries_are_not() -> None:
    marks = [(1, s) for s in range(1, 6)]
    new, gaps = _admit_all([*marks, (1, 3), (1, 5)], None)
    assert new == marks
    assert gaps == 0


def test_a_late_message_fills_its_hole_once() -> None:
    state = SourceMark(7, 8)
    admitted = state.admit((7, 10))
    assert admitted is not None
    state, gap = admitted
    assert gap == 1 and state.missing == ((7, 9),)
    late = state.admit((7, 9))
    assert late is not None
    state, _ = late
    assert state.missing == () and state.top == (7, 10)
    assert state.admit((7, 9)) is None  # redelivered again: stored already


def test_the_tail_of_a_boot_after_the_next_boot_began_is_new() -> None:
    """Whole publisher boots overtaken by the next one, as seen through a bridge."""
    state = SourceMark(100, 5)
    admitted = state.admit((200, 1))
    assert admitted is not None
    state, _ = admitted
    for mark in [(100, 6), (100, 7)]:
        step = state.admit(mark)
        assert step is not None
        state, _ = step
    assert state.admit((100, 6)) is None
    assert state.admit((100, 4)) is None  # before the overtaking: stored long ago
    assert state.top == (200, 1)


def test_an_earlier_boot_never_seen_is_new_unless_forgotten() -> None:
    state = first_mark((300, 1))
    assert state.admit((250, 1)) is UNKNOWN  # before the gateway's first message: ask
    admitted = SourceMark(300, 1, forgotten=200).admit((250, 3))
    assert admitted is not None
    assert admitted[0].missing == ((250, 1), (250, 2))  # its first messages may still come


def test_the_memory_of_earlier_boots_is_bounded() -> None:
    state = SourceMark(0, 1)
    for boot in range(1, MAX_EARLIER + 10):
        admitted = state.admit((boot, 1))
        assert admitted is not None
        state = admitted[0]
    assert len(state.earlier) == MAX_EARLIER
    assert state.admit((3, 1)) is UNKNOWN  # pushed out: not known, never taken as delivered
    assert state.admit((3, 2)) is UNKNOWN
    assert state.admit((MAX_EARLIER + 5, 1)) is None  # still remembered


def test_a_publisher_restarting_thousands_of_times_loses_no_overtaken_tail() -> None:
    """One boot per publish (the federation test's publisher, issue 16), the last messages of
    some boots delivered after many newer boots: none is taken for a redelivery."""
    rng = random.Random(16)
    sent = [(boot, seq) for boot in range(1, 2_001) for seq in range(1, 11)]
    held = {m for m in sent[1:] if rng.random() < 0.01}  # each overtaken by 0-2000 boots
    keyed = [(i + (rng.uniform(0, 20_000) if m in held else 0), m) for i, m in enumerate(sent)]
    arrived = [m for _, m in sorted(keyed)]
    state: SourceMark | None = None
    unknown: list[Watermark] = []
    for mark in arrived:
        if state is None:
            state = first_mark(mark)
            continue
        admitted = state.admit(mark)
        assert admitted is not None, f"{mark} taken for a redelivery"
        if admitted is UNKNOWN:
            unknown.append(mark)
        else:
            state = admitted[0]
    assert unknown and set(unknown) <= held  # those the writer asks the database about


def test_the_stored_form_round_trips() -> None:
    state = SourceMark(5, 9, ((4, 2), (5, 3)), ((4, 7),), 3, (4, 1))
    row = state.to_row("m/001")
    trimmed = (row["trimmed_boot"], row["trimmed_seq"])
    parts = row["boot"], row["seq"], row["missing"], row["earlier"], 3, trimmed
    assert SourceMark.from_row(*parts) == state  # type: ignore[arg-type]


def test_a_message_skipped_by_a_jump_longer_than_the_holes_kept_is_unknown_not_stored() -> None:
    """More than :data:`MAX_MISSING` seqs skipped at once: the mark keeps the newest holes; a
    message older than those is asked about (UNKNOWN), never taken for a redelivery."""
    state = first_mark((3, 1))
    jumped = state.admit((3, 2 + 2 * MAX_MISSING))
    assert jumped is not None and jumped is not UNKNOWN
    state, gap = jumped
    assert gap == 2 * MAX_MISSING and len(state.missing) == MAX_MISSING
    assert state.admit((3, 2)) is UNKNOWN  # skipped, its hole not kept
    assert state.admit((3, 1 + MAX_MISSING)) is UNKNOWN
    kept = state.admit((3, 2 + MAX_MISSING))  # the oldest hole kept: filled as before
    assert kept is not None and kept is not UNKNOWN
    assert kept[0].admit((3, 2 + MAX_MISSING)) is None
    assert state.admit((3, 2 + 2 * MAX_MISSING)) is None  # the newest: stored


def test_holes_pushed_out_by_the_bound_are_unknown() -> None:
    """More holes than kept: the oldest go, and their messages are UNKNOWN."""
    full = SourceMark(1, 0).admit((1, MAX_MISSING + 1))  # holes 1 .. MAX_MISSING
    assert full is not None and full is not UNKNOWN
    assert len(full[0].missing) == MAX_MISSING and full[0].admit((1, 1)) is not UNKNOWN
    more = full[0].admit((1, MAX_MISSING + 3))  # one hole more: (1, 1) pushed out
    assert more is not None and more is not UNKNOWN
    state = more[0]
    assert len(state.missing) == MAX_MISSING and state.trimmed == (1, 1)
    assert state.admit((1, 1)) is UNKNOWN
    filled = state.admit((1, 2))  # the oldest hole kept fills
    assert filled is not None and filled is not UNKNOWN
    assert state.admit((1, MAX_MISSING + 1)) is None  # stored, above the holes pushed out


def test_a_boot_s_messages_before_the_source_s_first_are_unknown() -> None:
    state = first_mark((4, 50))
    assert state.admit((4, 49)) is UNKNOWN
    assert state.admit((4, 50)) is None
    assert state.admit((4, 51)) is not None


@settings(max_examples=300, deadline=None)
@given(
    boots=st.lists(st.integers(1, 12), min_size=1, max_size=4),
    seed=st.integers(0, 2**32 - 1),
    displacement=st.integers(0, 40),
    resends=st.integers(0, 30),
)
def test_any_bounded_reordering_with_resends_admits_each_message_exactly_once(
    boots: list[int], seed: int, displacement: int, resends: int
) -> None:
    """The messages of consecutive boots, each moved up to ``displacement`` places from where it
    was sent (the first one stays first: the gateway's first message starts the source) and some
    resent later: every message is admitted once, whatever the order."""
    rng = random.Random(seed)
    sent = [(boot, seq) for boot, n in enumerate(boots, start=1) for seq in range(1, n + 1)]
    keyed = [(i + (rng.uniform(0, displacement) if i else -1), m) for i, m in enumerate(sent)]
    arrived = [m for _, m in sorted(keyed)]
    for _ in range(resends):
        at = rng.randrange(len(arrived) + 1)
        arrived.insert(at, rng.choice(arrived[:at] or arrived[:1]))
    new, _ = _admit_all(arrived, None)
    assert sorted(new) == sent

"""Which messages of a source are stored: exact deduplication by ``(boot, seq)`` that does not
need the messages in order (sans-IO).

A high watermark alone ("drop anything at or below the highest ``(boot, seq)`` seen") is exact
only while every source's messages arrive in order. A broker bridge does not keep that order
across a reconnect: after a link outage Mosquitto 2.0 resends what was in flight and what it
queued, and a message can arrive after a later one of its source (seen on loopback: seq 9 of a
boot before seq 8; and whole publisher boots after the next boot). The watermark then drops the
late message as a redelivery, silently. So the mark of a source also remembers

- ``missing``: the ``(boot, seq)`` below the newest that have not arrived (yet): a late one is
  new and fills its hole; a seq jump is still counted as a gap when first seen;
- ``earlier``: the highest seq seen of each earlier boot, so that the tail of a boot arriving
  after the next boot began is new, and a redelivery of it is not;
- ``forgotten``: the boots up to this one that are not in ``earlier`` are no longer remembered
  (what the bound below pushes out, the boots before a source's first message, and those
  before a watermark kept by an older minewatch);
- ``trimmed``: the newest ``(boot, seq)`` the mark may have called stored without knowing (see
  below).

Bounded: at most :data:`MAX_MISSING` holes and :data:`MAX_EARLIER` earlier boots per source. A
message the mark can no longer tell about is neither taken for new nor for a redelivery on the
mark's word: :meth:`SourceMark.admit` answers :data:`UNKNOWN`, and the writer asks the database
whether its rows are stored (the safety writer, ingest/writer.py; the personnel, video and comms
writer, ingest/feeds/writer.py). Two kinds of message are such:

- one of a boot no longer remembered (pushed out of ``earlier``, or before the source's first
  message). A publisher that restarts every few seconds (one boot per restart) pushes a boot
  out within minutes; a bridge that delivers a boot's tail after more than :data:`MAX_EARLIER`
  newer boots (Mosquitto resending its queue after an outage) used to lose that tail as
  "delivered" (issue 16);
- one at or below ``trimmed`` that the mark would otherwise call stored: ``trimmed`` is the
  newest hole ever pushed out by :data:`MAX_MISSING` (a jump of more than that many seqs, or
  more holes than that at once) or never recorded (the seqs of its boot before the source's
  first message; for a mark stored before migration 0041, its newest ``(boot, seq)``: which
  holes it pushed out is not known). Such a hole's message, arriving late, used to be dropped
  as "delivered". A hole still kept fills as before, and the message in order takes the same
  short path (no question to the database: that is only for :data:`UNKNOWN`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

Watermark = tuple[int, int]  # (boot, seq)

#: Holes remembered per source (the newest ones): far more than a bridge reorders.
MAX_MISSING = 10_000
#: Earlier boots remembered per source.
MAX_EARLIER = 64
#: ``SourceMark.trimmed`` when no hole was ever pushed out.
NOTHING_TRIMMED: Watermark = (-1, -1)


class Verdict(enum.Enum):
    UNKNOWN = "unknown"


#: :meth:`SourceMark.admit`'s answer for a mark it cannot tell about (stored or not).
UNKNOWN: Literal[Verdict.UNKNOWN] = Verdict.UNKNOWN
Admitted = tuple["SourceMark", int] | Literal[Verdict.UNKNOWN] | None


@dataclass(slots=True)  # not frozen: a frozen __init__ costs 3 us a message; never mutated
class SourceMark:
    """What of one source is stored; see the module's docstring. A value: every change makes
    a new one (:meth:`admit`), so a committed mark is never altered by a pending batch."""

    boot: int
    seq: int
    missing: tuple[Watermark, ...] = ()  # sorted
    earlier: tuple[Watermark, ...] = ()  # (boot, highest seq seen), sorted by boot
    forgotten: int = -1
    trimmed: Watermark = NOTHING_TRIMMED  # the newest hole pushed out or never recorded

    @property
    def top(self) -> Watermark:
        """The newest ``(boot, seq)`` stored (the classic watermark)."""
        return (self.boot, self.seq)

    def seen(self, mark: Watermark) -> bool:
        """Whether ``mark`` is stored already (a redelivery) or a hole no longer kept (at or
        below ``trimmed``), for a remembered boot."""
        boot, seq = mark
        if mark > self.top:
            return False
        if boot == self.boot:
            return mark not in self.missing
        tops = dict(self.earlier)
        if boot in tops:
            return seq <= tops[boot] and mark not in self.missing
        return False  # an earlier boot never seen, newer than the forgotten ones

    def remembers(self, mark: Watermark) -> bool:
        """Whether this mark knows if ``mark`` was stored (False: a boot pushed out of
        ``earlier``, or one before the source's first message)."""
        boot = mark[0]
        return boot > self.forgotten or boot == self.boot or any(b == boot for b, _ in self.earlier)

    def admit(self, mark: Watermark) -> Admitted:
        """None if ``mark`` was stored already; :data:`UNKNOWN` if the mark cannot tell (its
        boot is no longer remembered, or it is at or below ``trimmed`` and not a hole kept: the
        mark is unchanged, the caller finds out); else the mark after storing it and the number
        of messages of its boot found missing just before it (a gap)."""
        boot, seq = mark
        if boot == self.boot and seq == self.seq + 1:  # the usual case, in order: cheap
            return SourceMark(
                boot, seq, self.missing, self.earlier, self.forgotten, self.trimmed
            ), 0
        if mark > self.top:
            if boot == self.boot:
                holes, trimmed = _holes(boot, self.seq, seq, self.trimmed)
                return _bounded(
                    boot, seq, self.missing + holes, self.earlier, self.forgotten, trimmed
                ), seq - self.seq - 1
            earlier = (*self.earlier, (self.boot, self.seq))
            holes, trimmed = _holes(boot, 0, seq, self.trimmed)  # its first may still come
            return _bounded(boot, seq, self.missing + holes, earlier, self.forgotten, trimmed), 0
        if not self.remembers(mark):
            return UNKNOWN
        if self.seen(mark):
            return UNKNOWN if mark <= self.trimmed else None
        missing = tuple(m for m in self.missing if m != mark)
        if boot == self.boot:  # a hole filled
            return SourceMark(
                self.boot, self.seq, missing, self.earlier, self.forgotten, self.trimmed
            ), 0
        tops = dict(self.earlier)
        top = tops.get(boot)
        gap = 0
        trimmed = self.trimmed
        if top is None:  # an earlier boot not seen before: all of it is new
            holes, trimmed = _holes(boot, 0, seq, trimmed)
            missing += holes
            tops[boot] = seq
        elif seq > top:  # the tail of an earlier boot
            holes, trimmed = _holes(boot, top, seq, trimmed)
            missing += holes
            gap = seq - top - 1
            tops[boot] = seq
        earlier = tuple(sorted(tops.items()))
        return _bounded(self.boot, self.seq, missing, earlier, self.forgotten, trimmed), gap

    # -- stored form (a row of source_watermarks) --------------------------------------------

    def to_row(self, source: str) -> dict[str, object]:
        return {
            "source": source, "boot": self.boot, "seq": self.seq,
            "missing": [list(m) for m in self.missing],
            "earlier": [list(e) for e in self.earlier], "forgotten": self.forgotten,
            "trimmed_boot": self.trimmed[0], "trimmed_seq": self.trimmed[1],
        }  # fmt: skip

    @classmethod
    def from_row(
        cls, boot: int, seq: int, missing: object, earlier: object, forgotten: int,
        trimmed: Watermark = NOTHING_TRIMMED,
    ) -> SourceMark:  # fmt: skip
        return cls(
            int(boot), int(seq), _pairs(missing), _pairs(earlier), int(forgotten),
            (int(trimmed[0]), int(trimmed[1])),
        )  # fmt: skip


def first_mark(mark: Watermark) -> SourceMark:
    """The mark of a source whose first message is ``mark``. What came before it is unknown (a
    gateway started while its publishers run): not remembered as thousands of holes; a
    message before it arriving later (of an earlier boot, or of its boot: ``trimmed``) is
    :data:`UNKNOWN` to :meth:`SourceMark.admit`."""
    boot, seq = mark
    return SourceMark(boot, seq, forgotten=boot - 1, trimmed=(boot, seq - 1))


def _holes(
    boot: int, after: int, before: int, trimmed: Watermark
) -> tuple[tuple[Watermark, ...], Watermark]:
    """The seqs strictly between ``after`` and ``before`` (the newest :data:`MAX_MISSING`), from
    1: a boot's numbering starts at 1 (docs/feeds.md); and ``trimmed`` raised to the newest
    seq of that range left out, if any."""
    first = max(after + 1, 1)
    low = max(first, before - MAX_MISSING)
    if low > first:
        trimmed = max(trimmed, (boot, low - 1))
    return tuple((boot, s) for s in range(low, before)), trimmed


def _bounded(
    boot: int, seq: int, missing: tuple[Watermark, ...], earlier: tuple[Watermark, ...],
    forgotten: int, trimmed: Watermark,
) -> SourceMark:  # fmt: skip
    if len(earlier) > MAX_EARLIER:
        forgotten = max(forgotten, earlier[-MAX_EARLIER - 1][0])
        earlier = earlier[-MAX_EARLIER:]
    kept = sorted(m for m in set(missing) if m[0] > forgotten)
    if len(kept) > MAX_MISSING:  # the oldest holes go: their messages become UNKNOWN
        trimmed = max(trimmed, kept[-MAX_MISSING - 1])
        kept = kept[-MAX_MISSING:]
    return SourceMark(boot, seq, tuple(kept), earlier, forgotten, trimmed)


def _pairs(value: object) -> tuple[Watermark, ...]:
    if not isinstance(value, list):
        return ()
    return tuple((int(a), int(b)) for a, b in value)

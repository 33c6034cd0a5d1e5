"""Who is underground, where, since when: position observations and full snapshots in,
trips, area stays and position rows out. Pure (no I/O); the feed writer stores the result.

State per card is a :class:`Presence`. Two inputs change it:

- a position observation (:meth:`Update.observe`): the card was seen at a station at a time;
  ``in_mine`` 2 (出井) ends its trip, anything else means it is underground;
- a full snapshot (:meth:`Update.snapshot`, the RYSS semantics): the whole list of people
  underground at a time. A card listed and not underground enters (at its 入井时刻 when the
  snapshot gives one), a listed card in another area moves (at its 进入当前区域时刻), a card
  listed with 出井 or no longer listed leaves (at its 出井时刻, else at the snapshot time).

Both are idempotent: an observation or a snapshot that says what the state already says
changes nothing, and one older than what the state knows (``changed_at``) is not applied.
Any parsed RYSS list (e.g. from the national TXT codec) feeds :meth:`Update.snapshot` through
:class:`SnapshotRow` records, one per RYSS record.

Per-row work is a small Python loop over state transitions: personnel volumes are thousands of
cards per positioning cycle at most, far below the readings path.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

from minewatch.ingest.feeds.contract import OUT_OF_MINE

Key = tuple[str, str]  # (mine, card)


@dataclass(frozen=True, slots=True)
class Presence:
    """The last known place of a card (times in µs since the epoch)."""

    underground: bool
    entered_at: int | None  # start of the open trip
    left_at: int | None  # end of the last trip
    area: str
    area_since: int
    station: str
    station_since: int
    distance_m: float | None
    last_seen: int  # last position observation
    changed_at: int  # event time of the last change of place

    @property
    def known_at(self) -> int:
        """Input older than this is late: the state already holds newer knowledge."""
        return max(self.changed_at, self.last_seen)


@dataclass(frozen=True, slots=True)
class TripOpened:
    key: Key
    entered_at: int


@dataclass(frozen=True, slots=True)
class TripClosed:
    key: Key
    entered_at: int
    left_at: int


@dataclass(frozen=True, slots=True)
class StayOpened:
    key: Key
    area: str
    entered_at: int


@dataclass(frozen=True, slots=True)
class StayClosed:
    key: Key
    entered_at: int
    left_at: int


@dataclass(frozen=True, slots=True)
class StayRetargeted:
    """A stay that began at the very time of a new move: its area is replaced, no zero stay."""

    key: Key
    entered_at: int
    area: str


Transition = TripOpened | TripClosed | StayOpened | StayClosed | StayRetargeted


@dataclass(frozen=True, slots=True)
class PositionRow:
    time_us: int
    key: Key
    station: str
    area: str
    distance_m: float | None
    in_mine: int


@dataclass(frozen=True, slots=True)
class SnapshotRow:
    """One record of a full snapshot (RYSS fields 1, 3-9, 11); times in µs or None."""

    card: str
    station: str
    area: str
    in_mine: int
    mine_entered_at: int | None = None  # 入井时刻
    mine_left_at: int | None = None  # 出井时刻
    area_since: int | None = None  # 进入当前区域时刻
    station_since: int | None = None  # 进入当前基站时刻
    distance_m: float | None = None


class PresenceTracker:
    """The committed state; :meth:`begin` an :class:`Update`, :meth:`commit` it once stored."""

    def __init__(
        self, state: dict[Key, Presence] | None = None, snapshot_at: dict[str, int] | None = None
    ) -> None:
        self.state: dict[Key, Presence] = dict(state or {})
        self.snapshot_at: dict[str, int] = dict(snapshot_at or {})

    def begin(self) -> Update:
        return Update(self)

    def commit(self, update: Update) -> None:
        self.state.update(update.changed)
        self.snapshot_at.update(update.snapshot_at)

    def underground(self, mine: str) -> dict[str, Presence]:
        return {k[1]: p for k, p in self.state.items() if k[0] == mine and p.underground}


class Update:
    """Changes on top of a tracker's committed state, not yet stored."""

    def __init__(self, tracker: PresenceTracker) -> None:
        self._base = tracker
        self.changed: dict[Key, Presence] = {}
        self.snapshot_at: dict[str, int] = {}
        self.transitions: list[Transition] = []
        self.positions: list[PositionRow] = []
        self.late = 0  # observations older than the state, stored but not applied
        self.stale_snapshots = 0

    def get(self, key: Key) -> Presence | None:
        found = self.changed.get(key)
        return found if found is not None else self._base.state.get(key)

    def last_snapshot(self, mine: str) -> int | None:
        return self.snapshot_at.get(mine, self._base.snapshot_at.get(mine))

    # -- position observations -----------------------------------------------------------

    def observe(
        self, key: Key, time_us: int, station: str, area: str, in_mine: int,
        distance_m: float | None = None, mine_entered_at: int | None = None,
    ) -> None:  # fmt: skip
        """One position report; the caller stores it as a position row in any case."""
        self.positions.append(PositionRow(time_us, key, station, area, distance_m, in_mine))
        p = self.get(key)
        if p is not None and time_us < p.known_at:
            self.late += 1
            return
        if in_mine == OUT_OF_MINE:
            if p is not None and p.underground:
                self._leave(key, p, time_us, station, area, distance_m)
                p = self.get(key)
            if p is not None:
                self.changed[key] = dataclasses.replace(p, last_seen=max(p.last_seen, time_us))
            return
        p = self._move(key, p, time_us, station, area, distance_m, mine_entered_at, None, None)
        self.changed[key] = dataclasses.replace(
            p, last_seen=max(p.last_seen, time_us), distance_m=distance_m
        )

    # -- full snapshots (RYSS) -----------------------------------------------------------

    def snapshot(self, mine: str, time_us: int, rows: Iterable[SnapshotRow]) -> bool:
        """Apply the full list of people underground at ``time_us``; False if it is stale
        (not newer than the last snapshot applied for the mine), in which case nothing
        changes. Only differences from the state produce transitions and position rows."""
        last = self.last_snapshot(mine)
        if last is not None and time_us <= last:
            self.stale_snapshots += 1
            return False
        self.snapshot_at[mine] = time_us
        listed: set[str] = set()
        for row in rows:
            listed.add(row.card)
            key = (mine, row.card)
            p = self.get(key)
            if p is not None and time_us < p.known_at:
                continue  # we know something newer than this snapshot about this card
            if row.in_mine == OUT_OF_MINE:
                self._snapshot_exit(key, p, time_us, row)
                continue
            before = p
            p = self._move(
                key, p, time_us, row.station, row.area, row.distance_m,
                row.mine_entered_at, row.area_since, row.station_since,
            )  # fmt: skip
            if p is not before:
                self.changed[key] = p
                if before is None or (before.station, before.area, before.underground) != (
                    p.station, p.area, p.underground
                ):  # fmt: skip
                    self._position(key, p.station_since, p, 1)
        for key, p in self._all_underground(mine):
            if key[1] not in listed and p.known_at <= time_us:
                self._leave(key, p, time_us, p.station, p.area, p.distance_m)
                left = self.get(key)
                assert left is not None
                self._position(key, time_us, left, OUT_OF_MINE)
        return True

    def _snapshot_exit(self, key: Key, p: Presence | None, time_us: int, row: SnapshotRow) -> None:
        left_at = _clamp(row.mine_left_at, p.changed_at if p else None, time_us)
        if p is not None and p.underground:
            self._leave(key, p, left_at, row.station, row.area, row.distance_m)
        elif row.mine_entered_at is not None and (
            p is None or p.left_at is None or row.mine_entered_at > p.left_at
        ):
            # A whole trip we never saw underground (entered and left between two snapshots).
            entered = min(row.mine_entered_at, left_at)
            self.transitions.append(TripOpened(key, entered))
            self.transitions.append(TripClosed(key, entered, left_at))
            self.changed[key] = Presence(
                False, None, left_at, row.area, left_at, row.station, left_at,
                row.distance_m, p.last_seen if p else left_at, left_at,
            )  # fmt: skip
        else:
            return
        left = self.get(key)
        assert left is not None
        self._position(key, left_at, left, OUT_OF_MINE)

    def changed_of(self, mine: str) -> dict[str, Presence]:
        """The cards of ``mine`` whose presence this update changed (card -> presence)."""
        return {k[1]: p for k, p in self.changed.items() if k[0] == mine}

    def _all_underground(self, mine: str) -> list[tuple[Key, Presence]]:
        keys = {k for k in self._base.state if k[0] == mine} | {
            k for k in self.changed if k[0] == mine
        }
        out = []
        for key in keys:
            p = self.get(key)
            if p is not None and p.underground:
                out.append((key, p))
        return out

    # -- the two state changes -----------------------------------------------------------

    def _move(
        self, key: Key, p: Presence | None, time_us: int, station: str, area: str,
        distance_m: float | None, entered_hint: int | None, area_hint: int | None,
        station_hint: int | None,
    ) -> Presence:  # fmt: skip
        """The card is underground at ``station``/``area`` as of ``time_us``; returns the new
        presence (``p`` itself when nothing changed)."""
        if p is None or not p.underground:
            floor = p.left_at if p is not None and p.left_at is not None else None
            entered = time_us
            if (
                entered_hint is not None
                and entered_hint <= time_us
                and (floor is None or entered_hint > floor)
            ):
                entered = entered_hint
            area_since = _clamp(area_hint, entered, time_us)
            station_since = _clamp(station_hint, area_since, time_us)
            self.transitions.append(TripOpened(key, entered))
            self.transitions.append(StayOpened(key, area, area_since))
            new = Presence(
                True, entered, p.left_at if p else None, area, area_since, station,
                station_since, distance_m, p.last_seen if p else time_us, time_us,
            )  # fmt: skip
            self.changed[key] = new
            return new
        if area == p.area and station == p.station:
            return p  # the distance alone is not a change of place
        area_since = p.area_since
        if area != p.area:
            area_since = _clamp(area_hint, max(p.area_since, p.changed_at), time_us)
            if area_since == p.area_since:
                self.transitions.append(StayRetargeted(key, p.area_since, area))
            else:
                self.transitions.append(StayClosed(key, p.area_since, area_since))
                self.transitions.append(StayOpened(key, area, area_since))
        station_since = _clamp(station_hint, max(area_since, p.changed_at), time_us)
        new = dataclasses.replace(
            p, area=area, area_since=area_since, station=station, station_since=station_since,
            distance_m=distance_m, changed_at=time_us,
        )  # fmt: skip
        self.changed[key] = new
        return new

    def _leave(
        self, key: Key, p: Presence, time_us: int, station: str, area: str,
        distance_m: float | None,
    ) -> None:  # fmt: skip
        assert p.entered_at is not None
        left_at = max(time_us, p.area_since, p.entered_at)
        self.transitions.append(StayClosed(key, p.area_since, left_at))
        self.transitions.append(TripClosed(key, p.entered_at, left_at))
        self.changed[key] = dataclasses.replace(
            p, underground=False, entered_at=None, left_at=left_at, station=station, area=area,
            distance_m=distance_m, changed_at=left_at,
        )  # fmt: skip

    def _position(self, key: Key, time_us: int, p: Presence, in_mine: int) -> None:
        self.positions.append(PositionRow(time_us, key, p.station, p.area, p.distance_m, in_mine))


def _clamp(value: int | None, low: int | None, high: int) -> int:
    """``value`` (``high`` when missing) kept inside [low, high]."""
    if value is None:
        return high
    if low is not None and value < low:
        value = low
    return min(value, high)

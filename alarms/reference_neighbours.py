"""The stuck sensor and the lone excursion (alarms/rules/neighbour_checks.py) one window at a
time in plain Python: part of :class:`alarms.reference.ReferenceEngine`'s cross-check.

A window is a dict point -> [count, total, first, max, max_at, min, min_at] of the readings
that measure the gas; the reference hands the windows over in order as it decides them.
"""

from __future__ import annotations

from minewatch.alarms.codes import Classification
from minewatch.alarms.episodes import Episode
from minewatch.alarms.rules.neighbour_checks import EXCURSION, STUCK, NeighbourPoints

Stats = list[float]
WindowStats = dict[int, Stats]
_NEVER = -(2**62)


class WindowRun:
    """A point's streak of windows that meet a latched window check (``stats``) and its
    episode once raised, after the check's hold: the cross-check and the stuck sensor."""

    __slots__ = ("classification", "episode", "rule", "stats")

    def __init__(self, rule: str, classification: str, start: int, first: float) -> None:
        self.rule, self.classification = rule, classification
        self.stats = Episode(0, rule, None, start, None, first, None)
        self.episode: Episode | None = None

    def add(self, point: int, window: Stats, end: int, hold_us: int) -> Episode | None:
        """Add one window's readings (to the episode once raised); the episode raised by this
        window (the streak reached ``hold_us`` at ``end``), else None."""
        count, total, _, vmax, vmax_at, vmin, vmin_at = window
        target = self.episode if self.episode is not None else self.stats
        target.count += int(count)
        target.total += total
        if vmax > target.vmax:
            target.vmax, target.vmax_at = vmax, int(vmax_at)
        if vmin < target.vmin:
            target.vmin, target.vmin_at = vmin, int(vmin_at)
        if self.episode is not None or end - self.stats.start_us < hold_us:
            return None
        st = self.stats
        self.episode = Episode(
            point, self.rule, self.classification, st.start_us, end, st.start_value, None,
            None, None, st.count, st.total, st.vmax, st.vmax_at, st.vmin, st.vmin_at,
        )  # fmt: skip
        return self.episode


class NeighbourReference:
    """Per-window decisions of ``sensor_stuck`` and ``local_excursion``."""

    def __init__(self, points: NeighbourPoints, window_us: int, episodes: list[Episode]) -> None:
        self.points, self.window_us, self.episodes = points, window_us, episodes
        self.upstream: dict[int, list[int]] = {}
        for a, b in zip(points.up_src.tolist(), points.up_dst.tolist(), strict=True):
            self.upstream.setdefault(a, []).append(b)
        self.near: dict[int, list[tuple[int, bool]]] = {}  # point -> (neighbour, downstream)
        for a, b, down in zip(points.near_src.tolist(), points.near_dst.tolist(),
                              points.near_down.tolist(), strict=True):  # fmt: skip
            self.near.setdefault(a, []).append((b, down))
        self.recent: list[tuple[int, WindowStats]] = []  # the last three decided, oldest first
        self.pending = False  # the last one's excursions wait for the window after
        self.flagged: tuple[int, set[int]] = (_NEVER, set())
        self.runs: dict[int, WindowRun] = {}

    def window(self, w: int, window: WindowStats) -> None:
        """Window ``w`` decided (after every window before it)."""
        if self.pending:
            x = self.recent[-1][0]
            self._excursions(window if x == w - 1 else None)
        previous = self.recent[-1][1] if self.recent and self.recent[-1][0] == w - 1 else None
        self._stuck(w, window, previous)
        self.recent = [*self.recent, (w, window)][-3:]
        self.pending = True

    def passed(self, last: int) -> None:
        """Every window up to ``last`` decided: a pending excursion whose window after had no
        readings is decided now."""
        if self.pending and self.recent[-1][0] < last:
            self._excursions(None)

    # -- sensor_stuck --------------------------------------------------------------------

    def _stuck(self, w: int, window: WindowStats, previous: WindowStats | None) -> None:
        pts = self.points
        start, end = w * self.window_us, (w + 1) * self.window_us
        for p, ups in self.upstream.items():
            mine = window.get(p)
            if mine is None or mine[0] < 2:
                continue  # hold
            flat = mine[3] - mine[5] <= pts.tolerance[p]
            run = self.runs.get(p)
            if not flat:
                if run is not None:
                    del self.runs[p]
                    if run.episode is not None:
                        run.episode.end_us = start
                continue
            moved = False
            for q in ups:
                a, b = window.get(q), (previous or {}).get(q)
                if a is not None and b is not None:
                    moved |= abs(a[1] / a[0] - b[1] / b[0]) >= pts.move[p]
            if not moved:  # constant, nothing upstream moved: hold
                continue
            if run is None:
                run = self.runs[p] = WindowRun(
                    STUCK, Classification.SENSOR_STUCK.value, start, mine[2]
                )
            raised = run.add(p, mine, end, pts.stuck_hold_us[p])
            if raised is not None:
                self.episodes.append(raised)

    # -- local_excursion -----------------------------------------------------------------

    def _excursions(self, after: WindowStats | None) -> None:
        self.pending = False
        x, window = self.recent[-1]
        by_index = dict(self.recent)
        earlier = [s for s in (by_index.get(x - 2), by_index.get(x - 1)) if s is not None]
        skip = self.flagged[1] if self.flagged[0] == x - 1 else set()
        flagged: set[int] = set()
        self.flagged = (x, flagged)
        pts = self.points
        for p, neighbours in self.near.items():
            mine = window.get(p)
            bases = [s[p][1] / s[p][0] for s in earlier if p in s]
            if mine is None or not bases or mine[0] < 3:
                continue
            count, total, first, vmax, vmax_at, vmin, vmin_at = mine
            baseline = min(bases)  # the lower of the two windows before
            rise = (total - vmax) / (count - 1) - baseline  # without the highest reading
            if not rise >= pts.excursion_min[p]:
                continue
            known = seen = False
            for q, down in neighbours:
                means = [s[q][1] / s[q][0] for s in (*earlier, window, after or {}) if q in s]
                if len(means) < 2:
                    continue
                known = True
                ratio = pts.excursion_ratio[p] if down else pts.upstream_ratio
                seen |= max(means) - min(means) >= ratio * rise
            if not known or seen:
                continue
            flagged.add(p)
            if p in skip:
                continue
            self.episodes.append(Episode(
                p, EXCURSION, Classification.LOCAL_EXCURSION.value, x * self.window_us,
                (x + 2) * self.window_us, first, baseline + pts.excursion_min[p], None,
                (x + 1) * self.window_us, int(count), total, vmax, int(vmax_at), vmin,
                int(vmin_at),
            ))  # fmt: skip

"""What the benchmarks' processes cost: CPU seconds and resident memory, read from /proc.

A process's CPU is its own (user + system) plus that of its children already waited for
(``cutime`` + ``cstime``: PostgreSQL's ended backends, counted by the postmaster), plus that of
its live descendants, so a server's whole tree is one figure. Sampling reads /proc once per
call (a few ms): cheap enough every few seconds beside a benchmark.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True, slots=True)
class ProcStat:
    ppid: int
    own_s: float  # utime + stime
    children_s: float  # cutime + cstime (children waited for)
    rss_bytes: int


def read_stat(pid: int) -> ProcStat | None:
    """One process's /proc/<pid>/stat, or None when it has gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    tail = text[text.rindex(")") + 2 :].split()  # the name may hold spaces and parentheses
    return ProcStat(
        ppid=int(tail[1]),
        own_s=(int(tail[11]) + int(tail[12])) / _TICK,
        children_s=(int(tail[13]) + int(tail[14])) / _TICK,
        rss_bytes=int(tail[21]) * _PAGE,
    )


def all_stats() -> dict[int, ProcStat]:
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = read_stat(int(entry.name))
            if stat is not None:
                out[int(entry.name)] = stat
    return out


def descendants(root: int, stats: dict[int, ProcStat]) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, stat in stats.items():
        children.setdefault(stat.ppid, []).append(pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


@dataclass(frozen=True, slots=True)
class Usage:
    cpu_s: float  # the tree's CPU seconds since it started
    rss_mib: float  # the root's resident memory


def tree_usage(root: int, stats: dict[int, ProcStat], with_children: bool = True) -> Usage | None:
    """CPU of ``root`` and every descendant (live or waited for), or of ``root`` alone; RSS of
    ``root`` alone."""
    if root not in stats:
        return None
    if not with_children:
        return Usage(stats[root].own_s, stats[root].rss_bytes / 2**20)
    cpu = sum(stats[p].own_s + stats[p].children_s for p in descendants(root, stats))
    return Usage(cpu, stats[root].rss_bytes / 2**20)


def stack_roles(owner: int | None = None) -> dict[str, int]:
    """The embedded servers among ``owner``'s children (this process by default):
    ``postgres`` (the postmaster) and ``mosquitto``."""
    owner = owner or os.getpid()
    out: dict[str, int] = {}
    for pid, stat in all_stats().items():
        if stat.ppid == owner and comm(pid) in ("postgres", "mosquitto"):
            out[comm(pid)] = pid
    return out


def runqueue_wait_s(pids: list[int]) -> float:
    """Seconds the threads of ``pids`` have spent runnable but waiting for a CPU
    (/proc/<pid>/task/<tid>/schedstat, second field): what a loaded machine costs them."""
    total = 0
    for pid in pids:
        try:
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                total += int((task / "schedstat").read_text().split()[1])
            except (OSError, IndexError, ValueError):
                continue
    return total / 1e9


class Sampler:
    """CPU and RSS of named process trees over time: ``sample()`` appends one row per role."""

    def __init__(self, roles: dict[str, int], alone: tuple[str, ...] = ()) -> None:
        self.roles = dict(roles)
        self.alone = alone  # roles counted without their children (e.g. this very process)
        self.rows: list[tuple[float, str, float, float]] = []  # (t, role, cpu_s, rss_mib)
        self.waits: list[tuple[float, str, float]] = []  # (t, role, runqueue wait s)

    def sample(self, at: float) -> None:
        stats = all_stats()
        for role, pid in self.roles.items():
            usage = tree_usage(pid, stats, with_children=role not in self.alone)
            if usage is not None:
                self.rows.append((at, role, usage.cpu_s, usage.rss_mib))
                tree = [pid] if role in self.alone else descendants(pid, stats)
                self.waits.append((at, role, runqueue_wait_s(tree)))

    def cpu_between(self, role: str, t0: float, t1: float) -> float:
        """CPU seconds ``role`` used between the samples nearest ``t0`` and ``t1``."""
        return _between([(t, c) for t, r, c, _ in self.rows if r == role], t0, t1)

    def wait_between(self, role: str, t0: float, t1: float) -> float:
        """Seconds ``role``'s live threads waited for a CPU between those samples."""
        return _between([(t, w) for t, r, w in self.waits if r == role], t0, t1)

    def series(self, role: str) -> list[tuple[float, float, float]]:
        return [(t, c, m) for t, r, c, m in self.rows if r == role]


def _between(rows: list[tuple[float, float]], t0: float, t1: float) -> float:
    """The change of a cumulative figure between the samples nearest ``t0`` and ``t1``."""
    if len(rows) < 2:
        return float("nan")
    times = np.array([t for t, _ in rows])
    values = np.array([v for _, v in rows])
    i0 = int(np.abs(times - t0).argmin())
    i1 = int(np.abs(times - t1).argmin())
    return float(values[i1] - values[i0])


def percentiles(values: np.ndarray | list[float]) -> dict[str, float]:
    """n, p50, p95, p99 and max of ``values`` (NaN when empty)."""
    data = np.asarray(values, dtype=np.float64)
    data = data[~np.isnan(data)]
    if not len(data):
        return {
            "n": 0,
            "p50": float("nan"),
            "p95": float("nan"),
            "p99": float("nan"),
            "max": float("nan"),
        }
    p50, p95, p99 = np.percentile(data, [50, 95, 99])
    return {
        "n": len(data),
        "p50": float(p50),
        "p95": float(p95),
        "p99": float(p99),
        "max": float(data.max()),
    }


def pressure_s(kind: str) -> float:
    """Seconds since boot during which some task waited for ``kind`` (``cpu``, ``io``;
    /proc/pressure, Linux PSI); NaN where the kernel does not report it."""
    try:
        line = Path(f"/proc/pressure/{kind}").read_text().splitlines()[0]
    except (OSError, IndexError):
        return float("nan")
    return int(line.rsplit("total=", 1)[1]) / 1e6

"""The incident tracker alone through repeated interruption storms (issue 14, session 8).

    .venv/bin/python -m bench.incident_storms [--stations 1000] [--points 20] [--storms 10]

No database: ``--stations`` substations of ``--points`` points each; at every storm every point
raises a ``data_interruption`` (one batch of changes, as the clock's tick gives them) and ends it
a second later (the next batch), within the off-delay, so each substation's incident grows by
its points at every storm (as the city soak's did: up to 225 members); 10 s later a batch of
one change (one point's short interruption, raised and ended), as the batches between storms.
Printed per step: the CPU milliseconds (``time.process_time``: the machine is shared) of
``copy`` and ``apply`` as ``AlarmEngine._incidents`` calls them, the incident changes, the
member rows the store sends for them (``IncidentChange.added``; on main, which has no
``added``, every member of each) and the members of the open incidents.
"""

from __future__ import annotations

import argparse
import time

from minewatch.alarms.episodes import EpisodeChange
from minewatch.alarms.incidents import IncidentTracker, Topology

S = 1_000_000
T0 = 1_780_000_000 * S


def _change(point: int, opened: bool, t_us: int, end_us: int | None = None) -> EpisodeChange:
    return EpisodeChange(
        point_id=point, rule="data_interruption", abnormal_type="", opened=opened,
        started_at_us=t_us if opened else None, threshold=None, start_value=None,
        ended_at_us=end_us if opened else t_us, count=0, value_sum=0.0, max_value=0.0,
        max_at_us=0, min_value=0.0, min_at_us=0, classification=None,
        raised_at_us=t_us if opened else None,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stations", type=int, default=1000)
    parser.add_argument("--points", type=int, default=20, help="per substation")
    parser.add_argument("--storms", type=int, default=10)
    parser.add_argument("--gap-s", type=int, default=120, help="from an end to the next storm")
    args = parser.parse_args()
    n = args.stations * args.points
    topology = Topology.of(
        area={p: None for p in range(n)},
        sensor_type={p: "0004" for p in range(n)},
        paths=[],
        off_delay_s=3600.0,  # every storm within the off-delay: the incidents grow
        substation={p: f"S{p // args.points}" for p in range(n)},
    )
    tracker = IncidentTracker(topology)
    print(f"{n:,} points in {args.stations:,} substations")
    print(f"{'step':12s} {'CPU ms':>8s} {'changes':>8s} {'written':>8s} {'members':>9s}")
    t = T0
    for k in range(args.storms):
        for name, step in ((f"storm {k + 1}", 0), (f"end {k + 1}", 1), (f"one alarm {k + 1}", 2)):
            t += (args.gap_s, 1, 10)[step] * S
            if step == 2:  # a batch between storms: one point silent for a moment
                changes = [_change(0, True, t, t + S // 2)]
            else:
                changes = [_change(p, step == 0, t) for p in range(n)]
            started = time.process_time()
            copy = tracker.copy()
            out = copy.apply(changes, t)
            cpu = time.process_time() - started
            tracker = copy
            # the member rows the store sends: those added (main: every member again)
            written = sum(len(getattr(c, "added", c.incident.members)) for c in out)
            members = sum(len(i.members) for i in tracker.open)
            print(f"{name:12s} {cpu * 1000:8.1f} {len(out):8,d} {written:8,d} {members:9,d}")


if __name__ == "__main__":
    main()

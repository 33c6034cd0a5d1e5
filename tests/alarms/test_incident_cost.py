"""What a batch costs the incident tracker follows its changes, not the open incidents' members
(issue 14, session 8): counted as the reads of the members' fields, not timed.

Many open incidents of many members each (a storm that recurred within the off-delay); a batch
ends one member and adds one: the members read must not depend on how many there are.
"""

from __future__ import annotations

from typing import Any

import pytest

from minewatch.alarms.episodes import EpisodeChange
from minewatch.alarms.incidents import Incident, IncidentTracker, Member, Topology
from tests.alarms.helpers import T0, S

READS = [0]


class CountedMember(Member):
    """A member that counts the reads of its fields (restored from the database, as after a
    restart: ``load_incident_state``)."""

    def __getattribute__(self, name: str) -> Any:
        READS[0] += 1
        return object.__getattribute__(self, name)


def _tracker(incidents: int, members: int) -> IncidentTracker:
    """``incidents`` open gas incidents, one per point, each of ``members`` ended alarms of its
    point and (the first) one still open; none due to close."""
    topology = Topology.of(
        area={p: f"A{p}" for p in range(incidents)},
        sensor_type={p: "0001" for p in range(incidents)},
        paths=[],
        substation={p: f"S{p}" for p in range(incidents)},
    )
    held = []
    for p in range(incidents):
        alarms = [
            CountedMember(p, "upper_alarm", "exceedance", T0 + k * S, T0 + k * S,
                          T0 + k * S + S // 2, 1.2, T0 + k * S)
            for k in range(members)
        ]  # fmt: skip
        if p == 0:
            alarms[-1].end_us = None
        held.append(Incident((p, "upper_alarm", T0), "gas", alarms, "orange"))
    return IncidentTracker(topology, held)


def _change(opened: bool, start_us: int | None, end_us: int | None) -> EpisodeChange:
    return EpisodeChange(
        point_id=0, rule="power_off" if opened else "upper_alarm", abnormal_type="",
        opened=opened, started_at_us=start_us, threshold=1.5, start_value=1.6,
        ended_at_us=end_us, count=1, value_sum=1.6, max_value=1.6, max_at_us=start_us or 0,
        min_value=1.6, min_at_us=start_us or 0, classification=None, raised_at_us=start_us,
    )  # fmt: skip


def _reads_of_one_batch(incidents: int, members: int) -> int:
    tracker = _tracker(incidents, members)
    now = T0 + members * S
    changes = [_change(False, None, now), _change(True, now, None)]
    READS[0] = 0
    copy = tracker.copy()  # as the engine evaluates a batch
    (change,) = copy.apply(changes, now)
    reads = READS[0]
    assert change.event == "joined" and len(change.incident.members) == members + 1
    assert len(tracker.open[0].members) == members  # the committed tracker is unchanged
    return reads


@pytest.mark.parametrize("incidents, members", [(50, 100), (200, 400)])
def test_a_batch_reads_the_members_it_changes_not_those_of_every_open_incident(
    incidents: int, members: int
) -> None:
    # main: every member of every open incident, several times (the open members' index,
    # the copy of the incident, its last end): 327,893 reads for 200 x 400, 65 for 2 x 2;
    # this branch: 11 for each
    assert _reads_of_one_batch(incidents, members) == _reads_of_one_batch(2, 2)

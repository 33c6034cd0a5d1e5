"""Topic names of the personnel and video feeds (docs/feeds.md), for producers and tests.

They extend minewatch/feeds.py (the safety feed's names) under the same root.
"""

from __future__ import annotations

from minewatch.feeds import TOPIC_ROOT


def personnel_topic(mine: str) -> str:
    """Positions, snapshots (RYSS) and station states (JZSS) of one mine's positioning system."""
    return f"{TOPIC_ROOT}/{mine}/personnel"


def personnel_meta_topic(mine: str) -> str:
    """People, areas and stations (RYXX, RYQY, RYJZ) of one mine, retained."""
    return f"{TOPIC_ROOT}/{mine}/personnel/meta"


def video_topic(mine: str) -> str:
    """Camera heartbeats and AI analytic events of one mine."""
    return f"{TOPIC_ROOT}/{mine}/video"


def video_meta_topic(mine: str) -> str:
    """The cameras of one mine, retained."""
    return f"{TOPIC_ROOT}/{mine}/video/meta"

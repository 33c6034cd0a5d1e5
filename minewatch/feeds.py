"""Names of the MQTT feed contract (docs/feeds.md), shared by producers and the gateway:
the safety feed, the personnel, video and communications feeds, and the alarm events, all under
one root."""

from __future__ import annotations

from urllib.parse import urlsplit

CONTRACT_VERSION = 1
TOPIC_ROOT = f"minewatch/v{CONTRACT_VERSION}"


def safety_topic(mine: str, substation: str) -> str:
    """Readings of one substation (安全监控), batched per polling cycle."""
    return f"{TOPIC_ROOT}/{mine}/safety/{substation}"


def meta_topic(mine: str) -> str:
    """The mine's definition (substations, points, thresholds), retained."""
    return f"{TOPIC_ROOT}/{mine}/meta"


def safety_subscriptions(mine: str) -> list[str]:
    """The topic filter of one mine's safety feed (what a gateway serving that mine takes): the
    mine's whole tree, so that a message under a topic outside the contract is quarantined
    rather than never received; the other feeds' topics are left to their own clients."""
    return [f"{TOPIC_ROOT}/{mine}/#"]


#: The levels after ``minewatch/v1/<mine>/`` of the feeds that are not the safety feed's:
#: the personnel, video and communications pipeline reads them on its own session; alarms are
#: the gateway's own, and so are the statistics and the national files it sends up
#: (docs/federation.md).
OTHER_FEEDS = frozenset(
    {
        "alarms",
        "statistics",
        "files",
        "personnel",
        "personnel/meta",
        "video",
        "video/meta",
        "comms",
        "comms/meta",
    }
)


def alarm_topic(mine: str) -> str:
    """Alarm events published for control-room screens."""
    return f"{TOPIC_ROOT}/{mine}/alarms"


def statistics_topic(mine: str) -> str:
    """1- and 5-minute statistics a gateway publishes for the levels above (``alarms`` mode)."""
    return f"{TOPIC_ROOT}/{mine}/statistics"


def files_topic(mine: str) -> str:
    """The national files a gateway's drop folder accepted, each byte for byte, for the levels
    above (docs/federation.md "National files up")."""
    return f"{TOPIC_ROOT}/{mine}/files"


def broker_address(url: str) -> tuple[str, int]:
    """(host, port) of an ``mqtt://host:port`` (or TLS: ``mqtts://``) URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "tcp", "mqtts", "ssl"):
        raise ValueError(f"unsupported broker URL {parts.scheme}:// (use mqtt://host:port)")
    default_port = 1883 if parts.scheme in ("mqtt", "tcp") else 8883
    return parts.hostname or "127.0.0.1", parts.port or default_port


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


def comms_topic(mine: str) -> str:
    """Status reports of one mine's communications devices (通信联络: base stations, dispatch
    phones, broadcast)."""
    return f"{TOPIC_ROOT}/{mine}/comms"


def comms_meta_topic(mine: str) -> str:
    """The communications devices of one mine, retained."""
    return f"{TOPIC_ROOT}/{mine}/comms/meta"


#: Root of what flows down the hierarchy (docs/federation.md "Directives down"): outside
#: ``TOPIC_ROOT``, so no mine or link login, which write under ``TOPIC_ROOT/<mine>/#``, can
#: speak on it.
DOWN_ROOT = f"minewatch/down/v{CONTRACT_VERSION}"


def directive_topic(mine: str) -> str:
    """Regulators' directives (inspection notes, required actions) to one mine, from above."""
    return f"{DOWN_ROOT}/{mine}/directives"

"""The Sparkplug B topic namespace (specification 3.0, §4.1):
``spBv1.0/<group_id>/<message_type>/<edge_node_id>[/<device_id>]`` and ``spBv1.0/STATE/<host>``.

In minewatch the group id is the 12-digit mine code and the edge node id the substation code.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

NAMESPACE = "spBv1.0"


class MessageType(enum.StrEnum):
    NBIRTH = "NBIRTH"
    NDEATH = "NDEATH"
    NDATA = "NDATA"
    NCMD = "NCMD"
    DBIRTH = "DBIRTH"
    DDEATH = "DDEATH"
    DDATA = "DDATA"
    DCMD = "DCMD"
    STATE = "STATE"


_NODE_TYPES = frozenset(
    {MessageType.NBIRTH, MessageType.NDEATH, MessageType.NDATA, MessageType.NCMD}
)


@dataclass(frozen=True, slots=True)
class SparkplugTopic:
    group: str
    kind: MessageType
    edge_node: str
    device: str | None = None

    @property
    def source(self) -> str:
        """The minewatch source name: the unit of sequence numbering and deduplication."""
        base = f"{self.group}/sparkplug/{self.edge_node}"
        return base if self.device is None else f"{base}/{self.device}"


def parse_topic(topic: str) -> SparkplugTopic | None:
    """The parts of a Sparkplug B topic, or None if ``topic`` is not one."""
    parts = topic.split("/")
    if len(parts) < 3 or parts[0] != NAMESPACE or not all(parts):
        return None
    if parts[1] == MessageType.STATE and len(parts) == 3:
        return SparkplugTopic("", MessageType.STATE, parts[2])
    if len(parts) not in (4, 5):
        return None
    try:
        kind = MessageType(parts[2])
    except ValueError:
        return None
    if kind is MessageType.STATE or (kind in _NODE_TYPES) != (len(parts) == 4):
        return None
    return SparkplugTopic(parts[1], kind, parts[3], parts[4] if len(parts) == 5 else None)


def subscription(group: str) -> str:
    """The topic filter for everything of one group (one mine)."""
    return f"{NAMESPACE}/{group}/+/#"


def node_command_topic(group: str, edge_node: str) -> str:
    return f"{NAMESPACE}/{group}/{MessageType.NCMD}/{edge_node}"


def state_topic(host_id: str) -> str:
    """The Primary Host Application's STATE topic (specification 3.0, §4.2.3)."""
    return f"{NAMESPACE}/{MessageType.STATE}/{host_id}"


def valid_host_id(host_id: str) -> bool:
    """A host id is one topic level: not empty, no ``/``, ``+`` or ``#``."""
    return bool(host_id) and not any(c in host_id for c in "/+#")

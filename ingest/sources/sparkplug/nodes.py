"""What the host session remembers per edge node and device, and what one message leads to.

Plain state shared by :mod:`.session` (the host), :mod:`.handling`
(the protocol steps of one message) and :mod:`.readings` (metrics to readings).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from minewatch.ingest.contract import SafetyMessage
from minewatch.ingest.quarantine import QuarantineReason, Rejection
from minewatch.ingest.sources.sparkplug.births import BirthRecord, MetricDefinition
from minewatch.ingest.sources.sparkplug.events import RebirthRequest, SourceEvent
from minewatch.ingest.sources.sparkplug.topic import SparkplugTopic

BD_SEQ = "bdSeq"
#: Metrics of the protocol itself, not measurements: never turned into readings.
PROTOCOL_PREFIXES = ("Node Control/", "Device Control/")
SEQ_LIMIT = 256
#: Timestamps (ms) beyond 9999-12-31 are refused: they would not fit microseconds in int64.
MAX_TIME_MS = 253_402_300_799_999


@dataclass
class HostOutput:
    """What one received message leads to. ``messages`` go to the gateway in this order;
    ``births`` are to be stored (:mod:`.store`) before they are acknowledged."""

    messages: list[SafetyMessage | Rejection] = field(default_factory=list)
    events: list[SourceEvent] = field(default_factory=list)
    commands: list[RebirthRequest] = field(default_factory=list)
    births: list[BirthRecord] = field(default_factory=list)
    #: (message type, what happened) to log at WARNING: a birth refused, a stale death ignored
    warnings: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class SourceState:
    """One source of readings: an edge node, or a device of one."""

    topic: SparkplugTopic  # the birth topic: names the source
    online: bool = False
    lost: bool = False  # an interruption was reported and no birth has followed yet
    boot: int = -1
    next_seq: int = 0
    by_alias: dict[int, MetricDefinition] = field(default_factory=dict)
    by_name: dict[str, MetricDefinition] = field(default_factory=dict)
    last_data_us: int | None = None  # latest event time of its messages (readings or payload)
    born_ms: int = 0  # the payload timestamp of its birth
    node_boot: int = -1  # the node session it belongs to (a device's; a node's own boot)

    def take_seq(self) -> int:
        given = self.next_seq
        self.next_seq += 1
        return given

    def record(self, bd_seq: int) -> BirthRecord:
        topic = self.topic
        return BirthRecord(
            source=topic.source,
            group=topic.group,
            edge_node=topic.edge_node,
            device=topic.device,
            bd_seq=bd_seq,
            boot=self.boot,
            node_boot=self.node_boot,
            born_ms=self.born_ms,
            metrics=tuple(self.by_name.values()),
            alive=self.online,
        )


@dataclass(frozen=True, slots=True)
class Handled:
    digest: int  # of the topic and the bytes
    source: str
    boot: int
    given: int | None  # the seq given to its (last) readings; None: it had none
    refusal: tuple[QuarantineReason, str] | None = None


@dataclass
class NodeState:
    source: SourceState
    devices: dict[str, SourceState] = field(default_factory=dict)
    bd_seq: int | None = None
    last_seq: int | None = None
    #: Sparkplug seq -> what the message with that seq led to, to answer a redelivery alike
    recent: dict[int, Handled] = field(default_factory=dict)
    rebirth_requested_ms: int | None = None
    #: definitions loaded from the database after a gateway restart, not confirmed by a birth
    #: seen by this process: data is mapped, and a rebirth requested (state unknown)
    restored: bool = False


class Refused(Exception):
    """The whole message is refused with this reason."""

    def __init__(self, reason: QuarantineReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail

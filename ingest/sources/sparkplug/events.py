"""What a Sparkplug session tells besides readings: data interruptions, their end, and the
rebirth requests to publish. Plain records, for the alarm engine and the adapter to act on."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from minewatch.ingest.sources.sparkplug.payload import encode_rebirth_request
from minewatch.ingest.sources.sparkplug.topic import node_command_topic


class InterruptionCause(enum.StrEnum):
    NODE_DEATH = "node_death"  # NDEATH with the bdSeq of the current birth (will or disconnect)
    DEVICE_DEATH = "device_death"  # DDEATH of a device that was born
    SEQUENCE_GAP = "sequence_gap"  # messages missing from the edge node's seq (0..255 wrapping)
    SESSION_REPLACED = "session_replaced"  # an unrequested NBIRTH with a new bdSeq, no NDEATH seen


@dataclass(frozen=True, slots=True)
class DataInterruption:
    """Data of ``source`` stopped, or has a hole.

    A death leaves the source lost until its next birth (then :class:`DataResumed`); a sequence
    gap is a hole already closed: ``resumed_us`` is the event time of the message after it.
    """

    source: str
    mine: str
    substation: str  # the edge node id
    device: str | None
    cause: InterruptionCause
    detected_us: int  # receive time (gateway clock)
    last_data_us: int | None  # event time of the last message before the hole, if any
    resumed_us: int | None = None
    missing_messages: int | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class DataResumed:
    """A lost source was born again: its data flows from ``boot`` on."""

    source: str
    mine: str
    substation: str
    device: str | None
    detected_us: int
    boot: int


SourceEvent = DataInterruption | DataResumed


@dataclass(frozen=True, slots=True)
class RebirthRequest:
    """An NCMD ``Node Control/Rebirth = true`` to publish to one edge node (QoS 0, §6.4.19)."""

    group: str
    edge_node: str
    reason: str

    @property
    def topic(self) -> str:
        return node_command_topic(self.group, self.edge_node)

    def payload(self, timestamp_ms: int) -> bytes:
        return encode_rebirth_request(timestamp_ms)

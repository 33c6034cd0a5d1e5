"""The Sparkplug B host side as a state machine without I/O: (topic, bytes, clock) in,
readings, refusals, interruption events and rebirth requests out.

One :class:`_Node` per edge node holds what its current birth defined (metric names, aliases,
datatypes), its bdSeq and the last seq seen; devices hang off their node. See docs/sparkplug.md
for the rules, and for how (boot, seq) is chosen so that the gateway's deduplication works:

- ``boot`` of a source is the timestamp (ms) of the birth (NBIRTH, or DBIRTH for a device) that
  began its current session, kept strictly growing per source within the process;
- ``seq`` counts the messages with readings of that source since that birth (the birth is 0).

A message redelivered by the broker (same topic and bytes, same Sparkplug seq) is answered with
an empty :class:`SafetyMessage` carrying the (boot, seq) given the first time, so the gateway
counts it as a duplicate and acknowledges it only once the original is durable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import orjson

from ingest.contract import SafetyMessage
from ingest.quarantine import QuarantineReason, Rejection
from ingest.sparkplug.events import (
    DataInterruption,
    DataResumed,
    InterruptionCause,
    RebirthRequest,
    SourceEvent,
)
from ingest.sparkplug.payload import (
    DataType,
    SparkplugMetric,
    SparkplugPayload,
    decode_payload,
    json_safe,
    metric_number,
)
from ingest.sparkplug.topic import MessageType, SparkplugTopic, parse_topic
from minewatch.codes import is_mine_code

BD_SEQ = "bdSeq"
#: Metrics of the protocol itself, not measurements: never turned into readings.
_PROTOCOL_PREFIXES = ("Node Control/", "Device Control/")
_IGNORED = frozenset({MessageType.NCMD, MessageType.DCMD, MessageType.STATE})
_SEQ_LIMIT = 256
#: Timestamps (ms) beyond 9999-12-31 are refused: they would not fit microseconds in int64.
MAX_TIME_MS = 253_402_300_799_999


@dataclass
class HostOutput:
    """What one received message leads to. ``messages`` go to the gateway in this order."""

    messages: list[SafetyMessage | Rejection] = field(default_factory=list)
    events: list[SourceEvent] = field(default_factory=list)
    commands: list[RebirthRequest] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Definition:
    name: str
    datatype: int
    protocol: bool


@dataclass
class _Source:
    """One source of readings: an edge node, or a device of one."""

    topic: SparkplugTopic  # the birth topic: names the source
    online: bool = False
    lost: bool = False  # an interruption was reported and no birth has followed yet
    boot: int = -1
    next_seq: int = 0
    by_alias: dict[int, _Definition] = field(default_factory=dict)
    by_name: dict[str, _Definition] = field(default_factory=dict)
    last_data_us: int | None = None  # latest event time of its messages (readings or payload)


@dataclass(frozen=True, slots=True)
class _Handled:
    digest: int  # of the topic and the bytes
    source: str
    boot: int
    given: int | None  # the seq given to its readings; None: it had none
    refusal: tuple[QuarantineReason, str] | None = None


@dataclass
class _Node:
    source: _Source
    devices: dict[str, _Source] = field(default_factory=dict)
    bd_seq: int | None = None
    last_seq: int | None = None
    #: Sparkplug seq -> what the message with that seq led to, to answer a redelivery alike
    recent: dict[int, _Handled] = field(default_factory=dict)
    rebirth_requested_ms: int | None = None


class _Refused(Exception):
    def __init__(self, reason: QuarantineReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class SparkplugHost:
    """The host application's view of every edge node of the configured groups (mines)."""

    def __init__(self, *, max_message_bytes: int, rebirth_retry_ms: int = 10_000) -> None:
        self._max_bytes = max_message_bytes
        self._rebirth_retry_ms = rebirth_retry_ms
        self._nodes: dict[tuple[str, str], _Node] = {}

    def is_online(self, group: str, edge_node: str, device: str | None = None) -> bool:
        node = self._nodes.get((group, edge_node))
        if node is None:
            return False
        if device is None:
            return node.source.online
        state = node.devices.get(device)
        return state is not None and state.online

    def receive(self, topic: str, payload: bytes, now_ms: int) -> HostOutput:
        """Handle one MQTT message; never raises on bad input."""
        out = HostOutput()
        parsed = parse_topic(topic)
        if parsed is None:
            detail = f"topic {topic!r} is not in the Sparkplug B namespace"
            out.messages.append(Rejection(topic, QuarantineReason.UNKNOWN_TOPIC, detail, payload))
            return out
        if parsed.kind in _IGNORED:  # commands (ours included) and host states carry no data
            return out
        if not is_mine_code(parsed.group):
            detail = f"group id {parsed.group!r} is not a 12-digit mine code"
            out.messages.append(
                Rejection(parsed.source, QuarantineReason.UNKNOWN_TOPIC, detail, payload)
            )
            return out
        decoded = decode_payload(payload, source=parsed.source, max_bytes=self._max_bytes)
        if isinstance(decoded, Rejection):
            out.messages.append(decoded)
            return out
        key = (parsed.group, parsed.edge_node)
        node = self._nodes.get(key)
        if node is None:
            node_topic = SparkplugTopic(parsed.group, MessageType.NBIRTH, parsed.edge_node)
            node = self._nodes[key] = _Node(_Source(node_topic))
        try:
            _Handling(self, node, parsed, decoded, payload, now_ms, out).run()
        except _Refused as refused:
            out.messages.append(Rejection(parsed.source, refused.reason, refused.detail, payload))
        return out

    def _request_rebirth(self, node: _Node, now_ms: int, reason: str, out: HostOutput) -> None:
        """Ask once, then again only after ``rebirth_retry_ms`` without a birth."""
        last = node.rebirth_requested_ms
        if last is not None and 0 <= now_ms - last < self._rebirth_retry_ms:
            return
        node.rebirth_requested_ms = now_ms
        topic = node.source.topic
        out.commands.append(RebirthRequest(topic.group, topic.edge_node, reason))


class _Handling:
    """One message being handled: the context that the steps share."""

    def __init__(
        self,
        host: SparkplugHost,
        node: _Node,
        topic: SparkplugTopic,
        payload: SparkplugPayload,
        data: bytes,
        now_ms: int,
        out: HostOutput,
    ) -> None:
        self.host = host
        self.node = node
        self.topic = topic
        self.payload = payload
        self.data = data
        self.now_ms = now_ms
        self.out = out

    def run(self) -> None:
        match self.topic.kind:
            case MessageType.NDEATH:
                self._node_death()
            case MessageType.NBIRTH:
                self._node_birth()
            case _:
                self._under_birth()

    # -- helpers -----------------------------------------------------------------------------

    def _event_time_us(self) -> int:
        timestamp = self.payload.timestamp_ms
        if timestamp is None or timestamp > MAX_TIME_MS:
            detail = f"payload timestamp {timestamp!r} missing or after 9999"
            raise _Refused(QuarantineReason.SPARKPLUG_VIOLATION, detail)
        return timestamp * 1000

    def _first_time_us(self) -> int:
        """The earliest event time this message carries (metric times, else the payload's)."""
        stamps = [m.timestamp_ms for m in self.payload.metrics if m.timestamp_ms is not None]
        first = min((s for s in stamps if s <= MAX_TIME_MS), default=None)
        return self._event_time_us() if first is None else first * 1000

    def _seq(self) -> int:
        seq = self.payload.seq
        if seq is None or not 0 <= seq < _SEQ_LIMIT:
            raise _Refused(QuarantineReason.SPARKPLUG_VIOLATION, f"seq {seq!r} not in 0..255")
        return seq

    def _digest(self) -> int:
        return hash((self.topic.kind, self.topic.device, self.data))

    def _duplicate(self, seq: int) -> bool:
        """A redelivery of a message handled under the current birth: answer as the first time
        (an empty message with the numbering given then, or the same refusal)."""
        seen = self.node.recent.get(seq)
        if seen is None or seen.digest != self._digest():
            return False
        if seen.refusal is not None:
            raise _Refused(*seen.refusal)
        if seen.given is not None:
            self.out.messages.append(_empty_message(self.topic, seen.source, seen.boot, seen.given))
        return True

    def _remember(
        self,
        seq: int,
        state: _Source,
        given: int | None,
        refusal: tuple[QuarantineReason, str] | None = None,
    ) -> None:
        self.node.recent[seq] = _Handled(self._digest(), state.topic.source, state.boot, given,
                                         refusal)  # fmt: skip

    def _interrupted(
        self,
        state: _Source,
        cause: InterruptionCause,
        detail: str,
        *,
        last_data_us: int | None = None,
        resumed_us: int | None = None,
        missing: int | None = None,
    ) -> None:
        topic = state.topic
        self.out.events.append(
            DataInterruption(
                source=topic.source,
                mine=topic.group,
                substation=topic.edge_node,
                device=topic.device,
                cause=cause,
                detected_us=self.now_ms * 1000,
                last_data_us=state.last_data_us if last_data_us is None else last_data_us,
                resumed_us=resumed_us,
                missing_messages=missing,
                detail=detail,
            )
        )

    def _rebirth(self, reason: str) -> None:
        self.host._request_rebirth(self.node, self.now_ms, reason, self.out)

    # -- births ------------------------------------------------------------------------------

    def _definitions(self) -> tuple[dict[int, _Definition], dict[str, _Definition]]:
        by_alias: dict[int, _Definition] = {}
        by_name: dict[str, _Definition] = {}
        for index, metric in enumerate(self.payload.metrics):
            if metric.name is None:
                raise _Refused(QuarantineReason.SPARKPLUG_VIOLATION, f"metric {index} has no name")
            if metric.name in by_name:
                raise _Refused(
                    QuarantineReason.SPARKPLUG_VIOLATION, f"metric {metric.name!r} born twice"
                )
            if metric.datatype is None:
                raise _Refused(
                    QuarantineReason.SPARKPLUG_VIOLATION,
                    f"metric {metric.name!r} has no datatype in the birth",
                )
            protocol = metric.name == BD_SEQ or metric.name.startswith(_PROTOCOL_PREFIXES)
            definition = _Definition(metric.name, metric.datatype, protocol)
            if metric.alias is not None:
                if metric.alias in by_alias:
                    raise _Refused(
                        QuarantineReason.SPARKPLUG_VIOLATION, f"alias {metric.alias} used twice"
                    )
                by_alias[metric.alias] = definition
            by_name[metric.name] = definition
        return by_alias, by_name

    def _born(self, state: _Source) -> None:
        """Start a new session of ``state`` with the definitions of this birth."""
        state.by_alias, state.by_name = self._definitions()
        timestamp = self.payload.timestamp_ms
        assert timestamp is not None
        state.boot = max(timestamp, state.boot + 1)
        state.next_seq = 0
        state.online = True
        if state.lost:
            state.lost = False
            topic = state.topic
            self.out.events.append(
                DataResumed(
                    topic.source,
                    topic.group,
                    topic.edge_node,
                    topic.device,
                    self.now_ms * 1000,
                    state.boot,
                )
            )

    def _node_birth(self) -> None:
        node = self.node
        self._event_time_us()
        seq = self._seq()
        if node.source.online and self._duplicate(seq):
            return
        bd_seq = _bd_seq(self.payload)
        self._definitions()  # refuse a bad birth before changing any state
        requested = node.rebirth_requested_ms is not None
        if node.source.online and node.bd_seq != bd_seq and not requested:
            self._interrupted(
                node.source,
                InterruptionCause.SESSION_REPLACED,
                f"NBIRTH with bdSeq {bd_seq} while bdSeq {node.bd_seq} was alive",
            )
            node.source.lost = True
        for device in node.devices.values():  # a node's birth ends its devices' sessions
            device.online = False
        node.bd_seq = bd_seq
        node.last_seq = seq
        node.recent.clear()
        node.rebirth_requested_ms = None
        self._born(node.source)
        given = self._emit(node.source, self.payload.metrics)
        self._remember(seq, node.source, given)

    def _node_death(self) -> None:
        node = self.node
        bd_seq = _bd_seq(self.payload)
        if not node.source.online or bd_seq != node.bd_seq:
            return  # a will from an earlier session, or a node never seen born: nothing ends
        for state in (node.source, *node.devices.values()):
            if state.online:
                state.online = False
                state.lost = True
                self._interrupted(state, InterruptionCause.NODE_DEATH, f"NDEATH, bdSeq {bd_seq}")
        node.last_seq = None
        node.recent.clear()

    # -- everything that needs a living node --------------------------------------------------

    def _under_birth(self) -> None:
        node = self.node
        kind = self.topic.kind
        self._event_time_us()
        seq = self._seq()
        if not node.source.online:
            self._rebirth(f"{kind} from an edge node that is not born")
            raise _Refused(QuarantineReason.NO_BIRTH, f"{kind} before the edge node's NBIRTH")
        if self._duplicate(seq):
            return
        if kind is MessageType.DBIRTH:
            self._definitions()  # refuse a bad birth before changing any state
        self._check_sequence(seq)
        device = self.topic.device
        state: _Source | None = node.source
        if device is not None:
            state = node.devices.get(device)
            if kind is MessageType.DBIRTH:
                if state is None:
                    device_topic = SparkplugTopic(
                        self.topic.group, MessageType.DBIRTH, self.topic.edge_node, device
                    )
                    state = node.devices[device] = _Source(device_topic)
                self._born(state)
            elif state is None or not state.online:
                if kind is MessageType.DDEATH:
                    self._remember(seq, node.source, None)
                    return
                self._rebirth(f"{kind} from device {device!r} that is not born")
                refusal = (QuarantineReason.NO_BIRTH, f"{kind} before the device's DBIRTH")
                self._remember(seq, node.source, None, refusal)
                raise _Refused(*refusal)
            elif kind is MessageType.DDEATH:
                state.online = False
                state.lost = True
                self._interrupted(state, InterruptionCause.DEVICE_DEATH, "DDEATH")
                self._remember(seq, state, None)
                return
        assert state is not None
        given = self._emit(state, self.payload.metrics)
        self._remember(seq, state, given)

    def _check_sequence(self, seq: int) -> None:
        node = self.node
        last = node.last_seq
        node.last_seq = seq
        if last is None:
            return
        missing = (seq - last - 1) % _SEQ_LIMIT
        if missing:
            seen = [s.last_data_us for s in (node.source, *node.devices.values())]
            self._interrupted(
                node.source,
                InterruptionCause.SEQUENCE_GAP,
                f"seq {seq} after {last}",
                last_data_us=max((s for s in seen if s is not None), default=None),
                resumed_us=self._first_time_us(),
                missing=missing,
            )
            self._rebirth(f"seq {seq} after {last}: {missing} message(s) missing")

    # -- readings -----------------------------------------------------------------------------

    def _emit(self, state: _Source, metrics: tuple[SparkplugMetric, ...]) -> int | None:
        """Readings of this message for ``state`` (plus refusals); the seq given, if any."""
        default_us = self._event_time_us()
        codes: list[str] = []
        times: list[int] = []
        values: list[float] = []
        ok: list[bool] = []
        raw: list[object] = []
        unknown = False
        for metric in metrics:
            definition = self._resolve(state, metric)
            if definition is None:
                unknown = True
                continue
            if definition.protocol:
                continue
            if metric.timestamp_ms is not None and metric.timestamp_ms > MAX_TIME_MS:
                why = f"metric timestamp {metric.timestamp_ms} after 9999"
                self._refuse_metric(metric, QuarantineReason.SPARKPLUG_VIOLATION, why)
                continue
            datatype = definition.datatype
            number = None
            if metric.datatype in (None, datatype):
                number = metric_number(datatype, metric)
            codes.append(definition.name)
            times.append(default_us if metric.timestamp_ms is None else metric.timestamp_ms * 1000)
            values.append(0.0 if number is None else number)
            ok.append(number is not None)
            raw.append(json_safe(metric))
        if unknown:
            self._rebirth("a metric that the birth did not define")
        latest = max(times, default=default_us)
        state.last_data_us = max(state.last_data_us or latest, latest)
        if not codes:
            return None
        given = state.next_seq
        state.next_seq += 1
        topic = state.topic
        self.out.messages.append(
            SafetyMessage(
                source=topic.source,
                mine=topic.group,
                substation=topic.edge_node,
                boot=state.boot,
                seq=given,
                time_us=np.asarray(times, np.int64),
                codes=codes,
                value=np.asarray(values, np.float64),
                value_ok=np.asarray(ok, np.bool_),
                status=np.zeros(len(codes), np.int64),
                raw_values=raw,
            )
        )
        return given

    def _resolve(self, state: _Source, metric: SparkplugMetric) -> _Definition | None:
        if metric.alias is not None:
            definition = state.by_alias.get(metric.alias)
            what = f"alias {metric.alias}"
        elif metric.name is not None:
            definition = state.by_name.get(metric.name)
            what = f"name {metric.name!r}"
        else:
            self._refuse_metric(
                metric, QuarantineReason.SPARKPLUG_VIOLATION, "metric has neither name nor alias"
            )
            return None
        if definition is None:
            self._refuse_metric(
                metric, QuarantineReason.UNKNOWN_METRIC, f"{what} not defined by the birth"
            )
        return definition

    def _refuse_metric(self, metric: SparkplugMetric, reason: QuarantineReason, why: str) -> None:
        record = {
            "topic_kind": str(self.topic.kind),
            "seq": self.payload.seq,
            "timestamp_ms": self.payload.timestamp_ms,
            "name": metric.name,
            "alias": metric.alias,
            "datatype": metric.datatype,
            "metric_timestamp_ms": metric.timestamp_ms,
            "value": json_safe(metric),
        }
        self.out.messages.append(
            Rejection(self.topic.source, reason, why, orjson.dumps(record, default=str))
        )


def _bd_seq(payload: SparkplugPayload) -> int:
    metric = payload.metric_named(BD_SEQ)
    value = None if metric is None else metric_number(DataType.UINT64, metric)
    if value is None or not 0 <= value < _SEQ_LIMIT:
        raise _Refused(QuarantineReason.SPARKPLUG_VIOLATION, "no bdSeq metric in 0..255")
    return int(value)


def _empty_message(topic: SparkplugTopic, source: str, boot: int, seq: int) -> SafetyMessage:
    return SafetyMessage(
        source=source,
        mine=topic.group,
        substation=topic.edge_node,
        boot=boot,
        seq=seq,
        time_us=np.empty(0, np.int64),
        codes=[],
        value=np.empty(0, np.float64),
        value_ok=np.empty(0, np.bool_),
        status=np.empty(0, np.int64),
        raw_values=[],
    )

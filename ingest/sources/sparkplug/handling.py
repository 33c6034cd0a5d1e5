"""The protocol steps of one received message: births, deaths, sequence checks and data, on
the state of its edge node (:mod:`.nodes`). Used by
:class:`ingest.sources.sparkplug.session.SparkplugHost`; docs/sparkplug.md has the rules."""

from __future__ import annotations

from collections.abc import Callable

from minewatch.ingest.quarantine import QuarantineReason
from minewatch.ingest.sources.sparkplug.births import MetricDefinition
from minewatch.ingest.sources.sparkplug.events import (
    DataInterruption,
    DataResumed,
    InterruptionCause,
)
from minewatch.ingest.sources.sparkplug.metric_map import UNMAPPED, MetricMap
from minewatch.ingest.sources.sparkplug.nodes import (
    BD_SEQ,
    MAX_TIME_MS,
    PROTOCOL_PREFIXES,
    SEQ_LIMIT,
    Handled,
    HostOutput,
    NodeState,
    Refused,
    SourceState,
)
from minewatch.ingest.sources.sparkplug.payload import DataType, SparkplugPayload, metric_number
from minewatch.ingest.sources.sparkplug.readings import emit_readings, empty_message, fault_message
from minewatch.ingest.sources.sparkplug.topic import MessageType, SparkplugTopic

#: (node, now_ms, reason, out): ask the edge node for a rebirth, at most once per retry period
RebirthAsker = Callable[[NodeState, int, str, HostOutput], None]


class Handling:
    """One message being handled: the context that the steps share."""

    def __init__(
        self,
        node: NodeState,
        topic: SparkplugTopic,
        payload: SparkplugPayload,
        data: bytes,
        now_ms: int,
        out: HostOutput,
        ask_rebirth: RebirthAsker,
        metric_map: MetricMap | None = None,
    ) -> None:
        self._map = metric_map or MetricMap()
        self.node = node
        self.topic = topic
        self.payload = payload
        self.data = data
        self.now_ms = now_ms
        self.out = out
        self._ask_rebirth = ask_rebirth

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
            raise Refused(QuarantineReason.SPARKPLUG_VIOLATION, detail)
        return timestamp * 1000

    def _first_time_us(self) -> int:
        """The earliest event time this message carries (metric times, else the payload's)."""
        stamps = [m.timestamp_ms for m in self.payload.metrics if m.timestamp_ms is not None]
        first = min((s for s in stamps if s <= MAX_TIME_MS), default=None)
        return self._event_time_us() if first is None else first * 1000

    def _seq(self) -> int:
        seq = self.payload.seq
        if seq is None or not 0 <= seq < SEQ_LIMIT:
            raise Refused(QuarantineReason.SPARKPLUG_VIOLATION, f"seq {seq!r} not in 0..255")
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
            raise Refused(*seen.refusal)
        if seen.given is not None:
            self.out.messages.append(empty_message(self.topic, seen.source, seen.boot, seen.given))
        return True

    def _remember(
        self,
        seq: int,
        state: SourceState,
        given: int | None,
        refusal: tuple[QuarantineReason, str] | None = None,
    ) -> None:
        self.node.recent[seq] = Handled(self._digest(), state.topic.source, state.boot, given,
                                        refusal)  # fmt: skip

    def _interrupted(
        self,
        state: SourceState,
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

    def _fault(self, state: SourceState, time_us: int) -> int | None:
        """Substation-fault readings for the points of ``state``; the seq given, if any."""
        message = fault_message(state, time_us)
        if message is None:
            return None
        self.out.messages.append(message)
        return message.seq

    def _death_fault_us(self, state: SourceState) -> int:
        """A death is dated when it is seen, and after the source's last data (an edge clock
        ahead of ours must not make the fault a late reading that the alarm engine skips)."""
        now_us = self.now_ms * 1000
        last = state.last_data_us
        return now_us if last is None else max(now_us, last + 1)

    def _rebirth(self, reason: str) -> None:
        self._ask_rebirth(self.node, self.now_ms, reason, self.out)

    # -- births ------------------------------------------------------------------------------

    def _definitions(self) -> tuple[dict[int, MetricDefinition], dict[str, MetricDefinition]]:
        by_alias: dict[int, MetricDefinition] = {}
        by_name: dict[str, MetricDefinition] = {}
        violation = QuarantineReason.SPARKPLUG_VIOLATION
        for index, metric in enumerate(self.payload.metrics):
            if metric.name is None:
                raise Refused(violation, f"metric {index} has no name")
            if metric.name in by_name:
                raise Refused(violation, f"metric {metric.name!r} born twice")
            if metric.datatype is None:
                raise Refused(violation, f"metric {metric.name!r} has no datatype in the birth")
            protocol = metric.name == BD_SEQ or metric.name.startswith(PROTOCOL_PREFIXES)
            topic = self.topic
            point = self._map.point_of(topic.group, topic.edge_node, topic.device, metric.name)
            definition = MetricDefinition(
                metric.name, metric.alias, metric.datatype, protocol,
                mapped=point if isinstance(point, str) and point != metric.name else None,
                unmapped=point is UNMAPPED and not protocol,
            )  # fmt: skip
            if metric.alias is not None:
                if metric.alias in by_alias:
                    raise Refused(violation, f"alias {metric.alias} used twice")
                by_alias[metric.alias] = definition
            by_name[metric.name] = definition
        return by_alias, by_name

    def _born(self, state: SourceState) -> None:
        """Start a new session of ``state`` with the definitions of this birth."""
        state.by_alias, state.by_name = self._definitions()
        timestamp = self.payload.timestamp_ms
        assert timestamp is not None
        state.boot = max(timestamp, state.boot + 1)
        state.born_ms = timestamp
        state.next_seq = 0
        state.online = True
        state.node_boot = state.boot if state.topic.device is None else self.node.source.boot
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
        assert self.node.bd_seq is not None
        self.out.births.append(state.record(self.node.bd_seq))

    def _node_birth(self) -> None:
        node = self.node
        self._event_time_us()
        seq = self._seq()
        if node.source.online and self._duplicate(seq):
            return
        bd_seq = _bd_seq(self.payload)
        self._definitions()  # refuse a bad birth before changing any state
        requested = node.rebirth_requested_ms is not None
        replaced = node.source.online and node.bd_seq != bd_seq and not node.restored
        if replaced and not requested:
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
        node.restored = False
        self._born(node.source)
        given, _ = emit_readings(
            node.source, self.topic, self.payload, self._event_time_us(), self.out
        )
        self._remember(seq, node.source, given)

    def _node_death(self) -> None:
        node = self.node
        bd_seq = _bd_seq(self.payload)
        if not node.source.online:
            return  # a node never seen born, or already dead: nothing ends
        if bd_seq != node.bd_seq:  # a will from an earlier session: ignored, and kept
            raise Refused(
                QuarantineReason.STALE_DEATH,
                f"NDEATH with bdSeq {bd_seq}, but the living birth has bdSeq {node.bd_seq}: "
                "ignored (a will of an earlier session); the node stays alive",
            )
        for state in (node.source, *node.devices.values()):
            if state.online:
                state.online = False
                state.lost = True
                self._interrupted(state, InterruptionCause.NODE_DEATH, f"NDEATH, bdSeq {bd_seq}")
                self._fault(state, self._death_fault_us(state))
                self.out.births.append(state.record(bd_seq))  # kept, no longer alive
        node.last_seq = None
        node.recent.clear()
        node.restored = False

    # -- everything that needs a living node --------------------------------------------------

    def _under_birth(self) -> None:
        node = self.node
        kind = self.topic.kind
        self._event_time_us()
        seq = self._seq()
        if not node.source.online:
            self._rebirth(f"{kind} from an edge node that is not born")
            raise Refused(QuarantineReason.NO_BIRTH, f"{kind} before the edge node's NBIRTH")
        if self._duplicate(seq):
            return
        if node.restored:  # mapped with the stored birth, but its state is unknown: ask
            self._rebirth(f"{kind} from an edge node known only from before a gateway restart")
        if kind is MessageType.DBIRTH:
            self._definitions()  # refuse a bad birth before changing any state
        self._check_sequence(seq)
        device = self.topic.device
        state: SourceState | None = node.source
        if device is not None:
            state = node.devices.get(device)
            if kind is MessageType.DBIRTH:
                if state is None:
                    device_topic = SparkplugTopic(
                        self.topic.group, MessageType.DBIRTH, self.topic.edge_node, device
                    )
                    state = node.devices[device] = SourceState(device_topic)
                self._born(state)
            elif state is None or not state.online:
                if kind is MessageType.DDEATH:
                    self._remember(seq, node.source, None)
                    return
                self._rebirth(f"{kind} from device {device!r} that is not born")
                refusal = (QuarantineReason.NO_BIRTH, f"{kind} before the device's DBIRTH")
                self._remember(seq, node.source, None, refusal)
                raise Refused(*refusal)
            elif kind is MessageType.DDEATH:
                state.online = False
                state.lost = True
                self._interrupted(state, InterruptionCause.DEVICE_DEATH, "DDEATH")
                given = self._fault(state, self._death_fault_us(state))
                assert node.bd_seq is not None
                self.out.births.append(state.record(node.bd_seq))
                self._remember(seq, state, given)
                return
        assert state is not None
        given, unknown = emit_readings(
            state, self.topic, self.payload, self._event_time_us(), self.out
        )
        if unknown:
            self._rebirth("a metric that the birth did not define")
        self._remember(seq, state, given)

    def _check_sequence(self, seq: int) -> None:
        node = self.node
        last = node.last_seq
        node.last_seq = seq
        if last is None:
            return
        missing = (seq - last - 1) % SEQ_LIMIT
        if not missing:
            return
        alive = [s for s in (node.source, *node.devices.values()) if s.online]
        seen = [s.last_data_us for s in (node.source, *node.devices.values())]
        last_data_us = max((s for s in seen if s is not None), default=None)
        resumed_us = self._first_time_us()
        self._interrupted(
            node.source,
            InterruptionCause.SEQUENCE_GAP,
            f"seq {seq} after {last}",
            last_data_us=last_data_us,
            resumed_us=resumed_us,
            missing=missing,
        )
        # The hole lies between the last data and this message: substation-fault readings just
        # after the last data, which this message's readings (and the rebirth's) end again.
        # Without room between the two there is nothing to date them by: only the event.
        if last_data_us is not None and last_data_us + 1 < resumed_us:
            for state in alive:
                self._fault(state, last_data_us + 1)
        self._rebirth(f"seq {seq} after {last}: {missing} message(s) missing")


def _bd_seq(payload: SparkplugPayload) -> int:
    metric = payload.metric_named(BD_SEQ)
    value = None if metric is None else metric_number(DataType.UINT64, metric)
    if value is None or not 0 <= value < SEQ_LIMIT:
        raise Refused(QuarantineReason.SPARKPLUG_VIOLATION, "no bdSeq metric in 0..255")
    return int(value)

"""The Sparkplug B host side as a state machine without I/O: (topic, bytes, clock) in,
readings, refusals, interruption events, rebirth requests and births to store out.

One :class:`~.nodes.NodeState` per edge node holds what its current birth
defined (metric names, aliases, datatypes), its bdSeq and the last seq seen; devices hang off
their node. The steps of one message are :mod:`.handling`; metrics become
readings in :mod:`.readings`. See docs/sparkplug.md for the rules, and for how
(boot, seq) is chosen so that the gateway's deduplication works:

- ``boot`` of a source is the timestamp (ms) of the birth (NBIRTH, or DBIRTH for a device) that
  began its current session, kept strictly growing per source within the process;
- ``seq`` counts the messages with readings of that source since that birth (the birth is 0).

A message redelivered by the broker (same topic and bytes, same Sparkplug seq) is answered with
an empty :class:`SafetyMessage` carrying the (boot, seq) given the first time, so the gateway
counts it as a duplicate and acknowledges it only once the original is durable.

Births are reported in :attr:`HostOutput.births` to be stored, and :meth:`SparkplugHost.restore`
takes them back after a gateway restart: data can then be mapped before the next birth.
"""

from __future__ import annotations

from collections.abc import Iterable

from minewatch.codes import is_mine_code
from minewatch.ingest.quarantine import QuarantineReason, Rejection
from minewatch.ingest.sources.sparkplug.births import BirthRecord, StoredBirth
from minewatch.ingest.sources.sparkplug.events import RebirthRequest
from minewatch.ingest.sources.sparkplug.handling import Handling
from minewatch.ingest.sources.sparkplug.metric_map import MetricMap
from minewatch.ingest.sources.sparkplug.nodes import HostOutput, NodeState, Refused, SourceState
from minewatch.ingest.sources.sparkplug.payload import decode_payload
from minewatch.ingest.sources.sparkplug.topic import MessageType, SparkplugTopic, parse_topic

__all__ = ["HostOutput", "SparkplugHost"]

_IGNORED = frozenset({MessageType.NCMD, MessageType.DCMD, MessageType.STATE})
#: Refusals that leave a node or device in another state than its edge node believes
_LOUD = frozenset({MessageType.NBIRTH, MessageType.DBIRTH, MessageType.NDEATH})


class SparkplugHost:
    """The host application's view of every edge node of the configured groups (mines)."""

    def __init__(
        self, *, max_message_bytes: int, rebirth_retry_ms: int = 10_000,
        metric_map: MetricMap | None = None,
    ) -> None:  # fmt: skip
        self._map = metric_map or MetricMap()
        self._max_bytes = max_message_bytes
        self._rebirth_retry_ms = rebirth_retry_ms
        self._nodes: dict[tuple[str, str], NodeState] = {}

    def is_online(self, group: str, edge_node: str, device: str | None = None) -> bool:
        node = self._nodes.get((group, edge_node))
        if node is None:
            return False
        if device is None:
            return node.source.online
        state = node.devices.get(device)
        return state is not None and state.online

    def restore(self, stored: Iterable[StoredBirth]) -> int:
        """Take back the births stored before a restart (call before the first message).

        A living node is mapped again at once but marked *restored*: its first data asks for
        a rebirth, since whether it is still the same session is unknown. A device's birth
        counts only if it belongs to the node's stored session. Each source continues above
        its committed watermark. Returns how many sources were restored alive.
        """
        births = list(stored)
        nodes = {
            (b.record.group, b.record.edge_node): b.record
            for b in births
            if b.record.device is None
        }
        alive = 0
        for birth in sorted(births, key=lambda b: b.record.device is not None):
            record = birth.record
            key = (record.group, record.edge_node)
            if record.device is None:
                topic = SparkplugTopic(record.group, MessageType.NBIRTH, record.edge_node)
                node = self._nodes[key] = NodeState(SourceState(topic))
                node.bd_seq = record.bd_seq
                node.restored = record.alive
                state = node.source
            else:
                node_record = nodes.get(key)
                if node_record is None or node_record.boot != record.node_boot:
                    continue  # born under an earlier session of its node: void
                topic = SparkplugTopic(
                    record.group, MessageType.DBIRTH, record.edge_node, record.device
                )
                state = self._nodes[key].devices[record.device] = SourceState(topic)
            _restore_source(state, record, birth.watermark)
            alive += state.online
        return alive

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
            node = self._nodes[key] = NodeState(SourceState(node_topic))
        try:
            Handling(
                node, parsed, decoded, payload, now_ms, out, self._request_rebirth, self._map
            ).run()
        except Refused as refused:
            out.messages.append(Rejection(parsed.source, refused.reason, refused.detail, payload))
            if parsed.kind in _LOUD:  # a node left unborn, or a death not believed: say so
                what = f"{parsed.kind} of {parsed.source} refused ({refused.reason}): "
                out.warnings.append((str(parsed.kind), what + refused.detail))
        return out

    def _request_rebirth(self, node: NodeState, now_ms: int, reason: str, out: HostOutput) -> None:
        """Ask once, then again only after ``rebirth_retry_ms`` without a birth."""
        last = node.rebirth_requested_ms
        if last is not None and 0 <= now_ms - last < self._rebirth_retry_ms:
            return
        node.rebirth_requested_ms = now_ms
        topic = node.source.topic
        out.commands.append(RebirthRequest(topic.group, topic.edge_node, reason))


def _restore_source(
    state: SourceState, record: BirthRecord, watermark: tuple[int, int] | None
) -> None:
    state.by_name = {m.name: m for m in record.metrics}
    state.by_alias = {m.alias: m for m in record.metrics if m.alias is not None}
    state.born_ms = record.born_ms
    state.node_boot = record.node_boot
    state.boot, state.next_seq = record.boot, 0
    if watermark is not None and watermark >= (record.boot, 0):
        state.boot, state.next_seq = watermark[0], watermark[1] + 1
    state.online = record.alive
    state.lost = not record.alive

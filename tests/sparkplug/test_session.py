"""The Sparkplug host session without a broker: births define metrics, data resolves them,
deaths and sequence gaps interrupt sources and ask for rebirths, data without a birth is
refused, and the (boot, seq) numbering lets the gateway drop redeliveries and nothing else."""

from __future__ import annotations

import pytest

from minewatch.ingest.contract import SafetyMessage
from minewatch.ingest.metrics import GatewayMetrics
from minewatch.ingest.quarantine import QuarantineReason, Rejection
from minewatch.ingest.sources.sparkplug import (
    DataInterruption,
    DataResumed,
    DataType,
    HostOutput,
    InterruptionCause,
    SparkplugHost,
)
from minewatch.ingest.time_limits import TimeLimits
from minewatch.ingest.writer import BatchWriter, PendingWrite
from tests.sparkplug.builders import EDGE, MINE, T0, M, encode, nbirth, ndeath, topic

NODE_SOURCE = f"{MINE}/sparkplug/{EDGE}"
BIRTH = [
    M("CH4", 0.30, DataType.DOUBLE, alias=1),
    M("FEED", True, DataType.BOOLEAN, alias=2),
    M("TEMP", 0xFFFB, DataType.INT16, alias=3),  # -5 in 16 bits
    M("Node Control/Rebirth", False, DataType.BOOLEAN, alias=4),
]


class Clock:
    def __init__(self) -> None:
        self.ms = T0 + 500

    def __call__(self, advance_ms: int = 10) -> int:
        self.ms += advance_ms
        return self.ms


@pytest.fixture
def host() -> SparkplugHost:
    return SparkplugHost(max_message_bytes=1 << 20, rebirth_retry_ms=5_000)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def readings(out: HostOutput) -> list[SafetyMessage]:
    return [m for m in out.messages if isinstance(m, SafetyMessage)]


def refusals(out: HostOutput) -> list[Rejection]:
    return [m for m in out.messages if isinstance(m, Rejection)]


def only_reading(out: HostOutput) -> SafetyMessage:
    (message,) = readings(out)
    return message


def born(host: SparkplugHost, clock: Clock, *, bd: int = 0, timestamp: int = T0) -> HostOutput:
    out = host.receive(topic("NBIRTH"), nbirth(BIRTH, bd=bd, timestamp=timestamp), clock())
    assert host.is_online(MINE, EDGE)
    return out


def ndata(seq: int, metrics: list[M], timestamp: int) -> bytes:
    return encode(metrics, timestamp=timestamp, seq=seq)


def test_a_birth_is_a_reading_message_of_its_values_without_protocol_metrics(
    host: SparkplugHost, clock: Clock
) -> None:
    out = born(host, clock)
    message = only_reading(out)
    assert (message.source, message.mine, message.substation) == (NODE_SOURCE, MINE, EDGE)
    assert (message.boot, message.seq) == (T0, 0)
    assert message.codes == ["CH4", "FEED", "TEMP"]  # not bdSeq, not Node Control/Rebirth
    assert message.value.tolist() == [0.30, 1.0, -5.0]
    assert message.value_ok.all() and (message.status == 0).all()
    assert (message.time_us == T0 * 1000).all()
    assert out.events == [] and out.commands == []


def test_data_by_alias_and_by_name_resolve_to_point_codes_with_metric_times(
    host: SparkplugHost, clock: Clock
) -> None:
    born(host, clock)
    t1 = T0 + 1000
    out = host.receive(
        topic("NDATA"),
        ndata(
            1,
            [
                M(alias=1, value=0.42, field="double_value", timestamp=t1 - 300),
                M("FEED", False, DataType.BOOLEAN),
            ],
            t1,
        ),
        clock(),
    )
    message = only_reading(out)
    assert (message.boot, message.seq) == (T0, 1)
    assert message.codes == ["CH4", "FEED"]
    assert message.value.tolist() == [0.42, 0.0]
    assert message.time_us.tolist() == [(t1 - 300) * 1000, t1 * 1000]
    assert out.events == [] and out.commands == [] and refusals(out) == []


def test_values_that_are_not_numbers_of_their_datatype_are_marked_not_ok(
    host: SparkplugHost, clock: Clock
) -> None:
    born(host, clock)
    out = host.receive(
        topic("NDATA"),
        ndata(
            1,
            [
                M(alias=1, value="0.4", field="string_value"),
                M(alias=2, datatype=DataType.BOOLEAN, is_null=True),
                M(alias=3, value=1.5, datatype=DataType.DOUBLE),
            ],
            T0 + 1,
        ),  # wrong datatype
        clock(),
    )
    message = only_reading(out)
    assert message.value_ok.tolist() == [False, False, False]
    assert message.raw_values == ["0.4", None, 1.5]


def test_data_before_a_birth_is_refused_and_a_rebirth_requested_once_per_retry_period(
    host: SparkplugHost, clock: Clock
) -> None:
    data = ndata(5, [M(alias=1, value=0.1, field="double_value")], T0)
    first = host.receive(topic("NDATA"), data, clock())
    (refused,) = refusals(first)
    assert (refused.reason, refused.source, refused.payload) == (
        QuarantineReason.NO_BIRTH,
        NODE_SOURCE,
        data,
    )
    (request,) = first.commands
    assert (request.topic, request.group, request.edge_node) == (topic("NCMD"), MINE, EDGE)
    assert host.receive(topic("NDATA"), data, clock(1000)).commands == []
    assert len(host.receive(topic("NDATA"), data, clock(5000)).commands) == 1
    ddata = host.receive(topic("DDATA", device="d1"), data, clock())
    assert [r.reason for r in refusals(ddata)] == [QuarantineReason.NO_BIRTH]


def test_a_seq_gap_interrupts_the_source_requests_a_rebirth_and_keeps_the_data(
    host: SparkplugHost, clock: Clock
) -> None:
    born(host, clock)
    host.receive(
        topic("NDATA"), ndata(1, [M(alias=1, value=0.1, field="double_value")], T0 + 1000), clock()
    )
    out = host.receive(
        topic("NDATA"), ndata(4, [M(alias=1, value=0.2, field="double_value")], T0 + 4000), clock()
    )
    (gap,) = out.events
    assert isinstance(gap, DataInterruption)
    assert (gap.source, gap.cause, gap.missing_messages) == (
        NODE_SOURCE,
        InterruptionCause.SEQUENCE_GAP,
        2,
    )
    assert (gap.last_data_us, gap.resumed_us) == ((T0 + 1000) * 1000, (T0 + 4000) * 1000)
    assert len(out.commands) == 1
    fault, data = readings(out)  # the hole as substation-fault readings, then the data
    assert (fault.seq, data.seq) == (2, 3)
    assert fault.codes == ["CH4", "FEED", "TEMP"]
    assert (fault.status == 16).all() and fault.value_ok.all() and (fault.value == 0.0).all()
    assert (fault.time_us == (T0 + 1000) * 1000 + 1).all()  # just after the last data
    assert data.value.tolist() == [0.2]
    # the edge node answers with a new NBIRTH (same bdSeq): a new boot, seq from 0, no event
    rebirth = host.receive(topic("NBIRTH"), nbirth(BIRTH, timestamp=T0 + 5000), clock())
    assert (only_reading(rebirth).boot, only_reading(rebirth).seq) == (T0 + 5000, 0)
    assert rebirth.events == [] and rebirth.commands == []


def test_seq_wraps_from_255_to_0_without_a_gap(host: SparkplugHost, clock: Clock) -> None:
    born(host, clock)
    events = []
    for n in range(1, 300):
        metrics = [M(alias=1, value=float(n), field="double_value")]
        out = host.receive(topic("NDATA"), ndata(n % 256, metrics, T0 + n), clock())
        events += out.events
        assert only_reading(out).seq == n  # the source's own count keeps growing
    assert events == []


def test_a_death_with_the_birth_bdseq_interrupts_node_and_devices_until_the_next_birth(
    host: SparkplugHost, clock: Clock
) -> None:
    born(host, clock, bd=3)
    host.receive(
        topic("DBIRTH", device="d1"),
        encode([M("X", 1.0, DataType.DOUBLE)], timestamp=T0 + 1, seq=1),
        clock(),
    )
    assert host.is_online(MINE, EDGE, "d1")
    stale = host.receive(topic("NDEATH"), ndeath(2), clock())
    assert stale.events == [] and host.is_online(MINE, EDGE)  # ignored, but kept and told
    assert [m.reason for m in stale.messages] == [QuarantineReason.STALE_DEATH]  # type: ignore[union-attr]
    assert [kind for kind, _ in stale.warnings] == ["NDEATH"]
    death = host.receive(topic("NDEATH"), ndeath(3), clock())
    assert [(e.source, e.cause) for e in death.events] == [
        (NODE_SOURCE, InterruptionCause.NODE_DEATH),
        (f"{NODE_SOURCE}/d1", InterruptionCause.NODE_DEATH),
    ]
    assert not host.is_online(MINE, EDGE) and not host.is_online(MINE, EDGE, "d1")
    assert death.commands == []
    node_fault, device_fault = readings(death)  # every point of node and device: 分站故障
    assert (node_fault.source, node_fault.codes) == (NODE_SOURCE, ["CH4", "FEED", "TEMP"])
    assert (device_fault.source, device_fault.codes) == (f"{NODE_SOURCE}/d1", ["X"])
    for fault in (node_fault, device_fault):
        assert (fault.status == 16).all() and (fault.value == 0.0).all() and fault.value_ok.all()
        assert (fault.time_us == clock.ms * 1000).all()  # dated when the death was seen
    assert (node_fault.boot, node_fault.seq) == (T0, 1)  # numbered after the birth
    late = host.receive(topic("NDATA"), ndata(2, [], T0 + 2), clock())
    assert [r.reason for r in refusals(late)] == [QuarantineReason.NO_BIRTH]
    again = born(host, clock, bd=4, timestamp=T0 + 9000)
    (resumed,) = again.events
    assert isinstance(resumed, DataResumed)
    assert (resumed.source, resumed.boot) == (NODE_SOURCE, T0 + 9000)


def test_devices_are_born_and_die_on_their_own(host: SparkplugHost, clock: Clock) -> None:
    born(host, clock)
    device = f"{NODE_SOURCE}/d1"
    birth = host.receive(
        topic("DBIRTH", device="d1"),
        encode([M("X", 2.5, DataType.FLOAT, alias=1)], timestamp=T0 + 1, seq=1),
        clock(),
    )
    message = only_reading(birth)
    assert (message.source, message.substation, message.boot, message.seq) == (
        device,
        EDGE,
        T0 + 1,
        0,
    )
    data = host.receive(
        topic("DDATA", device="d1"),
        encode([M(alias=1, value=3.5, field="float_value")], timestamp=T0 + 2, seq=2),
        clock(),
    )
    assert (only_reading(data).codes, only_reading(data).seq) == (["X"], 1)
    death = host.receive(topic("DDEATH", device="d1"), encode([], timestamp=T0 + 3, seq=3), clock())
    assert [(e.source, e.cause) for e in death.events] == [(device, InterruptionCause.DEVICE_DEATH)]
    late = host.receive(topic("DDATA", device="d1"), encode([], timestamp=T0 + 4, seq=4), clock())
    assert [r.reason for r in refusals(late)] == [QuarantineReason.NO_BIRTH]
    assert len(late.commands) == 1


def test_a_node_birth_ends_the_sessions_of_its_devices(host: SparkplugHost, clock: Clock) -> None:
    born(host, clock)
    host.receive(
        topic("DBIRTH", device="d1"),
        encode([M("X", 1.0, DataType.DOUBLE)], timestamp=T0 + 1, seq=1),
        clock(),
    )
    born(host, clock, timestamp=T0 + 2)
    assert not host.is_online(MINE, EDGE, "d1")


def test_an_unknown_alias_is_refused_alone_and_asks_for_a_rebirth(
    host: SparkplugHost, clock: Clock
) -> None:
    born(host, clock)
    out = host.receive(
        topic("NDATA"),
        ndata(
            1,
            [
                M(alias=99, value=1.0, field="double_value"),
                M(alias=1, value=0.5, field="double_value"),
                M(value=1.0, field="double_value"),
            ],
            T0 + 1,
        ),
        clock(),
    )
    assert [r.reason for r in refusals(out)] == [
        QuarantineReason.UNKNOWN_METRIC,
        QuarantineReason.SPARKPLUG_VIOLATION,
    ]
    assert only_reading(out).codes == ["CH4"]
    assert len(out.commands) == 1
    assert b'"alias":99' in refusals(out)[0].payload


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (encode([M("CH4", 1.0, DataType.DOUBLE)], timestamp=T0, seq=0), "bdSeq"),
        (
            nbirth(
                [M("CH4", 1.0, DataType.DOUBLE, alias=1), M("B", 1.0, DataType.DOUBLE, alias=1)]
            ),
            "alias 1",
        ),
        (nbirth([M("CH4", 1.0, DataType.DOUBLE), M("CH4", 1.0, DataType.DOUBLE)]), "twice"),
        (nbirth([M("CH4", 1.0, field="double_value")]), "datatype"),
        (nbirth([M(None, 1.0, DataType.DOUBLE)]), "no name"),
        (encode([M("bdSeq", 0, DataType.INT64)], timestamp=None, seq=0), "timestamp"),
        (encode([M("bdSeq", 0, DataType.INT64)], timestamp=T0, seq=None), "seq"),
        (encode([M("bdSeq", 0, DataType.INT64)], timestamp=T0, seq=256), "seq"),
        (encode([M("bdSeq", 300, DataType.INT64)], timestamp=T0, seq=0), "bdSeq"),
    ],
)
def test_births_that_break_the_specification_are_refused_whole(
    host: SparkplugHost, clock: Clock, payload: bytes, why: str
) -> None:
    out = host.receive(topic("NBIRTH"), payload, clock())
    (refused,) = out.messages
    assert isinstance(refused, Rejection)
    assert refused.reason is QuarantineReason.SPARKPLUG_VIOLATION and why in refused.detail
    assert not host.is_online(MINE, EDGE)


def test_topics_outside_the_contract_are_refused_and_commands_ignored(
    host: SparkplugHost, clock: Clock
) -> None:
    data = nbirth(BIRTH)
    wrong_group = host.receive(topic("NBIRTH", group="plant-7"), data, clock())
    assert [r.reason for r in refusals(wrong_group)] == [QuarantineReason.UNKNOWN_TOPIC]
    other = host.receive("minewatch/v1/x", data, clock())
    assert [r.reason for r in refusals(other)] == [QuarantineReason.UNKNOWN_TOPIC]
    for ignored in (topic("NCMD"), topic("DCMD", device="d"), "spBv1.0/STATE/scada"):
        assert host.receive(ignored, b"\xff garbage", clock()) == HostOutput()
    garbage = host.receive(topic("NDATA"), b"\xff garbage", clock())
    assert [r.reason for r in refusals(garbage)] == [QuarantineReason.MALFORMED_PROTOBUF]


def test_an_unrequested_birth_with_a_new_bdseq_reports_the_replaced_session(
    host: SparkplugHost, clock: Clock
) -> None:
    born(host, clock, bd=0)
    out = born(host, clock, bd=1, timestamp=T0 + 100)
    assert [type(e) for e in out.events] == [DataInterruption, DataResumed]
    assert out.events[0].cause is InterruptionCause.SESSION_REPLACED  # type: ignore[union-attr]


def test_a_birth_stamped_earlier_still_gets_a_larger_boot(
    host: SparkplugHost, clock: Clock
) -> None:
    born(host, clock, timestamp=T0)
    out = born(host, clock, timestamp=T0 - 60_000)  # the edge node's clock stepped back
    assert only_reading(out).boot == T0 + 1


def test_the_numbering_lets_the_gateway_drop_redeliveries_and_nothing_else(
    host: SparkplugHost, clock: Clock
) -> None:
    """Drive the writer's own dedup decision: every new message accepted, every redelivery
    (same bytes and seq, answered as an empty message with the first numbering) refused, and no
    false sequence gaps across wraps, devices and rebirths."""
    metrics = GatewayMetrics()
    limits = TimeLimits(300_000_000, 86_400_000_000)
    writer = BatchWriter("postgresql://unused", metrics, 30.0, limits)
    pending = PendingWrite()
    accepted: list[SafetyMessage] = []
    duplicates = 0

    def feed(kind: str, data: bytes, device: str | None = None) -> None:
        nonlocal duplicates
        for message in readings(host.receive(topic(kind, device=device), data, clock())):
            if writer.accepts(pending, message):
                accepted.append(message)
            else:
                duplicates += 1
                assert len(message) == 0

    birth = nbirth(BIRTH)
    feed("NBIRTH", birth)
    feed("NBIRTH", birth)  # redelivered birth
    seq = 0
    for n in range(1, 400):
        seq = n % 256
        data = ndata(seq, [M(alias=1, value=0.1, field="double_value")], T0 + n)
        feed("NDATA", data)
        if n % 50 == 0:
            feed("NDATA", data)  # redelivered
    seq += 1
    feed("DBIRTH", encode([M("X", 1.0, DataType.DOUBLE)], timestamp=T0 + 500, seq=seq), "d1")
    feed("DDATA", encode([M("X", 2.0, DataType.DOUBLE)], timestamp=T0 + 501, seq=seq + 1), "d1")
    feed("NBIRTH", nbirth(BIRTH, timestamp=T0 + 600))  # rebirth
    feed("NDATA", ndata(1, [M(alias=1, value=0.1, field="double_value")], T0 + 601))
    assert duplicates == 1 + 7
    assert len(accepted) == 1 + 399 + 2 + 2
    assert metrics.sequence_gaps._value.get() == 0
    node = [(m.boot, m.seq) for m in accepted if m.source == NODE_SOURCE]
    assert node == sorted(node) and len(set(node)) == len(node)
    assert node[-2:] == [(T0 + 600, 0), (T0 + 600, 1)]
    assert all(len(m) > 0 for m in accepted)

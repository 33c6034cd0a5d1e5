"""Births across a gateway restart, without a broker: the births the session reports are taken
back by a new session, which maps data by alias at once, asks for a rebirth (its state is
unknown), numbers above the committed watermark, and trusts nothing that had died."""

from __future__ import annotations

from minewatch.ingest.contract import SafetyMessage
from minewatch.ingest.quarantine import QuarantineReason, Rejection
from minewatch.ingest.sources.sparkplug import (
    BirthRecord,
    DataType,
    HostOutput,
    SparkplugHost,
    StoredBirth,
)
from tests.sparkplug.builders import EDGE, MINE, T0, M, encode, nbirth, ndeath, topic

NODE_SOURCE = f"{MINE}/sparkplug/{EDGE}"
BIRTH = [M("CH4", 0.30, DataType.DOUBLE, alias=1), M("TEMP", 20, DataType.INT16, alias=2)]
DEVICE = [M("X", 1.5, DataType.FLOAT, alias=7)]


def _host() -> SparkplugHost:
    return SparkplugHost(max_message_bytes=1 << 20, rebirth_retry_ms=5_000)


def _readings(out: HostOutput) -> list[SafetyMessage]:
    return [m for m in out.messages if isinstance(m, SafetyMessage)]


def _by_alias(seq: int, timestamp: int, **values: float) -> bytes:
    aliases = {"CH4": 1, "TEMP": 2}
    fields = {"CH4": "double_value", "TEMP": "int_value"}
    metrics = [M(alias=aliases[k], value=v, field=fields[k]) for k, v in values.items()]
    return encode(metrics, timestamp=timestamp, seq=seq)


def _first_life() -> tuple[SparkplugHost, list[BirthRecord]]:
    host = _host()
    births: list[BirthRecord] = []
    births += host.receive(topic("NBIRTH"), nbirth(BIRTH, bd=5), T0 + 10).births
    births += host.receive(
        topic("DBIRTH", device="d1"), encode(DEVICE, timestamp=T0 + 1, seq=1), T0 + 11
    ).births
    return host, births


def _latest(births: list[BirthRecord]) -> list[BirthRecord]:
    return list({b.source: b for b in births}.values())  # as the table keeps them: one a source


def test_births_are_reported_with_names_aliases_datatypes_bdseq_and_points() -> None:
    _, births = _first_life()
    node, device = births
    assert (node.source, node.device, node.bd_seq, node.boot, node.alive) == (
        NODE_SOURCE, None, 5, T0, True,
    )  # fmt: skip
    assert [(m.name, m.alias, m.datatype, m.point) for m in node.metrics] == [
        ("CH4", 1, DataType.DOUBLE, "CH4"),
        ("TEMP", 2, DataType.INT16, "TEMP"),
        ("bdSeq", None, DataType.INT64, None),  # protocol: no point
    ]
    assert (device.source, device.device, device.node_boot) == (f"{NODE_SOURCE}/d1", "d1", T0)
    again = BirthRecord.metrics_from_json(node.metrics_json())
    assert again == node.metrics


def test_after_a_restart_data_by_alias_is_mapped_at_once_and_a_rebirth_requested() -> None:
    _, births = _first_life()
    host = _host()
    stored = [StoredBirth(b, (b.boot, 3) if b.device is None else None) for b in births]
    assert host.restore(stored) == 2
    out = host.receive(topic("NDATA"), _by_alias(7, T0 + 5000, CH4=0.5, TEMP=21), T0 + 6000)
    (message,) = _readings(out)
    assert message.codes == ["CH4", "TEMP"] and message.value.tolist() == [0.5, 21.0]
    assert (message.boot, message.seq) == (T0, 4)  # above the committed watermark (T0, 3)
    assert len(out.commands) == 1 and out.events == []
    device = host.receive(
        topic("DDATA", device="d1"),
        encode([M(alias=7, value=2.5, field="float_value")], timestamp=T0 + 5001, seq=8),
        T0 + 6001,
    )
    (reading,) = _readings(device)
    assert (reading.source, reading.codes, reading.boot, reading.seq) == (
        f"{NODE_SOURCE}/d1", ["X"], T0 + 1, 0,
    )  # fmt: skip
    assert device.commands == []  # asked once per retry period
    # the requested rebirth ends the restored state: no more requests, no replaced session
    rebirth = host.receive(topic("NBIRTH"), nbirth(BIRTH, bd=6, timestamp=T0 + 7000), T0 + 7001)
    assert rebirth.events == [] and rebirth.commands == []
    later = host.receive(topic("NDATA"), _by_alias(1, T0 + 8000, CH4=0.6), T0 + 12_000)
    assert later.commands == [] and _readings(later)[0].boot == T0 + 7000


def test_a_restart_without_stored_births_refuses_the_same_data() -> None:
    out = _host().receive(topic("NDATA"), _by_alias(7, T0 + 5000, CH4=0.5), T0 + 6000)
    assert [m.reason for m in out.messages if isinstance(m, Rejection)] == [
        QuarantineReason.NO_BIRTH
    ]


def test_a_source_that_died_before_the_restart_is_not_trusted() -> None:
    host, births = _first_life()
    births += host.receive(topic("NDEATH"), ndeath(5), T0 + 20).births
    restored = _host()
    assert restored.restore(StoredBirth(b) for b in _latest(births)) == 0
    out = restored.receive(topic("NDATA"), _by_alias(2, T0 + 5000, CH4=0.5), T0 + 6000)
    assert [m.reason for m in out.messages if isinstance(m, Rejection)] == [
        QuarantineReason.NO_BIRTH
    ]
    assert restored.receive(topic("NDEATH"), ndeath(5), T0 + 6001).messages == []


def test_a_device_born_under_an_earlier_node_session_is_void_after_a_restart() -> None:
    host, births = _first_life()
    births += host.receive(topic("NBIRTH"), nbirth(BIRTH, bd=6, timestamp=T0 + 50), T0 + 60).births
    restored = _host()
    assert restored.restore(StoredBirth(b) for b in _latest(births)) == 1  # the node only
    assert restored.is_online(MINE, EDGE) and not restored.is_online(MINE, EDGE, "d1")


def test_the_death_of_a_restored_node_is_a_substation_fault_of_its_points() -> None:
    _, births = _first_life()
    host = _host()
    host.restore(StoredBirth(b) for b in births)
    out = host.receive(topic("NDEATH"), ndeath(5), T0 + 9000)
    assert [(m.source, m.codes) for m in _readings(out)] == [
        (NODE_SOURCE, ["CH4", "TEMP"]),
        (f"{NODE_SOURCE}/d1", ["X"]),
    ]
    assert all((m.status == 16).all() for m in _readings(out))
    assert [b.alive for b in out.births] == [False, False]

"""Metrics to readings: the values of a birth or data message resolved against the birth, the
substation-fault readings that stand for an interruption, and the empty answer to a
redelivery. Pure functions over the session state (:mod:`.nodes`)."""

from __future__ import annotations

import numpy as np
import orjson

from minewatch.codes import PointStatus
from minewatch.ingest.contract import SafetyMessage
from minewatch.ingest.quarantine import QuarantineReason, Rejection
from minewatch.ingest.sources.sparkplug.births import MetricDefinition
from minewatch.ingest.sources.sparkplug.nodes import MAX_TIME_MS, HostOutput, SourceState
from minewatch.ingest.sources.sparkplug.payload import (
    DataType,
    SparkplugMetric,
    SparkplugPayload,
    json_safe,
    metric_number,
)
from minewatch.ingest.sources.sparkplug.topic import SparkplugTopic

#: Datatypes whose values are readings (numbers, or Boolean as 1.0/0.0).
NUMERIC_TYPES = frozenset(
    {
        DataType.INT8, DataType.INT16, DataType.INT32, DataType.INT64, DataType.UINT8,
        DataType.UINT16, DataType.UINT32, DataType.UINT64, DataType.FLOAT, DataType.DOUBLE,
        DataType.BOOLEAN,
    }
)  # fmt: skip


def emit_readings(
    state: SourceState,
    topic: SparkplugTopic,
    payload: SparkplugPayload,
    default_us: int,
    out: HostOutput,
) -> tuple[int | None, bool]:
    """Readings of this message for ``state`` (plus single-metric refusals) appended to
    ``out``; returns the seq given (None: no readings) and whether a metric was unknown."""
    codes: list[str] = []
    times: list[int] = []
    values: list[float] = []
    ok: list[bool] = []
    raw: list[object] = []
    unknown = False
    for metric in payload.metrics:
        definition = _resolve(state, metric, topic, payload, out)
        if definition is None:
            unknown = True
            continue
        if definition.protocol:
            continue
        if definition.unmapped:
            why = f"metric {definition.name!r} is not in the metric map of {topic.source}"
            _refuse(metric, QuarantineReason.UNMAPPED_METRIC, why, topic, payload, out)
            continue
        if metric.timestamp_ms is not None and metric.timestamp_ms > MAX_TIME_MS:
            why = f"metric timestamp {metric.timestamp_ms} after 9999"
            _refuse(metric, QuarantineReason.SPARKPLUG_VIOLATION, why, topic, payload, out)
            continue
        datatype = definition.datatype
        number = None
        if metric.datatype in (None, datatype):
            number = metric_number(datatype, metric)
        codes.append(definition.point or definition.name)
        times.append(default_us if metric.timestamp_ms is None else metric.timestamp_ms * 1000)
        values.append(0.0 if number is None else number)
        ok.append(number is not None)
        raw.append(json_safe(metric))
    latest = max(times, default=default_us)
    state.last_data_us = max(state.last_data_us or latest, latest)
    if not codes:
        return None, unknown
    given = state.take_seq()
    out.messages.append(
        SafetyMessage(
            source=state.topic.source,
            mine=state.topic.group,
            substation=state.topic.edge_node,
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
    return given, unknown


def fault_codes(state: SourceState) -> list[str]:
    """The point codes a substation fault of ``state`` covers: every metric of its birth
    whose values are readings."""
    return [
        d.point
        for d in state.by_name.values()
        if d.point is not None and d.datatype in NUMERIC_TYPES
    ]


def fault_message(state: SourceState, time_us: int) -> SafetyMessage | None:
    """Every point of ``state`` with status 分站故障 (16) at ``time_us``, as the Modbus poller
    reports a device it cannot read (docs/modbus.md, "Faults"): the value 0.0 is a placeholder
    that nobody may read under bit 16, ``value_ok`` stays True so that the reading is stored
    and the alarm engine raises ``substation_fault``. None if the birth defined no points."""
    codes = fault_codes(state)
    if not codes:
        return None
    n = len(codes)
    return SafetyMessage(
        source=state.topic.source,
        mine=state.topic.group,
        substation=state.topic.edge_node,
        boot=state.boot,
        seq=state.take_seq(),
        time_us=np.full(n, time_us, np.int64),
        codes=codes,
        value=np.zeros(n, np.float64),
        value_ok=np.ones(n, np.bool_),
        status=np.full(n, int(PointStatus.SUBSTATION_FAULT), np.int64),
        raw_values=[None] * n,
    )


def empty_message(topic: SparkplugTopic, source: str, boot: int, seq: int) -> SafetyMessage:
    """The answer to a redelivery: no readings, the numbering given the first time."""
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


def _resolve(
    state: SourceState,
    metric: SparkplugMetric,
    topic: SparkplugTopic,
    payload: SparkplugPayload,
    out: HostOutput,
) -> MetricDefinition | None:
    if metric.alias is not None:
        definition = state.by_alias.get(metric.alias)
        what = f"alias {metric.alias}"
    elif metric.name is not None:
        definition = state.by_name.get(metric.name)
        what = f"name {metric.name!r}"
    else:
        why = "metric has neither name nor alias"
        _refuse(metric, QuarantineReason.SPARKPLUG_VIOLATION, why, topic, payload, out)
        return None
    if definition is None:
        why = f"{what} not defined by the birth"
        _refuse(metric, QuarantineReason.UNKNOWN_METRIC, why, topic, payload, out)
    return definition


def _refuse(
    metric: SparkplugMetric,
    reason: QuarantineReason,
    why: str,
    topic: SparkplugTopic,
    payload: SparkplugPayload,
    out: HostOutput,
) -> None:
    record = {
        "topic_kind": str(topic.kind),
        "seq": payload.seq,
        "timestamp_ms": payload.timestamp_ms,
        "name": metric.name,
        "alias": metric.alias,
        "datatype": metric.datatype,
        "metric_timestamp_ms": metric.timestamp_ms,
        "value": json_safe(metric),
    }
    out.messages.append(Rejection(topic.source, reason, why, orjson.dumps(record, default=str)))

"""Sparkplug B for minewatch: the payload schema and decoder, the topic namespace, and the host
session that turns edge-node messages into readings (docs/sparkplug.md), the records of births
kept across gateway restarts and the Primary Host STATE messages. No I/O here except
:mod:`.store` (the births repository); the MQTT adapter is :mod:`.adapter`, its settings
:mod:`.settings`. See README.md here."""

from minewatch.ingest.sources.sparkplug.births import BirthRecord, MetricDefinition, StoredBirth
from minewatch.ingest.sources.sparkplug.events import (
    DataInterruption,
    DataResumed,
    InterruptionCause,
    RebirthRequest,
    SourceEvent,
)
from minewatch.ingest.sources.sparkplug.host_state import HostState, parse_state
from minewatch.ingest.sources.sparkplug.nodes import HostOutput
from minewatch.ingest.sources.sparkplug.payload import (
    DataType,
    SparkplugMetric,
    SparkplugPayload,
    decode_payload,
    encode_rebirth_request,
    metric_number,
)
from minewatch.ingest.sources.sparkplug.session import SparkplugHost
from minewatch.ingest.sources.sparkplug.topic import (
    MessageType,
    SparkplugTopic,
    parse_topic,
    state_topic,
    subscription,
)

__all__ = [
    "BirthRecord",
    "DataInterruption",
    "DataResumed",
    "DataType",
    "HostOutput",
    "HostState",
    "InterruptionCause",
    "MessageType",
    "MetricDefinition",
    "RebirthRequest",
    "SourceEvent",
    "SparkplugHost",
    "SparkplugMetric",
    "SparkplugPayload",
    "SparkplugTopic",
    "StoredBirth",
    "decode_payload",
    "encode_rebirth_request",
    "metric_number",
    "parse_state",
    "parse_topic",
    "state_topic",
    "subscription",
]

"""Sparkplug B for minewatch: the payload schema and decoder, the topic namespace, and the host
session that turns edge-node messages into readings (docs/sparkplug.md). No I/O here; the MQTT
adapter is :mod:`ingest.sources.sparkplug`."""

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
    encode_rebirth_request,
    metric_number,
)
from ingest.sparkplug.session import HostOutput, SparkplugHost
from ingest.sparkplug.topic import MessageType, SparkplugTopic, parse_topic, subscription

__all__ = [
    "DataInterruption",
    "DataResumed",
    "DataType",
    "HostOutput",
    "InterruptionCause",
    "MessageType",
    "RebirthRequest",
    "SourceEvent",
    "SparkplugHost",
    "SparkplugMetric",
    "SparkplugPayload",
    "SparkplugTopic",
    "decode_payload",
    "encode_rebirth_request",
    "metric_number",
    "parse_topic",
    "subscription",
]

"""MQTT source of the personnel/video feeds: the shared :class:`MqttJsonSource` (QoS 1,
persistent session, acknowledged only once durable, reconnect with backoff) with the feeds'
own parser."""

from __future__ import annotations

from minewatch.ingest.feeds.contract import FeedMessage
from minewatch.ingest.feeds.parsing import parse_feed_message
from minewatch.ingest.sources.base import Delivery
from minewatch.ingest.sources.mqtt_json.adapter import MqttJsonSource

FeedDelivery = Delivery[FeedMessage]


def feed_source(
    url: str, client_id: str, topics: list[str], max_message_bytes: int
) -> MqttJsonSource[FeedMessage]:
    return MqttJsonSource(url, client_id, topics, max_message_bytes, parse_feed_message)

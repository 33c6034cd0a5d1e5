"""The MQTT JSON source's settings, taken from the gateway's (``MINEWATCH_GATEWAY__*``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from minewatch.settings import GatewaySettings


class MqttJsonSettings(BaseModel):
    """One persistent MQTT session on the contract's topics (docs/feeds.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    topics: tuple[str, ...] = Field(min_length=1, description="GATEWAY__TOPICS")
    client_id: str = Field(description="GATEWAY__CLIENT_ID")
    max_message_bytes: int = Field(ge=1024, description="GATEWAY__MAX_MESSAGE_BYTES")

    @classmethod
    def from_gateway(cls, gateway: GatewaySettings) -> MqttJsonSettings | None:
        """None when the topic list is empty: no MQTT JSON source."""
        if not gateway.topics:
            return None
        return cls(
            topics=tuple(gateway.topics),
            client_id=gateway.client_id,
            max_message_bytes=gateway.max_message_bytes,
        )

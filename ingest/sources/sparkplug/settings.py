"""The Sparkplug B source's settings, taken from the gateway's (``MINEWATCH_GATEWAY__*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from minewatch.settings import GatewaySettings


class SparkplugSettings(BaseModel):
    """A Primary Host Application session for the given groups (docs/sparkplug.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    groups: tuple[str, ...] = Field(min_length=1, description="GATEWAY__SPARKPLUG_GROUPS")
    client_id: str = Field(description="GATEWAY__CLIENT_ID + '-sparkplug'")
    host_id: str | None = Field(description="GATEWAY__SPARKPLUG_HOST_ID; None: the client id")
    max_message_bytes: int = Field(ge=1024, description="GATEWAY__MAX_MESSAGE_BYTES")
    map_file: Path | None = Field(None, description="GATEWAY__SPARKPLUG_MAP_FILE")

    @classmethod
    def from_gateway(cls, gateway: GatewaySettings) -> SparkplugSettings | None:
        """None when no group is configured: no Sparkplug source."""
        if not gateway.sparkplug_groups:
            return None
        return cls(
            groups=tuple(gateway.sparkplug_groups),
            client_id=f"{gateway.client_id}-sparkplug",
            host_id=gateway.sparkplug_host_id,
            max_message_bytes=gateway.max_message_bytes,
            map_file=gateway.sparkplug_map_file,
        )

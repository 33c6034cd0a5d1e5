"""The national-file drop folder's settings, taken from the gateway's (``MINEWATCH_GATEWAY__*``).

How files are judged is :class:`~minewatch.ingest.sources.national.inbox.InboxConfig`: its
age limit comes from here, the rest (grace period, late flag, share of bad records...) are its
defaults.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from minewatch.ingest.national_file_publisher import largest_file_sent_up
from minewatch.ingest.sources.national.inbox import InboxConfig
from minewatch.settings import GatewaySettings


class NationalFileSettings(BaseModel):
    """The drop folder's root (``inbox/``, ``done/``, ``rejected/`` under it) and its scan."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    root: Path = Field(description="GATEWAY__FILES_ROOT")
    scan_s: float = Field(gt=0, description="GATEWAY__FILES_SCAN_S")
    max_age_s: float | None = Field(gt=0, description="GATEWAY__FILES_MAX_AGE_S")
    max_sent_up_bytes: int | None = Field(
        None, description="from GATEWAY__FILES_UP_MESSAGE_BYTES where files go up"
    )

    def inbox(self) -> InboxConfig:
        return InboxConfig(max_age_s=self.max_age_s, max_sent_up_bytes=self.max_sent_up_bytes)

    @classmethod
    def from_gateway(cls, gateway: GatewaySettings) -> NationalFileSettings | None:
        """None when no drop folder is configured."""
        if gateway.files_root is None:
            return None
        up = gateway.installation is not None  # accepted files are kept and sent up
        return cls(
            root=gateway.files_root,
            scan_s=gateway.files_scan_s,
            max_age_s=gateway.files_max_age_s,
            max_sent_up_bytes=largest_file_sent_up(gateway.files_up_message_bytes) if up else None,
        )

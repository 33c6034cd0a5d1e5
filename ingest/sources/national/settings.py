"""The national-file drop folder's settings, taken from the gateway's (``MINEWATCH_GATEWAY__*``).

How files are judged is :class:`~minewatch.ingest.sources.national.inbox.InboxConfig`: its
age limit comes from here, the rest (grace period, late flag, share of bad records...) are its
defaults.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from minewatch.ingest.sources.national.inbox import InboxConfig
from minewatch.settings import GatewaySettings


class NationalFileSettings(BaseModel):
    """The drop folder's root (``inbox/``, ``done/``, ``rejected/`` under it) and its scan."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    root: Path = Field(description="GATEWAY__FILES_ROOT")
    scan_s: float = Field(gt=0, description="GATEWAY__FILES_SCAN_S")
    max_age_s: float | None = Field(gt=0, description="GATEWAY__FILES_MAX_AGE_S")

    def inbox(self) -> InboxConfig:
        return InboxConfig(max_age_s=self.max_age_s)

    @classmethod
    def from_gateway(cls, gateway: GatewaySettings) -> NationalFileSettings | None:
        """None when no drop folder is configured."""
        if gateway.files_root is None:
            return None
        return cls(
            root=gateway.files_root,
            scan_s=gateway.files_scan_s,
            max_age_s=gateway.files_max_age_s,
        )

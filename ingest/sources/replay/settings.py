"""The trace replay's settings: what ``minewatch replay`` passes (it has no gateway setting:
a replay is started by that command with its own gateway, never configured)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ReplaySettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    speed: float | None = Field(
        None, gt=0, description="Times real time; None: as fast as the pipeline takes it."
    )
    rebase_to_us: int | None = Field(
        None, description="Shift every time so that the trace starts here; None: as recorded."
    )
    message_readings: int = Field(5_000, ge=1, description="Readings per contract message.")

"""The Modbus TCP source's settings, taken from the gateway's (``MINEWATCH_GATEWAY__*``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from minewatch.settings import GatewaySettings

#: The longest deadline of one device's cycle, whatever the cycle.
MAX_TIMEOUT_S = 5.0


class ModbusSettings(BaseModel):
    """A register map to poll every ``cycle_s``, and the spool that keeps what was polled."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    map_file: Path = Field(description="GATEWAY__MODBUS_MAP_FILE (TOML, docs/modbus.md)")
    cycle_s: float = Field(gt=0, le=30, description="GATEWAY__MODBUS_CYCLE_S")
    spool_dir: Path = Field(description="GATEWAY__MODBUS_SPOOL_DIR")

    @property
    def timeout_s(self) -> float:
        """One device's deadline per cycle: 80 % of the cycle, at most :data:`MAX_TIMEOUT_S`."""
        return min(self.cycle_s * 0.8, MAX_TIMEOUT_S)

    @classmethod
    def from_gateway(cls, gateway: GatewaySettings) -> ModbusSettings | None:
        """None when no register map is configured: no Modbus polling."""
        if gateway.modbus_map_file is None:
            return None
        return cls(
            map_file=gateway.modbus_map_file,
            cycle_s=gateway.modbus_cycle_s,
            spool_dir=gateway.modbus_spool_dir,
        )

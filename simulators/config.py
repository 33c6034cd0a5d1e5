"""The simulator's mine description: a TOML file validated with pydantic (docs/simulator.md)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from minewatch.metadata import MineInfo


class SensorTemplate(BaseModel):
    """How one kind of sensor is defined (thresholds are data) and how it behaves."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    sensor_type: str = Field(pattern=r"^[0-9]{4}$")
    unit: str = ""
    tag: str = ""
    location: str = ""
    range: tuple[float, float] | None = None
    alarm_high: float | None = None
    alarm_high_clear: float | None = None
    poweroff_high: float | None = None
    restore_high: float | None = None
    alarm_low: float | None = None
    alarm_low_clear: float | None = None
    desc_on: str = ""
    desc_off: str = ""
    baseline: float = 0.0
    noise: float = 0.0
    resolution: float = 0.01
    cuts_power_of: str | None = Field(
        None,
        description="Template name of the feed sensor on the same substation that this "
        "point's power-off threshold cuts (a D relation).",
    )


class SubstationConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    code: str = Field(pattern=r"^[0-9A-Za-z]{1,8}$")
    location: str
    sensors: list[str] = Field(description="Template names, one point each.")


class ScenarioConfig(BaseModel):
    """An injected event, labelled as ground truth."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["methane_exceedance"]
    substation: str
    sensor: str = Field(description="Template name of the point on that substation.")
    start_s: float = Field(ge=0)
    duration_s: float = Field(gt=0)
    peak: float


class SimulationConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    seed: int = 1
    cycle_s: float = Field(1.0, gt=0, le=30, description="Polling cycle (AQ 6201: <= 30 s).")
    ar_coefficient: float = Field(0.9, ge=0, lt=1, description="Noise persistence per cycle.")


class MineConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    mine: MineInfo
    simulation: SimulationConfig = Field(default_factory=SimulationConfig)
    templates: dict[str, SensorTemplate]
    substations: list[SubstationConfig]
    scenarios: list[ScenarioConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> MineConfig:
        stations = {s.code: s for s in self.substations}
        for station in self.substations:
            for name in station.sensors:
                if name not in self.templates:
                    raise ValueError(f"substation {station.code}: unknown template {name!r}")
        for scenario in self.scenarios:
            station = stations.get(scenario.substation)
            if station is None or scenario.sensor not in station.sensors:
                raise ValueError(
                    f"scenario on {scenario.substation}/{scenario.sensor}: no such point"
                )
        return self


def load_mine_config(path: Path) -> MineConfig:
    with open(path, "rb") as handle:
        return MineConfig.model_validate(tomllib.load(handle))


def example_mine_path(name: str = "small") -> Path:
    return Path(__file__).parent / "mines" / f"{name}.toml"

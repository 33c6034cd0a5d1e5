"""The simulator's mine description: a TOML file validated with pydantic (docs/simulator.md).

A mine is its identity (code, gas class, approved capacity), its substations with the sensors
placed on them (each sensor made from a template that carries the thresholds and behaviour),
the working faces and headings whose production cycle drives methane emission, the roadways
that carry air (and gas) from one sensor to the next with a transport delay, and a schedule of
injected scenarios (explicit, or drawn at random at a chosen rate from the seed).

Points are referred to as ``"<substation>/<template>"``; ``"005/CO#2"`` is the second point
made from template ``CO`` on substation 005.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path
from typing import Literal, get_args

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from minewatch.codes import METHANE_SENSOR_TYPES, SENSOR_TYPES
from minewatch.metadata import MineInfo
from minewatch.simulators.feed_config import (
    CommsConfig,
    FeedScenarioConfig,
    OutputConfig,
    PersonnelConfig,
    RandomFeedScenarios,
    VideoConfig,
)

ScenarioKind = Literal[
    "methane_exceedance",  # real gas above the alarm / power-off level
    "methane_accumulation",  # slow rise (poor ventilation, goaf gas)
    "outburst",  # fast rise to a high level, exponential decay
    "over_range",  # gas above the sensor's range: status bit 8
    "power_off_failure",  # gas above the power-off level, the feed stays 1 (馈电异常)
    "fan_stop",  # a local fan stops: gas accumulates downstream, 风电闭锁 cuts power
    "calibration",  # standard gas, declared in advance: status bit 4 + a declaration record
    "undeclared_calibration",  # the same test gas, not declared, no status bit
    "disconnection",  # 断线: status 128 and the range bottom, or no readings
    "negative_drift",  # 负漂: the zero drifts below the range bottom
    "stuck",  # flat line: the same reading over and over
    "interference",  # single-sample spikes (electromagnetic interference)
    "substation_comm_loss",  # 分站通信中断: no messages from a substation, or status 16
    "vehicle_co",  # 胶轮车 exhaust: a short CO rise moving along a roadway
    "co_fire",  # a smouldering fire (e.g. a belt): CO rising slowly for tens of minutes
    "sensor_drift",  # a catalytic sensor losing sensitivity: reads a fraction of the gas
    "sensor_stuck",  # a sensor holding its reading while the gas upstream swings by ``peak``
    "sensor_local_excursion",  # a local fault reading ``peak`` above the gas, no air change
    "cutting_accumulation",  # the shearer restarts: the face's emission rises, decays at stop
]
SCENARIO_KINDS: tuple[str, ...] = get_args(ScenarioKind)

#: Kinds that change the air itself (carried downstream); the others act on a sensor.
ATMOSPHERE_KINDS = frozenset(
    {"methane_exceedance", "methane_accumulation", "outburst", "over_range",
     "power_off_failure", "fan_stop", "cutting_accumulation"}
)  # fmt: skip
METHANE_KINDS = ATMOSPHERE_KINDS - {"fan_stop"} | {"calibration", "undeclared_calibration"}

FAN_SENSOR_TYPES = frozenset({"1001", "1010"})
CO_SENSOR_TYPE = "0004"


#: Personnel area code suffixes (area code = mine code + 4 digits): the shaft, the main
#: roadway, the restricted area, then one area per working from FIRST_WORKING on.
SHAFT, ROADWAY, RESTRICTED, FIRST_WORKING = 1, 2, 3, 101
#: One area per belt or transport roadway whose substations are in no working, from
#: FIRST_HAULAGE on (its CO, smoke and temperature points share it: the fire fusion's join,
#: and the vehicle cards of its roadway). Workings number below it.
FIRST_HAULAGE = 901
SMOKE_SENSOR_TYPE = "1008"
TEMPERATURE_SENSOR_TYPE = "0003"


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
    off_delay_s: float | None = Field(
        None, ge=0, description="Off-delay of the point's threshold alarms (anti-chatter)."
    )
    alarm_state: Literal[0, 1] | None = Field(
        None, description="Switch sensors: the value that is abnormal (fan 0 = 停, smoke 1 = 有)."
    )
    baseline: float = Field(0.0, description="Typical reading while coal is being cut.")
    noise: float = Field(0.0, ge=0, description="Measurement noise (std, AR(1) in time).")
    resolution: float = Field(0.01, gt=0)
    production_share: float = Field(
        0.0, ge=0, le=1, description="Part of the local level that follows the production cycle."
    )
    variability: float = Field(
        0.0, ge=0, lt=1, description="Slow relative fluctuation of the local level (std)."
    )
    accuracy: float | None = Field(
        None,
        gt=0,
        description="Stated error (absolute) near the alarm level; None: AQ 6203 for methane "
        "(±0.10 up to 1 %, ±10 % of the reading up to 3 %, ±0.30 above).",
    )
    cuts_power_of: str | None = Field(
        None,
        description="Template name of the feed sensor on the same substation that this "
        "point's power-off threshold cuts (a D relation).",
    )
    shearer: bool = Field(
        False,
        description="A switch point (设备开停, 1004) showing its working's cutting state "
        "(采煤机 / 掘进机 开停): 1 while the production cycle cuts, 0 otherwise; "
        "cutting_accumulation scenarios of its substation stop and restart it.",
    )

    @model_validator(mode="after")
    def _check(self) -> SensorTemplate:
        if self.sensor_type not in SENSOR_TYPES:
            raise ValueError(f"unknown sensor type {self.sensor_type}")
        if self.range is not None and self.range[0] >= self.range[1]:
            raise ValueError("range must be (low, high) with low < high")
        return self

    @property
    def is_methane(self) -> bool:
        return self.sensor_type in METHANE_SENSOR_TYPES

    @property
    def is_analog(self) -> bool:
        return self.sensor_type.startswith("0")


class SubstationConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    code: str = Field(pattern=r"^[0-9A-Za-z]{1,8}$")
    location: str
    sensors: list[str] = Field(description="Template names, one point each.")


class WorkingConfig(BaseModel):
    """A working face (采煤工作面) or heading (掘进工作面): its points follow its production."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    kind: Literal["longwall", "heading"]
    substations: list[str] = Field(min_length=1)


class RoadwayConfig(BaseModel):
    """Points along one airway, in the direction of the air.

    Each methane point carries ``share`` of the methane level of the previous methane point
    on the roadway, ``delays_s`` later (cumulative from the first point), smeared over
    ``dispersion`` x that delay. Other points (wind, fans, CO, temperature) are placed on the
    roadway for fan stops and vehicle passages; their levels are not carried.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str
    kind: Literal["face", "heading", "return", "intake", "belt", "transport"] = "return"
    points: list[str] = Field(min_length=2)
    delays_s: list[float]
    share: float = Field(0.5, ge=0, le=1)
    dispersion: float = Field(0.2, ge=0, le=2)
    air_speed_m_s: float = Field(1.5, gt=0, description="Positions = delays x air speed.")

    @model_validator(mode="after")
    def _check(self) -> RoadwayConfig:
        if len(self.delays_s) != len(self.points):
            raise ValueError(f"roadway {self.name}: one delay per point")
        if self.delays_s[0] != 0 or any(
            b < a for a, b in zip(self.delays_s, self.delays_s[1:], strict=False)
        ):
            raise ValueError(f"roadway {self.name}: delays start at 0 and never decrease")
        return self


class ScenarioConfig(BaseModel):
    """An injected event, labelled as ground truth (fields per kind in docs/simulator.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: ScenarioKind
    substation: str | None = None
    sensor: str | None = Field(None, description="Template name (optionally #n) on it.")
    roadway: str | None = Field(None, description="vehicle_co: the roadway driven along.")
    start_s: float = Field(ge=0)
    duration_s: float = Field(gt=0)
    peak: float | None = Field(None, description="Level reached (kind-specific, see docs).")
    mode: Literal["status", "silent"] = "status"
    count: int = Field(3, ge=1, description="interference: number of spikes.")
    speed_m_s: float = Field(4.0, gt=0, description="vehicle_co: vehicle speed.")
    against_air: bool = Field(False, description="vehicle_co: drives against the airflow.")
    declared_lead_s: float = Field(3600.0, ge=0, description="calibration: declared before.")
    tau_s: float = Field(
        300.0,
        gt=0,
        description="fan_stop: gas accumulation time constant; cutting_accumulation: the "
        "emission's response time to the shearer's start and stop.",
    )
    temperature_rise: float = Field(
        4.0, ge=0, description="co_fire: °C the substation's temperature points gain at the peak."
    )

    @model_validator(mode="after")
    def _check(self) -> ScenarioConfig:
        if self.kind == "vehicle_co":
            if self.roadway is None:
                raise ValueError("vehicle_co needs a roadway")
        elif self.substation is None:
            raise ValueError(f"{self.kind} needs a substation")
        elif self.kind != "substation_comm_loss" and self.sensor is None:
            raise ValueError(f"{self.kind} needs a sensor")
        if self.peak is None and self.kind not in (
            "disconnection", "stuck", "substation_comm_loss"
        ):  # fmt: skip
            raise ValueError(f"{self.kind} needs a peak")
        return self

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


class RandomScenarios(BaseModel):
    """Scenarios drawn from the seed: Poisson arrivals at ``rate_per_hour`` over the mine."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    rate_per_hour: float = Field(0.0, ge=0)
    horizon_s: float = Field(86400.0, gt=0, description="Scenarios are drawn up to here.")
    start_after_s: float = Field(60.0, ge=0)
    kinds: list[ScenarioKind] = Field(default_factory=lambda: list(get_args(ScenarioKind)))
    per_day: dict[ScenarioKind, float] = Field(
        default_factory=dict,
        description="Expected events per day by kind; when given, replaces rate_per_hour "
        "and kinds (one Poisson process per kind).",
    )
    cutting_tau_s: tuple[float, float] = Field(
        (300.0, 900.0),
        description="cutting_accumulation: the range its tau_s is drawn from (s).",
    )
    flicker_share: float = Field(
        0.0,
        ge=0,
        le=1,
        description="per_day: share of disconnections that are flickers "
        "(5-60 s, status mode) rather than 30 s-30 min outages.",
    )


class ProductionConfig(BaseModel):
    """三八制: three 8-hour shifts; cutting shifts and a maintenance (检修) shift."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    shift_hours: float = Field(8.0, gt=0)
    first_shift_start_h: float = Field(0.0, ge=0, lt=24, description="Clock hour of shift 0.")
    cutting_shifts: list[int] = Field(default_factory=lambda: [1, 2])
    maintenance_level: float = Field(0.5, ge=0, le=1, description="Emission without cutting.")
    handover_s: float = Field(1800.0, ge=0, description="No cutting at shift start and end.")
    ramp_s: float = Field(600.0, gt=0)
    shearer_pass_s: float = Field(2400.0, gt=0, description="Longwall: one shearer pass.")
    heading_cycle_s: float = Field(1200.0, gt=0, description="Heading: cut-and-bolt cycle.")
    amplitude: float = Field(0.25, ge=0, le=1, description="Emission swing over a pass.")


class SimulationConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    seed: int = 1
    cycle_s: float = Field(1.0, gt=0, le=30, description="Polling cycle (AQ 6201: <= 30 s).")
    ar_coefficient: float = Field(0.9, ge=0, lt=1, description="Noise persistence per cycle.")
    start: AwareDatetime = Field(
        dt.datetime(2024, 3, 1, 8, tzinfo=dt.timezone(dt.timedelta(hours=8))),
        description="Clock time of offset 0: places the shifts; trace timestamps.",
    )
    variability_tau_s: float = Field(600.0, gt=0)
    report_alarm_bits: bool = Field(
        False, description="Set status bits 1 (报警) and 2 (断电) as a substation would."
    )
    interruption_after_s: float = Field(
        30.0,
        gt=0,
        description="Silence after which the mine's definitions say a point's data is "
        "interrupted (数据中断): written into every point as interruption_cycles.",
    )
    co_puff_max_s: float = Field(
        180.0,
        gt=0,
        description="Written into every CO point on a belt or transport roadway (vehicles "
        "pass there): a CO alarm ending within it is a suspected exhaust puff.",
    )
    cross_check_s: float | None = Field(
        None,
        gt=0,
        description="Written into every methane point as cross_check_s (how long it must read "
        "far below its airflow neighbours); None: the engine's default (1800 s).",
    )
    control_time_s: float = Field(
        2.0,
        gt=0,
        description="Time a feed may take to drop after a cut (CH4 断电: 2 s), written into "
        "every point's definition (馈电异常 after it).",
    )


class MineConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    mine: MineInfo
    simulation: SimulationConfig = Field(default_factory=SimulationConfig)
    production: ProductionConfig = Field(default_factory=ProductionConfig)
    templates: dict[str, SensorTemplate]
    substations: list[SubstationConfig]
    workings: list[WorkingConfig] = Field(default_factory=list)
    roadways: list[RoadwayConfig] = Field(default_factory=list)
    scenarios: list[ScenarioConfig] = Field(default_factory=list)
    random_scenarios: RandomScenarios = Field(default_factory=RandomScenarios)
    personnel: PersonnelConfig = Field(default_factory=PersonnelConfig)
    video: VideoConfig = Field(default_factory=VideoConfig)
    comms: CommsConfig = Field(default_factory=CommsConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    feed_scenarios: list[FeedScenarioConfig] = Field(default_factory=list)
    random_feed_scenarios: RandomFeedScenarios = Field(default_factory=RandomFeedScenarios)
    _refs: dict[str, int] = PrivateAttr(default_factory=dict)
    _refs_of: object = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _check(self) -> MineConfig:
        stations = {s.code: s for s in self.substations}
        if len(stations) != len(self.substations):
            raise ValueError("substation codes must be unique")
        for station in self.substations:
            for name in station.sensors:
                if name not in self.templates:
                    raise ValueError(f"substation {station.code}: unknown template {name!r}")
        for working in self.workings:
            for code in working.substations:
                if code not in stations:
                    raise ValueError(f"working {working.name}: unknown substation {code}")
        roadways = {r.name for r in self.roadways}
        if len(roadways) != len(self.roadways):
            raise ValueError("roadway names must be unique")
        for roadway in self.roadways:
            for ref in roadway.points:
                self.resolve(ref)
        for scenario in self.scenarios:
            self._check_scenario(scenario, roadways)
        names = {w.name for w in self.workings}
        for feed in self.feed_scenarios:
            if feed.working is not None and feed.working not in names:
                raise ValueError(f"feed scenario {feed.kind}: no working {feed.working!r}")
        return self

    def _check_scenario(self, scenario: ScenarioConfig, roadways: set[str]) -> None:
        where = f"scenario {scenario.kind} at {scenario.start_s}s"
        if scenario.kind == "vehicle_co":
            if scenario.roadway not in roadways:
                raise ValueError(f"{where}: no roadway {scenario.roadway!r}")
            return
        if scenario.kind == "substation_comm_loss":
            if scenario.substation not in {s.code for s in self.substations}:
                raise ValueError(f"{where}: no substation {scenario.substation}")
            return
        try:
            self.resolve(f"{scenario.substation}/{scenario.sensor}")
        except ValueError:
            raise ValueError(
                f"scenario on {scenario.substation}/{scenario.sensor}: no such point"
            ) from None
        template = self.templates[(scenario.sensor or "").split("#")[0]]
        if scenario.kind in METHANE_KINDS and not template.is_methane:
            raise ValueError(f"{where}: {scenario.sensor} is not a methane sensor")
        if scenario.kind == "co_fire" and template.sensor_type != CO_SENSOR_TYPE:
            raise ValueError(f"{where}: {scenario.sensor} is not a CO sensor")
        if scenario.kind in ("sensor_stuck", "sensor_local_excursion") and not (
            template.is_methane
        ):
            raise ValueError(f"{where}: {scenario.sensor} is not a methane sensor")
        if scenario.kind == "sensor_drift" and not template.is_methane:
            raise ValueError(f"{where}: {scenario.sensor} is not a methane sensor")
        if scenario.kind == "fan_stop" and template.sensor_type not in FAN_SENSOR_TYPES:
            raise ValueError(f"{where}: {scenario.sensor} is not a fan")
        if scenario.kind == "cutting_accumulation" and not any(
            self.templates[name].shearer
            for s in self.substations
            if s.code == scenario.substation
            for name in s.sensors
        ):
            raise ValueError(f"{where}: substation {scenario.substation} has no shearer point")
        if scenario.kind == "power_off_failure" and template.cuts_power_of is None:
            raise ValueError(f"{where}: {scenario.sensor} cuts no feed (no D relation)")
        if scenario.kind in ("disconnection", "stuck", "negative_drift", "interference") and (
            not template.is_analog
        ):
            raise ValueError(f"{where}: {scenario.sensor} is not an analog sensor")
        high = template.range[1] if template.range else None
        if scenario.kind == "over_range" and (high is None or (scenario.peak or 0) <= high):
            raise ValueError(f"{where}: peak must be above the range {template.range}")
        peak = scenario.peak
        if scenario.kind == "methane_exceedance" and high is not None and (peak or 0) > high:
            raise ValueError(f"{where}: peak above the range: use over_range or outburst")

    def haulage_roadways(self) -> list[RoadwayConfig]:
        """The belt and transport roadways (where vehicles and belts run) with a point on a
        substation outside the workings: each is a personnel area of its own
        (:data:`FIRST_HAULAGE` + its index here)."""
        in_working = {code for w in self.workings for code in w.substations}
        return [r for r in self.roadways if r.kind in ("belt", "transport")
                and any(ref.split("/")[0] not in in_working for ref in r.points)]  # fmt: skip

    def area_suffixes(self) -> dict[str, int]:
        """Substation code -> its personnel area's suffix: a working's substations are in the
        working's area (FIRST_WORKING + i), the other substations of a belt or transport
        roadway in the roadway's (FIRST_HAULAGE + j, the first such roadway they are on);
        other substations are in no area."""
        if FIRST_WORKING + len(self.workings) > FIRST_HAULAGE:
            raise ValueError(f"more than {FIRST_HAULAGE - FIRST_WORKING} workings")
        out = {code: FIRST_WORKING + i for i, w in enumerate(self.workings)
               for code in w.substations}  # fmt: skip
        for j, roadway in enumerate(self.haulage_roadways()):
            for ref in roadway.points:
                out.setdefault(ref.split("/")[0], FIRST_HAULAGE + j)
        return out

    def resolve(self, ref: str) -> int:
        """Point index of ``"<substation>/<template>[#n]"`` (n counts from 1)."""
        if self._refs_of is not self.substations:  # built once per substation list
            refs: dict[str, int] = {}
            index = 0
            for s in self.substations:
                seen: dict[str, int] = {}
                for sensor in s.sensors:
                    seen[sensor] = seen.get(sensor, 0) + 1
                    refs[f"{s.code}/{sensor}#{seen[sensor]}"] = index
                    index += 1
            self._refs = refs
            self._refs_of = self.substations
        name = ref if "#" in ref else f"{ref}#1"
        try:
            return self._refs[name]
        except KeyError:
            raise ValueError(f"no point {ref!r}") from None


def load_mine_config(path: Path) -> MineConfig:
    with open(path, "rb") as handle:
        return MineConfig.model_validate(tomllib.load(handle))


def example_mine_path(name: str = "small") -> Path:
    return Path(__file__).parent / "mines" / f"{name}.toml"

"""The mine description's sections for the other systems of a mine: personnel positioning
(人员定位), video (视频), the belt scale (产量) and communications (通信联络), and their labelled
scenarios
(docs/simulator.md, "Personnel, video and output").

Every mine has these systems with the defaults below; the sections only change them.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

FeedScenarioKind = Literal[
    "area_overcrowding",  # 区域超员: a support crew in a face area, above its 核定人数
    "mine_overcrowding",  # 矿井超员: a crew underground, above the mine's quota
    "overtime",  # 超时: a worker stays on beyond max_underground_h
    "restricted_area",  # 限制区域: a worker walks into the restricted area and out again
    "leader_absent",  # 带班空岗: the shift's leader surfaces early (or never goes down)
    "sos",  # 求救: a card calls for help
    "output_month",  # 月超产: the belt runs above plan; the month goes over its limit
    "camera_offline",  # a camera stops sending (during a gas label of its area: see docs)
]
FEED_SCENARIO_KINDS: tuple[str, ...] = get_args(FeedScenarioKind)
PERSONNEL_KINDS = frozenset(FEED_SCENARIO_KINDS) - {"output_month", "camera_offline"}


class PersonnelConfig(BaseModel):
    """The positioning system: areas (shaft, main roadway, one key area per working, one
    restricted area), crews per working and shift (三八制, the production shifts), limits."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    cycle_s: int = Field(30, ge=1, le=60, description="Positioning cycle; divides 60.")
    workers_per_working: int = Field(4, ge=1, description="Per working and shift.")
    longwall_approved: int = Field(25, ge=1, description="核定人数 of a longwall (2019: 25).")
    heading_approved: int = Field(18, ge=1, description="核定人数 of a heading (2019: 18).")
    max_underground_h: float = Field(10.0, gt=0, description="Overtime limit (mine's own).")
    max_people: int | None = Field(
        None,
        ge=1,
        description="Mine quota; None: 2 x (crew + leader) + the largest area "
        "quota + 10, above any count without an overcrowding scenario.",
    )

    @model_validator(mode="after")
    def _check(self) -> PersonnelConfig:
        if 60 % self.cycle_s:
            raise ValueError("personnel.cycle_s must divide 60")
        return self


class VideoConfig(BaseModel):
    """One camera per working (its key area) and one at the shaft."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    heartbeat_s: int = Field(30, ge=1)
    heartbeat_timeout_s: float = Field(90.0, gt=0)
    events_per_camera_hour: float = Field(0.5, ge=0, description="AI analytic events.")


class OutputConfig(BaseModel):
    """A belt scale (皮带秤, 3001): cumulative tonnes, produced in the cutting shifts at a
    rate that makes a month's output approved capacity / 12 on average."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    cycle_s: int = Field(300, ge=1)
    month_share: float = Field(
        0.10,
        gt=0,
        description="Monthly limit as a share of the approved annual capacity "
        "(重大事故隐患判定标准: 10 %, the output_month rule's default).",
    )
    wrap_at_t: float = Field(1_000_000.0, gt=0, description="The counter's rollover.")
    noise: float = Field(0.2, ge=0, lt=1, description="Relative spread per cycle (uniform).")


class CommsScenarioConfig(BaseModel):
    """A labelled scenario of the communications system: ``device_offline`` (the device stops
    reporting: it times out) or ``device_fault`` (it reports ``fault`` while online)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["device_offline", "device_fault"]
    device: int = Field(1, ge=1, description="The device's number (its code's last digits).")
    start_s: float = Field(ge=0, description="Seconds from simulation.start.")
    duration_s: float = Field(gt=0)
    fault: str = Field("电源故障", min_length=1, max_length=200)

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


class CommsConfig(BaseModel):
    """The communications system (通信联络): per working an underground base station and a
    dispatch phone, and at the shaft a base station, the dispatch room's phone and the
    broadcast (docs/simulator.md, "Communications")."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    heartbeat_s: int = Field(30, ge=1, description="Every device reports this often.")
    heartbeat_timeout_s: float = Field(90.0, gt=0)
    scenarios: list[CommsScenarioConfig] = Field(default_factory=list)


class FeedScenarioConfig(BaseModel):
    """A labelled scenario of the personnel, video or output feed (docs/simulator.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: FeedScenarioKind
    start_s: float = Field(description="Seconds from simulation.start (output_month: may be "
                           "negative, back to the start of the month).")  # fmt: skip
    duration_s: float = Field(gt=0)
    working: str | None = Field(None, description="area_overcrowding, camera_offline: the "
                                "working whose area / camera; None: drawn.")  # fmt: skip
    person: int | None = Field(None, ge=1, description="overtime, restricted_area, sos: the "
                               "card's number (last 5 digits); None: drawn.")  # fmt: skip
    extra: int = Field(3, ge=1, description="overcrowding: people above the quota.")
    factor: float = Field(1.5, gt=0, description="output_month: production x factor.")

    @model_validator(mode="after")
    def _check(self) -> FeedScenarioConfig:
        if self.start_s < 0 and self.kind != "output_month":
            raise ValueError(f"{self.kind}: start_s must be >= 0")
        return self

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


class RandomFeedScenarios(BaseModel):
    """Feed scenarios drawn from the seed, ``per_day`` by kind (Poisson)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    per_day: dict[FeedScenarioKind, float] = Field(default_factory=dict)
    horizon_s: float = Field(86400.0, gt=0)
    start_after_s: float = Field(600.0, ge=0)

"""``minewatch evaluate`` scores pre-alarms (issue 17) on a short simulated trace: per exceedance
event, before the alarm or not and the lead; false ones per sensor-week; the baselines in the
same run; outbursts apart. And where the replay's batches are cut changes no pre-alarm."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from minewatch.alarms.evaluation.run import replay, run_evaluate
from minewatch.alarms.prealarms import PrealarmParams
from minewatch.simulators.config import MineConfig, example_mine_path, load_mine_config
from minewatch.simulators.model import SimulatedMine
from minewatch.simulators.trace import record
from minewatch.trace import Trace

CYCLES = 2400  # 40 minutes at 1 s
PARAMS = PrealarmParams(horizon_s=900, tau_s=60, slow_tau_s=300, z=3, confirm=60)
SCENARIOS: list[dict[str, Any]] = [
    {"kind": "methane_accumulation", "substation": "003", "sensor": "CH4_HT1", "start_s": 300,
     "duration_s": 1800, "peak": 1.3},
    {"kind": "interference", "substation": "001", "sensor": "CH4_T2", "start_s": 600,
     "duration_s": 300, "peak": 3.0, "count": 3},
    {"kind": "outburst", "substation": "002", "sensor": "CH4_T1", "start_s": 1200,
     "duration_s": 300, "peak": 5.0},
    {"kind": "calibration", "substation": "004", "sensor": "CH4_HT2", "start_s": 1500,
     "duration_s": 360, "peak": 2.0, "declared_lead_s": 600},
]  # fmt: skip


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = load_mine_config(example_mine_path("small")).model_dump(mode="json")
    data["scenarios"] = SCENARIOS
    data["random_scenarios"] = {"rate_per_hour": 0.0}
    path = tmp_path_factory.mktemp("prealarm") / "small.trace"
    record(SimulatedMine(MineConfig.model_validate(data)), path, CYCLES)
    return path


def test_evaluate_reports_pre_alarms_per_exceedance_with_the_baselines(
    trace: Path, tmp_path: Path
) -> None:
    out = tmp_path / "report.json"
    report = run_evaluate(trace, batch_cycles=60, json_out=out, python_cycles=0, prealarm=PARAMS)
    pre = report["prealarms"]
    assert isinstance(pre, dict)
    mine, linear, persistence = pre["minewatch"], pre["linear"], pre["persistence"]
    accumulation = mine["categories"]["accumulation"]
    assert accumulation["events"] >= 1
    assert accumulation["prealarmed"] == accumulation["events"]
    assert accumulation["lead_mean_s"] >= 120
    assert mine["categories"]["outburst"]["events"] >= 1  # reported apart, not a miss
    assert mine["false"] == 0  # spikes and a declared calibration give no pre-alarm
    assert persistence["categories"]["accumulation"]["prealarmed"] == 0  # lead 0 by design
    assert linear["prealarms"] > mine["prealarms"]
    assert mine["sensor_weeks"] == pytest.approx(mine["sensors"] * CYCLES / (7 * 86400))
    events = [e for e in mine["events"] if e["category"] == "accumulation"]
    assert all(e["prealarmed"] and e["lead_s"] > 0 for e in events)

    def no_constant(name: str) -> None:
        raise AssertionError(f"bare {name} in the JSON")

    written = json.loads(out.read_text("utf-8"), parse_constant=no_constant)
    assert written["prealarms"]["params"]["horizon_s"] == 900


def test_the_pre_alarms_do_not_depend_on_where_the_replay_batches_are_cut(trace: Path) -> None:
    runs = [replay(Trace(trace), batch_cycles=k, python_cycles=0, prealarm=PARAMS)
            for k in (7, 60)]  # fmt: skip
    one, sixty = ([(e.point, e.raised_us, e.cleared_us) for e in r.prealarms] for r in runs)
    assert one and one == sixty

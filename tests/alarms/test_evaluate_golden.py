"""``minewatch evaluate`` on a small trace with every scenario kind, against golden figures.

The trace is generated here, deterministically, from the small example mine with an explicit
scenario schedule (every kind, on six substations, 45 simulated minutes at 1 s), then
evaluated as the live gateway would see it (one polling cycle per batch). The key figures are
compared with ``tests/alarms/golden/evaluate_small.json``: counts exactly, ratios and latencies
within a stated tolerance. A change in the engine that moves a figure fails this test; if the
change is meant, regenerate the file on purpose and review its diff:

    MINEWATCH_UPDATE_GOLDEN=1 .venv/bin/pytest tests/alarms/test_evaluate_golden.py
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from minewatch.alarms.evaluation.report import render
from minewatch.alarms.evaluation.run import run_evaluate
from minewatch.alarms.evaluation.score import CLASSES
from minewatch.simulators.config import (
    SCENARIO_KINDS,
    MineConfig,
    example_mine_path,
    load_mine_config,
)
from minewatch.simulators.model import SimulatedMine
from minewatch.simulators.trace import record

GOLDEN = Path(__file__).parent / "golden" / "evaluate_small.json"
CYCLES = 3600  # 60 minutes at 1 s
#: Ratios and latencies may move this much before the test calls it a regression.
FLOAT_TOLERANCE = {"precision": 1e-9, "reduction": 0.005, "latency": 1e-6, "rate": 1e-9}

# (kind, substation or roadway, sensor, start_s, duration_s, extra fields)
SCHEDULE: list[tuple[str, str, str | None, float, float, dict[str, Any]]] = [
    ("methane_exceedance", "001", "CH4_T1", 120, 240, {"peak": 1.8}),
    ("fan_stop", "004", "FAN", 200, 600, {"peak": 1.6, "tau_s": 300}),
    ("methane_exceedance", "002", "CH4_T0", 300, 200, {"peak": 1.2}),
    ("substation_comm_loss", "006", None, 300, 300, {}),
    ("disconnection", "005", "CH4_MAIN#2", 300, 300, {"mode": "silent"}),
    ("methane_accumulation", "003", "CH4_HT1", 600, 900, {"peak": 1.3}),
    ("interference", "001", "CH4_T2", 600, 300, {"peak": 3.0, "count": 3}),
    ("stuck", "005", "TEMP", 600, 1000, {}),
    ("calibration", "002", "CH4_T2", 900, 360, {"peak": 2.0, "declared_lead_s": 600}),
    ("vehicle_co", "主运输皮带巷", None, 900, 120, {"peak": 45}),
    ("over_range", "001", "CH4_T0", 1200, 120, {"peak": 4.6}),
    ("undeclared_calibration", "004", "CH4_HT2", 1300, 360, {"peak": 2.0}),
    ("outburst", "002", "CH4_T1", 1500, 300, {"peak": 5.0}),
    ("substation_comm_loss", "006", None, 1500, 300, {"mode": "silent"}),
    ("power_off_failure", "001", "CH4_T1", 1700, 300, {"peak": 1.8}),
    ("disconnection", "003", "CH4_HT2", 1700, 300, {}),
    ("negative_drift", "002", "CH4_T2", 2100, 600, {"peak": -0.05}),
    ("co_fire", "001", "CO", 400, 1500, {"peak": 58}),
    ("co_fire", "005", "CO#2", 2000, 1400, {"peak": 50}),  # on the belt: smoke and heat
    ("sensor_drift", "005", "CH4_MAIN", 60, 2600, {"peak": 0.02}),
    ("sensor_stuck", "003", "CH4_HT2", 2100, 1400, {"peak": 0.2}),
    ("sensor_local_excursion", "001", "CH4_T0", 2700, 600, {"peak": 0.5}),
]


def small_trace_config() -> MineConfig:
    """The small example mine with every scenario kind in 60 minutes (no random ones)."""
    base = load_mine_config(example_mine_path("small"))
    scenarios = []
    for kind, where, sensor, start, duration, extra in SCHEDULE:
        item: dict[str, Any] = {"kind": kind, "start_s": start, "duration_s": duration, **extra}
        if kind == "vehicle_co":
            item["roadway"] = where
        else:
            item["substation"] = where
        if sensor is not None:
            item["sensor"] = sensor
        scenarios.append(item)
    data = base.model_dump(mode="json")
    data["scenarios"] = scenarios
    data["random_scenarios"] = {"rate_per_hour": 0.0}
    data["simulation"]["cross_check_s"] = 600.0  # the drifting sensor is found within 45 min
    return MineConfig.model_validate(data)


def key_figures(report: dict[str, Any]) -> dict[str, Any]:
    """The figures the golden file pins (no timings: they depend on the machine)."""
    classes = report["classes"]
    gas, base_gas = report["gas"], report["baseline"]["gas"]
    shown, base_shown = report["dispatcher"], report["baseline"]["dispatcher"]
    return {
        "labels": report["trace"]["labels"],
        "readings": report["trace"]["readings"],
        "episodes": report["episodes"],
        "recall": {name: c["recall"] for name, c in classes.items()},
        "detected": {
            name: [c["detected"], c["counted"], c["not_reached"]] for name, c in classes.items()
        },
        "latency_s": {
            name: [c["latency_s"]["median"], c["latency_s"]["max"]]
            for name, c in classes.items()
            if c["latency_s"]["n"]
        },
        "gas": {
            key: gas[key]
            for key in (
                "alarms",
                "real_alarms",
                "correct",
                "precision",
                "false_alarms",
                "from_declared_calibrations",
                "from_spikes",
                "undeclared_calibration_raised",
                "undeclared_calibration_reclassified",
            )
        },
        "baseline_gas": {
            key: base_gas[key]
            for key in (
                "alarms",
                "precision",
                "false_alarms",
                "from_declared_calibrations",
                "from_spikes",
            )
        },
        "dispatcher": {
            key: shown[key] for key in ("alarms", "per_10min_peak", "floods", "chattering")
        },
        "baseline_dispatcher": {
            key: base_shown[key] for key in ("alarms", "per_10min_peak", "floods", "chattering")
        },
        "reduction": report["reduction"]["all_shown"],
        "reduction_like_for_like": report["reduction"]["like_for_like"],
    }


def _tolerance(path: str) -> float | None:
    if "latency" in path:
        return FLOAT_TOLERANCE["latency"]
    if "reduction" in path:
        return FLOAT_TOLERANCE["reduction"]
    if "precision" in path:
        return FLOAT_TOLERANCE["precision"]
    return FLOAT_TOLERANCE["rate"]


def _differences(expected: Any, actual: Any, path: str = "") -> list[str]:
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = []
        for key in sorted(set(expected) | set(actual)):
            where = f"{path}.{key}" if path else key
            if key not in actual or key not in expected:
                out.append(f"{where}: expected {expected.get(key)!r}, got {actual.get(key)!r}")
            else:
                out += _differences(expected[key], actual[key], where)
        return out
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        return [
            d
            for k, (e, a) in enumerate(zip(expected, actual, strict=True))
            for d in _differences(e, a, f"{path}[{k}]")
        ]
    if isinstance(expected, float) and isinstance(actual, float | int):
        if abs(expected - actual) <= _tolerance(path):  # type: ignore[operator]
            return []
    elif expected == actual and type(expected) is type(actual):
        return []
    return [f"{path}: expected {expected!r}, got {actual!r}"]


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """The report, and the JSON file ``--json`` wrote."""
    path = tmp_path_factory.mktemp("evaluate") / "small.trace"
    record(SimulatedMine(small_trace_config()), path, CYCLES)
    json_out = path.parent / "report.json"
    return run_evaluate(path, batch_cycles=1, json_out=json_out, python_cycles=600), json_out


@pytest.fixture(scope="module")
def report(evaluated: tuple[dict[str, Any], Path]) -> dict[str, Any]:
    return evaluated[0]


def test_key_figures_match_the_golden_file(report: dict[str, Any]) -> None:
    figures = key_figures(report)
    if os.environ.get("MINEWATCH_UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(json.dumps(figures, ensure_ascii=False, indent=1) + "\n", "utf-8")
        pytest.skip(f"golden file rewritten: {GOLDEN} (review its diff)")
    expected = json.loads(GOLDEN.read_text("utf-8"))
    differences = _differences(expected, figures)
    assert not differences, (
        "evaluate figures moved from the golden file:\n  "
        + "\n  ".join(differences)
        + "\nIf the change is intended: MINEWATCH_UPDATE_GOLDEN=1 .venv/bin/pytest "
        "tests/alarms/test_evaluate_golden.py, and review the diff of " + str(GOLDEN)
    )


def test_every_real_exceedance_and_power_off_failure_raises(report: dict[str, Any]) -> None:
    classes = report["classes"]
    assert classes["gas_exceedance"]["counted"] > 0
    assert classes["gas_exceedance"]["recall"] == 1.0, classes["gas_exceedance"]["missed"]
    assert classes["power_off_failure"]["recall"] == 1.0, classes["power_off_failure"]["missed"]


def test_no_gas_alarm_comes_from_a_declared_calibration_or_a_spike(
    report: dict[str, Any],
) -> None:
    gas = report["gas"]
    assert gas["from_declared_calibrations"] == 0
    assert gas["from_spikes"] == 0
    # ... while the naive baseline raises on both: the trace does test them
    assert report["baseline"]["gas"]["from_declared_calibrations"] > 0
    assert report["baseline"]["gas"]["from_spikes"] > 0


def test_every_scenario_class_is_in_the_trace(report: dict[str, Any]) -> None:
    """Every class whose label kind the simulator makes (``co_exceedance`` is a kind of
    independently made traces: the simulator has no CO fire scenario yet)."""
    simulated = {spec.name for spec in CLASSES if spec.kind in SCENARIO_KINDS}
    empty = [name for name, c in report["classes"].items() if not c["labels"]]
    assert simulated and not [name for name in empty if name in simulated]
    assert set(empty) <= {"co_exceedance"}


def test_the_json_is_strict_and_lists_every_episode_and_incident_with_its_labels(
    evaluated: tuple[dict[str, Any], Path],
) -> None:
    report, path = evaluated

    def refuse(token: str) -> None:
        raise AssertionError(f"{token} is not JSON")

    written = json.loads(path.read_text("utf-8"), parse_constant=refuse)
    episodes, incidents = written["records"]["episodes"], written["records"]["incidents"]
    assert len(episodes) == sum(report["episodes"].values())
    assert len(incidents) == report["incidents"]["minewatch"]["incidents"]
    assert all(i["labels"] for i in incidents)  # every incident explained by some label
    spikes = [e for e in episodes if e["rule"] == "interference"]
    assert spikes and all(e["labels"] for e in spikes)


def test_incidents_per_real_event_and_the_reference_comparison(report: dict[str, Any]) -> None:
    mine = report["incidents"]["minewatch"]
    assert mine["per_real_event"] <= 1.2 and mine["events_shown"] == mine["real_events"]
    assert mine["chattering"] == 0 and mine["nuisance"] == 0
    assert report["incidents"]["baseline_grouped"]["nuisance"] > 0  # spikes, calibration
    assert report["reference_differences"] == {}  # engine and reference, episode by episode
    assert report["unknown_label_kinds"] == {}
    co = next(t for t in report["classes"].items() if t[0] == "co_exceedance")[1]
    assert co["labels"] == 0 and co["recall"] is None  # shown as n/a, not missed


def test_piped_tables_keep_every_name_whole(report: dict[str, Any]) -> None:
    out = io.StringIO()
    render(report, Console(file=out, width=80, force_terminal=False))
    text = out.getvalue()
    assert "…" not in text
    for name in ("undeclared_calibration", "disconnection_silent", "co_exceedance"):
        assert name in text
    assert "n/a" in text


def test_exhaust_puffs_are_told_apart_from_the_fire_and_the_drifting_sensor_is_found(
    report: dict[str, Any],
) -> None:
    co, classes = report["co"], report["classes"]
    assert co["puff_alarms"] > 0 and co["puffs_not_classed_vehicle"] == 0
    assert co["fire_candidates"] >= 1 and co["fire_candidates_from_puffs"] == 0
    assert classes["vehicle_co"]["recall"] == 1.0 and classes["co_fire"]["recall"] == 1.0
    # the fused confirmation (F04): both fires, by heat on the face and smoke on the belt;
    # no exhaust puff confirmed
    assert classes["co_fire_confirmed"]["detected"] == classes["co_fire"]["detected"] == 2
    assert classes["fire_smoke"]["recall"] == 1.0 and co["fire_temperature_labels"] == 3
    assert co["confirmed"] == co["confirmed_fires"] == 2 and co["confirmed_from_puffs"] == 0
    assert report["rules"]["co_fire_confirmed"]["precision"] == 1.0
    assert classes["sensor_drift"]["recall"] == 1.0
    assert report["rules"]["cross_check"]["precision"] == 1.0  # no neighbour flagged with it
    assert report["rules"]["co_fire_candidate"]["precision"] == 1.0

"""Tables for people: the report of ``minewatch evaluate``
(:func:`alarms.evaluation.run.run_evaluate`)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _met(value: bool | None) -> str:
    return {True: "[green]met[/]", False: "[red]missed[/]", None: "-"}[value]


def render(report: dict[str, Any], console: Console) -> None:
    """Print the evaluation as tables: targets, classes, gas alarms, dispatcher load, speed."""
    trace = report["trace"]
    console.rule(f"[bold]minewatch evaluate: {trace['path']}")
    console.print(
        f"mine {trace['mine']}: {trace['points']:,} points ({trace['methane_points']} methane), "
        f"{trace['cycles']:,} cycles of {trace['cycle_s']:g} s = {trace['hours']:.2f} h, "
        f"{trace['readings']:,} readings; batches of {report['batch_cycles']} cycle(s); "
        f"matching slack {report['slack_s']:g} s"
    )

    targets = Table(title="Targets")
    for column in ("measure", "target", "value", ""):
        targets.add_column(column)
    for row in report["targets"]:
        targets.add_row(row["name"], row["target"], _num(row["value"]), _met(row["met"]))
    console.print(targets)

    classes = Table(title="Scenario classes (recall, latency from the condition)")
    for column in (
        "class",
        "engine rule -> classification",
        "labels",
        "not reached",
        "detected",
        "recall",
        "latency median s",
        "max s",
    ):
        classes.add_column(
            column, justify="left" if column.startswith(("class", "eng")) else "right"
        )
    for name, c in report["classes"].items():
        lat = c["latency_s"]
        classes.add_row(
            name,
            f"{c['rule']} -> {c['classification']}",
            _num(c["labels"]),
            _num(c["not_reached"]),
            f"{c['detected']}/{c['counted']}",
            _num(c["recall"]),
            _num(lat["median"], 1),
            _num(lat["max"], 1),
        )
    console.print(classes)

    gas = Table(title="Gas alarms on methane points")
    for column in ("", "minewatch", "naive baseline"):
        gas.add_column(column, justify="right")
    base = report["baseline"]["gas"]
    mine = report["gas"]
    for key, label in (
        ("alarms", "gas alarms raised"),
        ("real_alarms", "classified real exceedance"),
        ("correct", "matching a real-gas label"),
        ("precision", "precision"),
        ("false_alarms", "false alarms"),
        ("false_at_limit", "... highest reading at the level (+0.01)"),
        ("false_per_sensor_day", "false alarms per sensor-day"),
        ("from_declared_calibrations", "from declared calibrations"),
        ("from_spikes", "from single-sample spikes"),
        ("undeclared_calibration_raised", "raised by undeclared calibrations"),
        ("undeclared_calibration_reclassified", "... recognised as calibrations"),
    ):
        gas.add_row(label, _num(mine[key]), _num(base[key]))
    console.print(gas)

    load = Table(title="What a dispatcher sees (ISA-18.2 / EEMUA 191)")
    for column in ("", "minewatch", "naive baseline"):
        load.add_column(column, justify="right")
    shown, base_shown = report["dispatcher"], report["baseline"]["dispatcher"]
    for key, label in (
        ("alarms", "alarms shown"),
        ("per_10min_mean", "per 10 minutes, mean"),
        ("per_10min_peak", "per 10 minutes, peak"),
        ("per_10min_peak_sliding", "any 10 minutes, peak"),
        ("floods", "10-minute windows in flood (> 10)"),
        ("chattering", "chattering alarms (>= 3 in 60 s)"),
        ("chattering_alarms", "... their raises"),
    ):
        load.add_row(label, _num(shown[key], 2), _num(base_shown[key], 2))
    reduction = report["reduction"]
    load.add_row("reduction vs baseline, all shown", _num(reduction["all_shown"]), "")
    load.add_row("reduction, upper alarms only", _num(reduction["like_for_like"]), "")
    console.print(load)

    actors = Table(title="Top-10 bad actors (minewatch)")
    for column in ("point", "rule", "alarms", "share"):
        actors.add_column(column, justify="right" if column in ("alarms", "share") else "left")
    for row in shown["bad_actors"]:
        actors.add_row(row["point"], row["rule"], _num(row["alarms"]), f"{row['share']:.1%}")
    console.print(actors)

    speed = report["throughput"]
    console.print(
        f"engine: {_num(speed['engine_readings_per_s'], 0)} readings/s over the trace "
        f"({_num(speed['engine_s'], 1)} s); on the first {speed['prefix_cycles']:,} cycles "
        f"({speed['prefix_readings']:,} readings): engine "
        f"{_num(speed['engine_prefix_readings_per_s'], 0)}/s, pure-Python reference (every "
        f"rule family) {_num(speed['python_readings_per_s'], 0)}/s, "
        f"ratio {_num(speed['ratio_prefix'], 2)}x"
    )

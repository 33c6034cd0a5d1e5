"""Tables for people: the report of ``minewatch evaluate``
(:func:`alarms.evaluation.run.run_evaluate`)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

#: Width of the layout when the output is not a terminal.
PLAIN_WIDTH = 160


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
    return {True: "[green]met[/]", False: "[red]missed[/]", None: "n/a"}[value]


def _table(console: Console, title: str, columns: tuple[str, ...], right: int = 1) -> Table:
    """A table whose columns from ``right`` on are right-aligned. Cells wrap rather than being
    cut (``fold``), so names stay whole at any width, piped output included."""
    table = Table(title=title)
    for k, column in enumerate(columns):
        table.add_column(column, justify="right" if k >= right else "left", overflow="fold")
    return table


def render(report: dict[str, Any], console: Console) -> None:
    """Print the evaluation as tables: targets, classes, gas alarms, dispatcher load, speed.

    Not on a terminal (piped, redirected) the tables are laid out :data:`PLAIN_WIDTH` wide,
    whatever the environment says, so names and figures are never cut or wrapped."""
    if not console.is_terminal and console.width < PLAIN_WIDTH:
        console.width = PLAIN_WIDTH
    trace = report["trace"]
    console.rule(f"[bold]minewatch evaluate: {trace['path']}")
    console.print(
        f"mine {trace['mine']}: {trace['points']:,} points ({trace['methane_points']} methane), "
        f"{trace['cycles']:,} cycles of {trace['cycle_s']:g} s = {trace['hours']:.2f} h, "
        f"{trace['readings']:,} readings; batches of {report['batch_cycles']} cycle(s); "
        f"matching slack {report['slack_s']:g} s"
    )

    unknown = report.get("unknown_label_kinds") or {}
    if unknown:
        listed = ", ".join(f"{kind} ({n})" for kind, n in unknown.items())
        console.print(f"[yellow]warning: label kinds not scored (unknown): {listed}[/]")

    targets = _table(console, "Targets", ("measure", "target", "value", ""), right=9)
    for row in report["targets"]:
        targets.add_row(row["name"], row["target"], _num(row["value"]), _met(row["met"]))
    console.print(targets)

    classes = _table(
        console,
        "Scenario classes (recall, latency from the condition)",
        ("class", "engine rule -> classification", "labels", "not reached", "detected",
         "recall", "latency median s", "max s"),
        right=2,
    )  # fmt: skip
    for name, c in report["classes"].items():
        lat = c["latency_s"]
        classes.add_row(
            name,
            f"{c['rule']} -> {c['classification']}",
            _num(c["labels"]),
            _num(c["not_reached"]),
            f"{c['detected']}/{c['counted']}",
            _num(c["recall"]) if c["counted"] else "n/a",
            _num(lat["median"], 1),
            _num(lat["max"], 1),
        )
    console.print(classes)

    gas = _table(console, "Gas alarms on methane points", ("", "minewatch", "naive baseline"))
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

    co = report.get("co")
    if co:
        table = _table(console, "CO alarms: exhaust is not fire", ("", "minewatch"))
        for key, label in (
            ("alarms", "CO alarms (upper_alarm on CO points)"),
            ("puff_alarms", "... on a vehicle puff only"),
            ("puffs_not_classed_vehicle", "... of those not classed co_vehicle_suspected"),
            ("fire_candidates", "fire candidates (co_fire_candidate)"),
            ("fire_candidates_from_puffs", "... explained by a vehicle puff only"),
            ("confirmed", "fires confirmed (co_fire_confirmed, F04)"),
            ("confirmed_fires", "... on a labelled fire"),
            ("confirmed_co_exceedances", "... on a labelled CO exceedance only"),
            ("confirmed_from_puffs", "... on a vehicle puff only"),
            ("confirmed_unexplained", "... explained by no label"),
            ("fire_temperature_labels", "fire temperature rises labelled"),
        ):
            if key in co:
                table.add_row(label, _num(co[key]))
        for name, n in co["by_classification"].items():
            table.add_row(f"CO alarms classed {name}", _num(n))
        console.print(table)

    columns = ("", "minewatch", "naive baseline")
    load = _table(console, "What a dispatcher sees (ISA-18.2 / EEMUA 191)", columns)
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

    _incidents(report, console)
    _prealarms(report, console)

    actors = _table(console, "Top-10 bad actors (minewatch)", ("point", "rule", "alarms", "share"),
                    right=2)  # fmt: skip
    for row in shown["bad_actors"]:
        actors.add_row(row["point"], row["rule"], _num(row["alarms"]), f"{row['share']:.1%}")
    console.print(actors)

    _differences(report, console)
    speed = report["throughput"]
    console.print(
        f"engine: {_num(speed['engine_readings_per_s'], 0)} readings/s over the trace "
        f"({_num(speed['engine_s'], 1)} s); on the first {speed['prefix_cycles']:,} cycles "
        f"({speed['prefix_readings']:,} readings): engine "
        f"{_num(speed['engine_prefix_readings_per_s'], 0)}/s, pure-Python reference (every "
        f"rule family) {_num(speed['python_readings_per_s'], 0)}/s, "
        f"ratio {_num(speed['ratio_prefix'], 2)}x"
    )


def _prealarms(report: dict[str, Any], console: Console) -> None:
    """Pre-alarms per exceedance class, against the two baselines (issue 17)."""
    pre = report.get("prealarms")
    if not pre:
        return
    p = pre["params"]
    title = (f"Pre-alarms (horizon {p['horizon_s']:g} s, tau {p['tau_s']:g} s, slow tau "
             f"{p['slow_tau_s']:g} s, z {p['z']:g}, confirm {p['confirm']}): "
             "before the alarm")  # fmt: skip
    names = (("minewatch", "minewatch"),
             ("linear", f"linear, last {pre['baseline_readings']}"),
             ("persistence", "persistence"))  # fmt: skip
    table = _table(console, title, ("class", *(label for _, label in names)))
    classes = pre["minewatch"]["categories"]
    for cat in classes:
        cells = []
        for key, _ in names:
            c = pre[key]["categories"][cat]
            lead = c["lead_mean_s"]
            cells.append(f"{c['prealarmed']}/{c['events']}, lead mean {_num(lead, 0)} s")
        table.add_row(cat + (" (not counted: no forecast sees it)" if cat == "outburst" else ""),
                      *cells)  # fmt: skip
    for key, label in (
        ("prealarms", "pre-alarms"),
        ("before_an_exceedance", "... before an exceedance (within horizon)"),
        ("during_an_exceedance", "... during an exceedance"),
        ("false", "... false (no exceedance within the horizon)"),
        ("false_near_limit", "    of which near the limit (labelled)"),
        ("false_per_sensor_week", "false per sensor-week"),
    ):
        table.add_row(label, *(_num(pre[k][key], 2) for k, _ in names))
    console.print(table)
    console.print(f"{_num(pre['minewatch']['sensor_weeks'], 2)} sensor-weeks "
                  f"({pre['minewatch']['sensors']} methane points forecast)")  # fmt: skip


def _incidents(report: dict[str, Any], console: Console) -> None:
    incidents = report.get("incidents")
    if not incidents:
        return
    title = f"Incidents: what the dispatcher is shown (off-delay {incidents['off_delay_s']:g} s)"
    table = _table(console, title, ("", "minewatch", "baseline alarms grouped"))
    mine, base = incidents["minewatch"], incidents["baseline_grouped"]
    for key, label in (
        ("incidents", "incidents shown"),
        ("real_events", "real labelled events"),
        ("per_real_event", "incidents per real event"),
        ("events_shown", "real events shown"),
        ("max_per_event", "most incidents for one event"),
        ("nuisance", "from calibrations and spikes only"),
        ("unexplained", "explained by no label"),
        ("chattering", "chattering incidents"),
        ("floods", "10-minute windows in flood (> 10)"),
        ("unjustified_floods", "... with <= 10 real events"),
        ("members_mean", "alarms per incident, mean"),
    ):
        table.add_row(label, _num(mine[key], 2), _num(base[key], 2))
    console.print(table)
    columns = ("class", "minewatch", "baseline grouped")
    kinds = _table(console, "Incidents per class of their event", columns)
    for kind in sorted(set(mine["by_kind"]) | set(base["by_kind"])):
        kinds.add_row(kind, _num(mine["by_kind"].get(kind, 0)), _num(base["by_kind"].get(kind, 0)))
    console.print(kinds)


def _differences(report: dict[str, Any], console: Console) -> None:
    differences = report.get("reference_differences")
    speed = report["throughput"]
    if differences is None or not speed.get("prefix_cycles"):
        return
    if not differences:
        console.print(
            f"engine and pure-Python reference: the same episodes on the first "
            f"{speed['prefix_cycles']:,} cycles, rule by rule"
        )
        return
    table = _table(console, "Engine vs reference: episodes that differ (first cycles)",
                   ("rule", "engine", "reference", "only engine", "only reference"))  # fmt: skip
    for rule, d in differences.items():
        table.add_row(
            rule, _num(d["engine"]), _num(d["reference"]),
            "\n".join(str(k) for k in d["only_engine"]) or "-",
            "\n".join(str(k) for k in d["only_reference"]) or "-",
        )  # fmt: skip
    console.print(table)

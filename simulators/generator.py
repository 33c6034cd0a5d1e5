"""Generated mines: one of any size, N distinct mines for load tests, and their TOML.

A generated mine is a main return, a central electrical chamber and repeated mining
districts (采区), each with two longwall faces, four headings, a district return, a belt line
and a transport roadway, so about 66 points per district. The sizes are for load: 30
districts (~2,000 points, ``mines/large.toml``) stand for a big mine or a mine group, not for
a typical one. ``showcase=True`` adds one explicit scenario of every kind (two of
exceedance, disconnection and communication loss), one after the other from 300 s, so
every kind is in the first ~2.5 simulated hours; random scenarios follow at
``rate_per_hour`` after that.

``python -m minewatch.simulators.generator --points 2000 --showcase >
simulators/mines/large.toml``; ``python -m minewatch.simulators.generator --mines 50
--points 500 --out /tmp/mines`` (one file each)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from minewatch.codes import METHANE_SENSOR_TYPES
from minewatch.simulators.config import MineConfig

DISTRICT_POINTS = 66
MINE_POINTS = 10  # main return + electrical chamber

_CH4 = {"sensor_type": "0001", "unit": "%CH4", "range": [0.0, 4.0]}


def _methane(tag: str, location: str, alarm: float, cut: float | None, **more: Any) -> dict:
    out = _CH4 | {"tag": tag, "location": location, "alarm_high": alarm, "alarm_high_clear": alarm}
    if cut is not None:
        out |= {"poweroff_high": cut, "restore_high": min(alarm, cut)}
    return out | more


TEMPLATES: dict[str, dict[str, Any]] = {
    "CH4_T0": _methane("T0", "回风隅角", 1.0, 1.5, baseline=0.38, noise=0.04,
                       production_share=0.5, variability=0.08),
    "CH4_T1": _methane("T1", "工作面", 1.0, 1.5, baseline=0.30, noise=0.04,
                       production_share=0.5, variability=0.08, cuts_power_of="FEED"),
    "CH4_T2": _methane("T2", "回风巷", 1.0, 1.0, baseline=0.28, noise=0.03,
                       production_share=0.5, variability=0.05),
    "CH4_MID": _methane("", "回风巷中部", 1.0, 1.0, baseline=0.30, noise=0.03, variability=0.04),
    "CH4_HT1": _methane("T1", "掘进工作面", 1.0, 1.5, baseline=0.22, noise=0.03,
                        production_share=0.5, variability=0.08, cuts_power_of="FEED"),
    "CH4_HT2": _methane("T2", "掘进回风流", 1.0, 1.0, baseline=0.20, noise=0.03,
                        production_share=0.5, variability=0.05),
    "CH4_DR": _methane("", "采区回风巷", 1.0, 1.0, baseline=0.30, noise=0.02, variability=0.03),
    "CH4_MAIN": _methane("", "总回风巷", 0.75, None, baseline=0.18, noise=0.02,
                         variability=0.03),
    "CH4_ROOM": {"sensor_type": "0043", "unit": "%CH4", "location": "变电所",
                 "range": [0.0, 100.0], "alarm_high": 0.5, "alarm_high_clear": 0.5,
                 "poweroff_high": 0.5, "restore_high": 0.5, "baseline": 0.05, "noise": 0.01},
    "CO": {"sensor_type": "0004", "unit": "ppm", "range": [0.0, 1000.0], "alarm_high": 24.0,
           "alarm_high_clear": 24.0, "baseline": 3.0, "noise": 1.0, "resolution": 1.0},
    "WIND": {"sensor_type": "0002", "unit": "m/s", "location": "测风站", "range": [0.0, 15.0],
             "alarm_high": 4.0, "alarm_high_clear": 4.0, "alarm_low": 0.25,
             "alarm_low_clear": 0.25, "baseline": 2.1, "noise": 0.08, "resolution": 0.1},
    "TEMP": {"sensor_type": "0003", "unit": "°C", "range": [0.0, 40.0], "alarm_high": 30.0,
             "alarm_high_clear": 30.0, "baseline": 24.0, "noise": 0.15, "resolution": 0.1,
             "production_share": 0.05},
    "SMOKE": {"sensor_type": "1008", "desc_on": "有烟雾", "desc_off": "无烟雾", "baseline": 0.0,
              "resolution": 1.0, "alarm_state": 1},
    "FAN": {"sensor_type": "1001", "desc_on": "开", "desc_off": "停", "baseline": 1.0,
            "resolution": 1.0, "alarm_state": 0},
    "FEED": {"sensor_type": "1011", "desc_on": "有电", "desc_off": "无电", "baseline": 1.0,
             "resolution": 1.0},
}  # fmt: skip

LONGWALL = ["CH4_T0", "CH4_T1", "CH4_T2", "CH4_MID", "CO", "CO", "TEMP", "WIND", "FEED"]
HEADING = ["CH4_HT1", "CH4_HT2", "CO", "TEMP", "WIND", "FAN", "FAN", "FEED"]
DISTRICT_RETURN = ["CH4_DR", "CO", "WIND", "TEMP"]
BELT = ["CO", "CO", "SMOKE", "TEMP"]
TRANSPORT = ["CO", "CO", "WIND", "TEMP"]


#: A day of a mine's events, per 100 methane sensors (docs/simulator.md, "Realistic day"):
#: calibrations every 15 days per catalytic sensor (§5.1), some not declared; the nuisance
#: the regulators see (spikes, flicker, vehicle exhaust); real gas deliberately frequent.
REALISTIC_PER_100_CH4: dict[str, float] = {
    "calibration": 100 / 15 * 0.9,
    "undeclared_calibration": 100 / 15 * 0.1,
    "interference": 5.0,
    "disconnection": 6.0,
    "vehicle_co": 12.0,
    "methane_exceedance": 14.0,
    "methane_accumulation": 0.6,
    "outburst": 0.2,
    "over_range": 0.4,
    "power_off_failure": 0.6,
    "fan_stop": 0.6,
    "negative_drift": 0.6,
    "stuck": 0.4,
    "substation_comm_loss": 0.8,
}
FLICKER_SHARE = 0.7  # of the disconnections: 闪断 of seconds, not outages
#: Personnel, video and output situations of that day (per mine, whatever its size).
REALISTIC_FEEDS_PER_DAY: dict[str, float] = {
    "area_overcrowding": 2.0, "mine_overcrowding": 1.0, "overtime": 3.0,
    "restricted_area": 3.0, "leader_absent": 1.0, "sos": 2.0, "camera_offline": 4.0,
}  # fmt: skip


def mine_code(index: int, county: str = "141024", first: int = 900001) -> str:
    """The ``index``-th generated mine code: 6-digit county code + 6 digits."""
    if len(county) != 6 or not county.isdigit():
        raise ValueError("a county code is 6 digits, e.g. 141024")
    return f"{county}{first + index:06d}"


def generate_mine(
    code: str,
    points: int = 2000,
    *,
    seed: int = 1,
    name: str | None = None,
    gas_class: str = "high",
    cycle_s: float = 1.0,
    rate_per_hour: float = 1.0,
    showcase: bool = False,
    realistic: bool = False,
) -> MineConfig:
    """A mine of about ``points`` points (at least one district). ``realistic``: the random
    scenarios follow ``REALISTIC_PER_100_CH4`` (scaled to the mine's methane sensors) and
    ``REALISTIC_FEEDS_PER_DAY`` instead of ``rate_per_hour`` over all kinds."""
    districts = max(1, round((points - MINE_POINTS) / DISTRICT_POINTS))
    rng = np.random.default_rng([seed, int(code)])
    substations: list[dict[str, Any]] = [
        {"code": "001", "location": "总回风巷", "sensors": ["CH4_MAIN", "CH4_MAIN", "CO", "WIND",
                                                             "TEMP"]},
        {"code": "002", "location": "中央变电所", "sensors": ["CH4_ROOM", "TEMP", "CO", "TEMP",
                                                              "FEED"]},
    ]  # fmt: skip
    workings: list[dict[str, Any]] = []
    roadways: list[dict[str, Any]] = []
    to_main = round(0.5 / districts, 4)
    next_code = 3
    for d in range(districts):
        area = f"{d + 1:02d}"

        def station(location: str, sensors: list[str]) -> str:
            nonlocal next_code
            code_ = f"{next_code:03d}"
            next_code += 1
            substations.append({"code": code_, "location": location, "sensors": sensors})
            return code_

        dr = station(f"{area}采区回风巷", DISTRICT_RETURN)
        for f in range(2):
            lw = station(f"{area}{f + 1:02d}综采工作面", LONGWALL)
            workings.append({"name": f"{area}{f + 1:02d}综采工作面", "kind": "longwall",
                             "substations": [lw]})  # fmt: skip
            ret = int(rng.integers(90, 180))
            roadways += [
                {"name": f"{lw}工作面", "kind": "face", "points": [f"{lw}/CH4_T1", f"{lw}/WIND",
                 f"{lw}/CH4_T2"], "delays_s": [0, ret // 2, ret], "share": 0.3},
                {"name": f"{lw}上隅角", "points": [f"{lw}/CH4_T0", f"{lw}/CH4_T2"],
                 "delays_s": [0, ret - 10], "share": 0.2},
                {"name": f"{lw}回风巷", "points": [f"{lw}/CH4_T2", f"{lw}/CH4_MID"],
                 "delays_s": [0, 150], "share": 0.8},
                {"name": f"{lw}回风→采区回风", "points": [f"{lw}/CH4_MID", f"{dr}/CH4_DR"],
                 "delays_s": [0, int(rng.integers(120, 300))], "share": 0.25},
            ]  # fmt: skip
        for h in range(4):
            hd = station(f"{area}{h + 1:02d}掘进工作面", HEADING)
            workings.append({"name": f"{area}{h + 1:02d}掘进工作面", "kind": "heading",
                             "substations": [hd]})  # fmt: skip
            roadways += [
                {"name": f"{hd}掘进巷", "kind": "heading", "points": [f"{hd}/FAN", f"{hd}/CH4_HT1",
                 f"{hd}/WIND", f"{hd}/CH4_HT2"], "delays_s": [0, 40, 70, 100], "share": 0.6},
                {"name": f"{hd}回风", "points": [f"{hd}/CH4_HT2", f"{dr}/CH4_DR"],
                 "delays_s": [0, int(rng.integers(120, 360))], "share": 0.1},
            ]  # fmt: skip
        belt = [station(f"{area}采区皮带巷{i + 1}", BELT) for i in range(2)]
        roadways.append({"name": f"{area}皮带巷", "kind": "belt", "air_speed_m_s": 2.0,
                         "points": [f"{b}/CO{n}" for b in belt for n in ("", "#2")],
                         "delays_s": [0, 150, 300, 450]})  # fmt: skip
        tr = station(f"{area}辅助运输巷", TRANSPORT)
        roadways.append({"name": f"{area}辅运巷", "kind": "transport", "air_speed_m_s": 2.5,
                         "points": [f"{tr}/CO", f"{tr}/WIND", f"{tr}/CO#2"],
                         "delays_s": [0, 150, 300]})  # fmt: skip
        roadways.append({"name": f"{area}采区回风→总回风",
                         "points": [f"{dr}/CH4_DR", "001/CH4_MAIN"],
                         "delays_s": [0, int(rng.integers(300, 900))],
                         "share": to_main})  # fmt: skip
    roadways.append({"name": "总回风巷",
                     "points": ["001/CH4_MAIN", "001/WIND", "001/CH4_MAIN#2"],
                     "delays_s": [0, 150, 300], "share": 0.9})  # fmt: skip
    data: dict[str, Any] = {
        "mine": {"code": code, "name": name or f"模拟煤矿 {code}", "gas_class": gas_class,
                 "approved_capacity_t": 1_200_000.0 * districts / 5},
        "simulation": {"seed": seed, "cycle_s": cycle_s},
        "random_scenarios": {"rate_per_hour": rate_per_hour, "start_after_s": 9000.0},
        "templates": TEMPLATES,
        "substations": substations,
        "workings": workings,
        "roadways": roadways,
        "scenarios": _showcase(substations) if showcase else [],
    }  # fmt: skip
    if realistic:
        methane = sum(TEMPLATES[n]["sensor_type"] in METHANE_SENSOR_TYPES
                      for s in substations for n in s["sensors"])  # fmt: skip
        data["random_scenarios"] = {
            "start_after_s": 60.0, "flicker_share": FLICKER_SHARE,
            "per_day": {k: round(v * methane / 100, 2) for k, v in REALISTIC_PER_100_CH4.items()},
        }  # fmt: skip
        data["random_feed_scenarios"] = {"per_day": REALISTIC_FEEDS_PER_DAY}
    return MineConfig.model_validate(data)


def _showcase(substations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One scenario of every kind, back to back from 300 s (about 2.5 hours in all)."""
    by_kind: dict[str, list[str]] = {}
    for s in substations:
        kinds = ("综采", "掘进", "采区回风", "皮带", "辅助运输")
        kind = next((k for k in kinds if k in s["location"]), "")
        by_kind.setdefault(kind, []).append(s["code"])
    lw, hd = by_kind["综采"], by_kind["掘进"]
    belt, dr = by_kind["皮带"], by_kind["采区回风"]

    def pick(codes: list[str], i: int) -> str:
        return codes[i % len(codes)]

    plan: list[dict[str, Any]] = [
        {"kind": "methane_exceedance", "substation": pick(lw, 0), "sensor": "CH4_T0",
         "duration_s": 240, "peak": 1.2},
        {"kind": "methane_exceedance", "substation": pick(lw, 1), "sensor": "CH4_T1",
         "duration_s": 300, "peak": 1.9},
        {"kind": "methane_accumulation", "substation": pick(hd, 0), "sensor": "CH4_HT1",
         "duration_s": 1200, "peak": 1.3},
        {"kind": "outburst", "substation": pick(lw, 2), "sensor": "CH4_T1", "duration_s": 300,
         "peak": 5.0},
        {"kind": "over_range", "substation": pick(lw, 3), "sensor": "CH4_T0", "duration_s": 120,
         "peak": 4.6},
        {"kind": "power_off_failure", "substation": pick(lw, 0), "sensor": "CH4_T1",
         "duration_s": 300, "peak": 1.8},
        {"kind": "fan_stop", "substation": pick(hd, 1), "sensor": "FAN", "duration_s": 600,
         "peak": 1.6, "tau_s": 300},
        {"kind": "calibration", "substation": pick(lw, 1), "sensor": "CH4_T0", "duration_s": 360,
         "peak": 2.0},
        {"kind": "undeclared_calibration", "substation": pick(lw, 2), "sensor": "CH4_T0",
         "duration_s": 360, "peak": 2.0},
        {"kind": "disconnection", "substation": pick(hd, 2), "sensor": "CH4_HT2",
         "duration_s": 300},
        {"kind": "disconnection", "substation": pick(lw, 3), "sensor": "CH4_T2",
         "duration_s": 300, "mode": "silent"},
        {"kind": "negative_drift", "substation": pick(lw, 0), "sensor": "CH4_T2",
         "duration_s": 1200, "peak": -0.05},
        {"kind": "stuck", "substation": pick(hd, 3), "sensor": "CH4_HT1", "duration_s": 1000},
        {"kind": "interference", "substation": pick(lw, 1), "sensor": "CH4_T1",
         "duration_s": 300, "peak": 3.0, "count": 3},
        {"kind": "substation_comm_loss", "substation": pick(dr, 0), "duration_s": 300},
        {"kind": "substation_comm_loss", "substation": pick(belt, 0), "duration_s": 300,
         "mode": "silent"},
        {"kind": "vehicle_co", "roadway": "01辅运巷", "duration_s": 120, "peak": 45,
         "speed_m_s": 4.0},
    ]  # fmt: skip
    t = 300.0
    for item in plan:
        item["start_s"] = t
        t += item["duration_s"] + (item.get("tau_s", 0) if item["kind"] == "fan_stop" else 0) + 60
    # issue 13: smouldering fires (a belt, a face, a transport roadway) and sensors losing
    # their sensitivity between neighbours that read gas, at set hours of the day
    tr = by_kind["辅助运输"]
    plan += [
        {"kind": "co_fire", "substation": pick(belt, 1), "sensor": "CO", "start_s": 4 * 3600.0,
         "duration_s": 1800, "peak": 58},
        {"kind": "co_fire", "substation": pick(lw, 4), "sensor": "CO#2",
         "start_s": 10 * 3600.0, "duration_s": 2400, "peak": 70},
        {"kind": "co_fire", "substation": pick(tr, 1), "sensor": "CO#2",
         "start_s": 17 * 3600.0, "duration_s": 1500, "peak": 45},
        {"kind": "sensor_drift", "substation": pick(lw, 5), "sensor": "CH4_T2",
         "start_s": 3 * 3600.0, "duration_s": 6 * 3600, "peak": 0.02},
        {"kind": "sensor_drift", "substation": pick(hd, 6), "sensor": "CH4_HT2",
         "start_s": 9 * 3600.0, "duration_s": 4 * 3600, "peak": 0.02},
        {"kind": "sensor_drift", "substation": pick(lw, 7), "sensor": "CH4_MID",
         "start_s": 14 * 3600.0, "duration_s": 8 * 3600, "peak": 0.03},
        # stuck sensors while the gas upstream swings, and local faults no neighbour sees
        {"kind": "sensor_stuck", "substation": pick(hd, 9), "sensor": "CH4_HT2",
         "start_s": 6 * 3600.0, "duration_s": 3600, "peak": 0.25},
        {"kind": "sensor_stuck", "substation": pick(lw, 9), "sensor": "CH4_T2",
         "start_s": 12 * 3600.0, "duration_s": 2400, "peak": 0.25},
        {"kind": "sensor_stuck", "substation": pick(hd, 10), "sensor": "CH4_HT2",
         "start_s": 20 * 3600.0, "duration_s": 3000, "peak": 0.2},
        {"kind": "sensor_local_excursion", "substation": pick(lw, 10), "sensor": "CH4_T0",
         "start_s": 5 * 3600.0, "duration_s": 600, "peak": 0.5},
        {"kind": "sensor_local_excursion", "substation": pick(hd, 11), "sensor": "CH4_HT1",
         "start_s": 11 * 3600.0, "duration_s": 900, "peak": 0.6},
        {"kind": "sensor_local_excursion", "substation": pick(lw, 12), "sensor": "CH4_T1",
         "start_s": 19 * 3600.0, "duration_s": 480, "peak": 0.5},
    ]  # fmt: skip
    return plan


def generate_mines(
    n: int, points: int = 500, *, county: str = "141024", seed: int = 1, **options: Any
) -> list[MineConfig]:
    """``n`` distinct mines (codes ``<county>900001``...) for load tests."""
    return [generate_mine(mine_code(i, county), points, seed=seed + i, **options)
            for i in range(n)]  # fmt: skip


# ---- TOML ---------------------------------------------------------------------------------


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(float(v)) if isinstance(v, float) else str(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, dt.datetime):
        return v.isoformat()
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() and k.isascii() else json.dumps(k)


def _table(header: str, fields: dict[str, Any]) -> str:
    lines = [header] + [f"{_key(k)} = {_value(v)}" for k, v in fields.items() if v is not None]
    return "\n".join(lines) + "\n"


def to_toml(config: MineConfig, comment: str = "") -> str:
    """The config as TOML that :func:`simulators.config.load_mine_config` reads back equal."""
    data = config.model_dump(exclude_defaults=True)
    parts = [comment] if comment else []
    for section in ("mine", "simulation", "production", "random_scenarios", "personnel",
                    "video", "output", "random_feed_scenarios"):  # fmt: skip
        if section in data or section == "mine":
            parts.append(_table(f"[{section}]", data.get(section, {})))
    for name, template in data["templates"].items():
        parts.append(_table(f"[templates.{_key(name)}]", template))
    for section in ("substations", "workings", "roadways", "scenarios", "feed_scenarios"):
        for item in data.get(section, []):
            parts.append(_table(f"[[{section}]]", item))
    return "\n".join(parts)


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m minewatch.simulators.generator", description=__doc__
    )
    parser.add_argument("--points", type=int, default=2000)
    parser.add_argument("--mines", type=int, default=1)
    parser.add_argument("--county", default="141024")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cycle-s", type=float, default=1.0)
    parser.add_argument("--rate-per-hour", type=float, default=1.0)
    parser.add_argument("--showcase", action="store_true")
    parser.add_argument("--realistic", action="store_true", help="a realistic day's mix")
    parser.add_argument("--out", type=Path, help="directory for one TOML per mine")
    args = parser.parse_args(argv)
    mines = generate_mines(
        args.mines, args.points, county=args.county, seed=args.seed, cycle_s=args.cycle_s,
        rate_per_hour=args.rate_per_hour, showcase=args.showcase, realistic=args.realistic,
    )  # fmt: skip
    command = "python -m minewatch.simulators.generator " + " ".join(argv or sys.argv[1:])
    comment = ("# Generated by: " + command
               + "\n# Edit the generator, not this file (docs/simulator.md).\n")  # fmt: skip
    if args.out is None:
        if len(mines) != 1:
            parser.error("--out is needed for more than one mine")
        sys.stdout.write(to_toml(mines[0], comment))
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for config in mines:
        (args.out / f"{config.mine.code}.toml").write_text(to_toml(config, comment), "utf-8")
    print(f"{len(mines)} mines in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(_main())

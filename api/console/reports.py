"""The remote-inspection reports (远程监察报表): each one query of the repositories, its columns
and its filters. The report API (api/routers/reports.py) and the report pages
(api/routers/console_regulator.py) both build their ``Table`` here."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Query
from psycopg import AsyncConnection

from minewatch.alarms.output_store import DEFAULT_WRAP_FRACTION, output_totals
from minewatch.api import (
    comms_repository,
    inspection_repository,
    reconciliation_repository,
    report_repository,
    repository,
)
from minewatch.api.auth import Access
from minewatch.api.console.tables import LOCAL, Column, Table, period_text
from minewatch.api.errors import invalid
from minewatch.api.params import MAX_DURATION, Instant, Limit, check_range

DEFAULT_DAYS = 7
#: The longest period a report covers (a year and a month), so that one request stays bounded.
MAX_PERIOD = dt.timedelta(days=400)


@dataclass
class ReportFilter:
    """The filters every report takes; a missing period is the last seven days, and a period
    covers at most 400 days."""

    start: Annotated[Instant | None, Query(description="Inclusive; default: end - 7 days.")] = None
    end: Annotated[Instant | None, Query(description="Exclusive; default: now.")] = None
    limit: Limit = 1000
    rule: Annotated[
        str | None,
        Query(max_length=64, pattern=r"^[a-z_]+$", description="Alarm report: only this rule."),
    ] = None
    active: Annotated[bool | None, Query(description="Alarm report: open (true) or ended.")] = None
    min_duration_s: Annotated[
        float | None,
        Query(
            ge=0,
            le=MAX_DURATION.total_seconds(),
            allow_inf_nan=False,
            description="Alarm report: lasting at least this long (持续时长).",
        ),
    ] = None
    hours: Annotated[
        float,
        Query(
            gt=0,
            le=24 * 365,
            allow_inf_nan=False,
            description="Disposal compliance: disposed within.",
        ),
    ] = 24.0

    on_time_s: Annotated[
        float,
        Query(
            gt=0,
            le=86400,
            allow_inf_nan=False,
            description="Six-system check: data stored within this many seconds of its time "
            "is on time.",
        ),
    ] = 60.0

    def period(self) -> tuple[dt.datetime, dt.datetime]:
        end = self.end or dt.datetime.now(dt.UTC).replace(microsecond=0)
        start = self.start or end - dt.timedelta(days=DEFAULT_DAYS)
        check_range(start, end)
        if end - start > MAX_PERIOD:
            raise invalid(("query", "start"), "a report covers at most 400 days")
        return start, end


def _jurisdiction(access: Access) -> str:
    return access.mine or access.scope or "全部"


ALARM_COLUMNS = (
    Column("id", "编号", "id"),
    Column("mine_code", "矿井编码", "mine"),
    Column("point_code", "测点编码", "point"),
    Column("location", "安装位置", "location"),
    Column("rule", "报警类型", "rule"),
    Column("grade", "等级", "grade"),
    Column("started_at", "开始时间", "started"),
    Column("ended_at", "结束时间", "ended"),
    Column("duration_s", "持续时长", "duration", "s", 0),
    Column("max_value", "最大值", "maximum", digits=3),
    Column("acknowledged_by", "确认人", "acknowledged by"),
    Column("handled_by", "处置人", "disposed by"),
    Column("cause", "异常原因", "cause"),
    Column("measures", "处理措施", "measures"),
)
RANKING_COLUMNS = (
    Column("mine_code", "矿井编码", "mine"),
    Column("mine_name", "矿井名称", "mine name"),
    Column("point_code", "测点编码", "point"),
    Column("sensor_name", "传感器类型", "sensor type"),
    Column("location", "安装位置", "location"),
    Column("episodes", "超限次数", "exceedances", "次"),
    Column("max_value", "最大值", "maximum", digits=3),
    Column("unit", "单位", "unit"),
    Column("longest_s", "最长持续", "longest", "s", 0),
    Column("total_s", "累计时长", "total", "s", 0),
    Column("mine_episodes", "矿井超限次数", "mine exceedances", "次"),
    Column("mine_methane_max", "矿井瓦斯最大值", "mine methane maximum", "%", 3),
    Column("mine_flag", "重点关注矿井", "mine flagged"),
)
DISPOSAL_COLUMNS = (
    Column("mine_code", "矿井编码", "mine"),
    Column("mine_name", "矿井名称", "mine name"),
    Column("alarms", "报警数", "alarms", "条"),
    Column("disposed_in_time", "按时处置", "disposed in time", "条"),
    Column("disposed_late", "超时处置", "disposed late", "条"),
    Column("overdue", "逾期未处置", "overdue", "条"),
    Column("pending", "未到期", "not yet due", "条"),
    Column("compliance_pct", "处置及时率", "compliance", "%", 1),
)
INTEGRITY_COLUMNS = (
    Column("day", "日期", "day"),
    Column("mine_code", "矿井编码", "mine"),
    Column("point_code", "测点编码", "point"),
    Column("location", "安装位置", "location"),
    Column("poll_cycle_s", "巡检周期", "polling cycle", "s"),
    Column("received", "实收条数", "received", "条"),
    Column("expected", "应收条数", "expected", "条"),
    Column("completeness_pct", "上传完整率", "completeness", "%", 1),
    Column("interruptions", "数据中断次数", "interruptions", "次"),
    Column("late", "迟到条数", "late readings", "条"),
    Column("messages_missing", "缺失报文数", "messages missing", "条"),
)
CALIBRATION_COLUMNS = (
    Column("mine_code", "矿井编码", "mine"),
    Column("point_code", "测点编码", "point"),
    Column("location", "安装位置", "location"),
    Column("last_calibration", "最近标校时间", "last calibration"),
    Column("days_since", "距今天数", "days since", "天", 1),
    Column("overdue", "超期未标校", "overdue"),
    Column("undeclared", "未报备标校次数", "undeclared calibrations", "次"),
)
#: A catalytic methane sensor is calibrated at least every this many days (AQ 6201).
CALIBRATION_DUE_DAYS = 15


async def alarms(conn: AsyncConnection, access: Access, f: ReportFilter) -> Table:
    """1. Alarms by mine, rule, time, minimum duration, open or ended, with who acknowledged
    and disposed them: the same query as ``GET /api/v1/alarms``."""
    start, end = f.period()
    where = repository.AlarmFilter(
        mine=access.mine,
        scope=access.scope,
        rule=f.rule,
        active=f.active,
        since=start,
        until=end,
        min_duration_s=f.min_duration_s,
        limit=f.limit,
    )
    rows = await repository.list_alarms(conn, where)
    return Table(
        "alarms",
        "报警明细报表",
        "Alarm report",
        ALARM_COLUMNS,
        rows,
        _jurisdiction(access),
        period_text(start, end),
    )


async def exceedance_ranking(conn: AsyncConnection, access: Access, f: ReportFilter) -> Table:
    """2. Points ranked by exceedances: most frequent, highest, longest; with each mine's
    totals, flagged when it had methane >= 3 % or >= 5 exceedances."""
    start, end = f.period()
    rows = await report_repository.exceedance_ranking(
        conn, access.scope, access.mine, start, end, f.limit
    )
    for row in rows:
        row["mine_flag"] = "是" if row["mine_flagged"] else ""
    return Table(
        "exceedance-ranking",
        "超限排名报表",
        "Exceedance ranking",
        RANKING_COLUMNS,
        rows,
        _jurisdiction(access),
        period_text(start, end),
    )


async def disposal_compliance(conn: AsyncConnection, access: Access, f: ReportFilter) -> Table:
    """3. Per mine, alarms disposed within ``hours``, late, and overdue."""
    start, end = f.period()
    rows = await report_repository.disposal_compliance(
        conn, access.scope, access.mine, start, end, f.hours
    )
    title = f"报警处置及时性报表 ({f.hours:g} 小时内)"
    return Table(
        "disposal-compliance",
        title,
        f"Disposal compliance (within {f.hours:g} h)",
        DISPOSAL_COLUMNS,
        rows,
        _jurisdiction(access),
        period_text(start, end),
    )


async def data_integrity(conn: AsyncConnection, access: Access, f: ReportFilter) -> Table:
    """4. Per point and local day: upload completeness, data interruptions, late readings
    and messages that never arrived."""
    start, end = f.period()
    rows = await report_repository.data_integrity(
        conn, access.scope, access.mine, start, end, "Asia/Shanghai", f.limit
    )
    for row in rows:
        day = row["day"]
        if isinstance(day, dt.datetime):
            row["day"] = day.astimezone(LOCAL).date().isoformat()
    return Table(
        "data-integrity",
        "数据完整性报表",
        "Data integrity",
        INTEGRITY_COLUMNS,
        rows,
        _jurisdiction(access),
        period_text(start, end),
    )


async def calibration_compliance(conn: AsyncConnection, access: Access, f: ReportFilter) -> Table:
    """5. Catalytic methane sensors not calibrated within 15 days of the period's end, and
    calibrations done without declaration within the period."""
    start, end = f.period()
    rows = await report_repository.calibration_compliance(
        conn, access.scope, access.mine, start, end, f.limit
    )
    due = dt.timedelta(days=CALIBRATION_DUE_DAYS)
    for row in rows:
        last = row["last_calibration"]
        since = end - last if isinstance(last, dt.datetime) else None
        row["days_since"] = None if since is None else since.total_seconds() / 86400
        row["overdue"] = "是" if since is None or since > due else ""
    title = ("标校合规报表", "Calibration compliance")
    period = period_text(start, end)
    return Table("calibration-compliance", *title, CALIBRATION_COLUMNS, rows,
                 _jurisdiction(access), period)  # fmt: skip


THRESHOLD_COLUMNS = (
    Column("mine_code", "矿井编码", "mine"),
    Column("point_code", "测点编码", "point"),
    Column("location", "安装位置", "location"),
    Column("tag", "位置标识", "tag"),
    Column("alarm_high", "报警门限", "alarm level", "%"),
    Column("poweroff_high", "断电门限", "power-off level", "%"),
    Column("restore_high", "复电门限", "restore level", "%"),
    Column("regulation", "规程条目", "regulation row"),
    Column("alarm_pct", "规程报警值", "regulation alarm", "%"),
    Column("poweroff_pct", "规程断电值", "regulation power-off", "%"),
    Column("restore_pct", "规程复电值", "regulation restore", "%"),
    Column("verdict", "结论", "verdict"),
)
PERSONNEL_COLUMNS = (
    Column("mine_code", "矿井编码", "mine"),
    Column("mine_name", "矿井名称", "mine name"),
    Column("underground", "当前井下人数", "underground now", "人"),
    Column("max_underground_people", "核定下井人数", "mine quota", "人"),
    Column("over_quota", "矿井超员", "over the quota"),
    Column("areas_over_now", "当前超员区域", "areas over quota now", "个"),
    Column("overtime_now", "当前超时人数", "overtime now", "人"),
    Column("leaders_underground", "当前带班领导", "leaders underground now", "人"),
    Column("overtime", "超时报警", "overtime alarms", "次"),
    Column("area_overcrowding", "区域超员报警", "area overcrowding alarms", "次"),
    Column("mine_overcrowding", "矿井超员报警", "mine overcrowding alarms", "次"),
    Column("restricted_area", "限制区域报警", "restricted area alarms", "次"),
    Column("sos", "求救报警", "SOS alarms", "次"),
    Column("leader_absent", "带班空岗报警", "shifts without a leader", "次"),
)
OUTPUT_COLUMNS = (
    Column("mine_code", "矿井编码", "mine"),
    Column("mine_name", "矿井名称", "mine name"),
    Column("month", "月份", "month"),
    Column("output_t", "月产量", "output", "t", 3),
    Column("approved_capacity_t", "核定生产能力", "approved capacity", "t/a"),
    Column("limit_t", "月产量上限", "monthly limit", "t", 3),
    Column("share_pct", "占核定能力", "share of capacity", "%", 2),
    Column("exceeds", "超能力生产", "over capacity"),
    Column("note", "备注", "note"),
)
SIX_SYSTEM_COLUMNS = (
    Column("mine_code", "矿井编码", "mine"),
    Column("mine_name", "矿井名称", "mine name"),
    Column("system", "系统", "system"),
    Column("day", "日期", "day"),
    Column("connected", "接入状态", "connected"),
    Column("last_data_at", "最后数据时间", "last data"),
    Column("completeness_pct", "数据完整率", "completeness", "%", 1),
    Column("on_time_pct", "上传及时率", "on time", "%", 1),
    Column("open_faults", "未消除故障", "open faults", "个"),
)
#: The six systems of the check (专项督查) with their Chinese names.
SYSTEM_NAMES = {
    "platform": "监管平台联网", "safety": "安全监控", "personnel": "人员定位",
    "output": "产量监测", "video": "视频调度", "comms": "通信联络",
}  # fmt: skip
#: A system whose newest data is older than this (or that never sent any) is not connected.
CONNECTED_WITHIN = dt.timedelta(minutes=10)
#: 重大事故隐患判定标准: monthly output above 10 % of the approved annual capacity.
MONTH_LIMIT_SHARE = 0.10


async def threshold_conformance(conn: AsyncConnection, access: Access, f: ReportFilter) -> Table:
    """6. Methane points whose alarm, power-off or restore levels are looser than the
    regulation table for their location (煤矿安全规程 第498条, ``methane_regulation``);
    points whose location matches no row are listed as such. The levels as defined now."""
    start, end = f.period()
    rows = await inspection_repository.threshold_conformance(
        conn, access.scope, access.mine, f.limit
    )
    for row in rows:
        findings = row["findings"]
        if row["row_no"] is None:
            row["regulation"], row["verdict"] = "", "未匹配规程条目"
        else:
            row["regulation"] = f"{row['source']} 第{row['row_no']}行 {row['regulation_location']}"
            row["verdict"] = "、".join(findings) if findings else "符合"  # type: ignore[arg-type]
    rows.sort(key=lambda r: (r["verdict"] == "符合", r["row_no"] is None, r["mine_code"],
                             r["point_code"]))  # fmt: skip
    title = ("门限设置合规报表", "Threshold conformance")
    return Table("threshold-conformance", *title, THRESHOLD_COLUMNS, rows,
                 _jurisdiction(access), period_text(start, end))  # fmt: skip


async def personnel(conn: AsyncConnection, access: Access, f: ReportFilter) -> Table:
    """7. Per mine: people underground now against the quota, overtime and overcrowded areas
    now, leaders underground now; the personnel alarms of the period (overtime, overcrowding,
    restricted area, SOS, shifts without a leader)."""
    start, end = f.period()
    rows = await inspection_repository.personnel(conn, access.scope, access.mine, start, end)
    for row in rows:
        quota = row["max_underground_people"]
        over = isinstance(quota, int) and int(row["underground"]) > quota  # type: ignore[call-overload]
        row["over_quota"] = "是" if over else ""
    title = ("人员定位报表", "Personnel")
    return Table("personnel", *title, PERSONNEL_COLUMNS, rows, _jurisdiction(access),
                 period_text(start, end))  # fmt: skip


def _month_label(period_start: object, tz: str) -> str:
    assert isinstance(period_start, dt.datetime)
    return period_start.astimezone(ZoneInfo(tz)).strftime("%Y-%m")


async def output(conn: AsyncConnection, access: Access, f: ReportFilter) -> Table:
    """8. Per mine and month (the mine's local time): output from the belt-scale counters
    against the approved annual capacity; a month above 10 % of it is over capacity (超能力)."""
    start, end = f.period()
    rows: list[dict[str, object]] = []
    for mine in await inspection_repository.mines_in_scope(conn, access.scope, access.mine):
        tz = str(mine["timezone"] or "Asia/Shanghai")
        capacity = mine["approved_capacity_t"]
        limit = None if capacity is None else MONTH_LIMIT_SHARE * float(capacity)  # type: ignore[arg-type]
        base = {"mine_code": mine["code"], "mine_name": mine["name"],
                "approved_capacity_t": capacity, "limit_t": limit}  # fmt: skip
        months = await output_totals(
            conn, str(mine["code"]), "month", start, end, tz, DEFAULT_WRAP_FRACTION
        )
        if not months:
            rows.append(base | {"note": "无产量数据"})
        for month in months:
            output_t = float(month["output_t"])  # type: ignore[arg-type]
            rows.append(base | {
                "month": _month_label(month["period_start"], tz), "output_t": output_t,
                "share_pct": None if not capacity else 100.0 * output_t / float(capacity),  # type: ignore[arg-type]
                "exceeds": "是" if limit is not None and output_t > limit else "",
                "note": "" if capacity is not None else "无核定能力",
            })  # fmt: skip
    title = ("产量核查报表", "Output against capacity")
    return Table("output", *title, OUTPUT_COLUMNS, rows, _jurisdiction(access),
                 period_text(start, end))  # fmt: skip


RECONCILIATION_COLUMNS = (
    Column("mine_code", "矿井编码", "mine"),
    Column("mine_name", "矿井名称", "mine name"),
    Column("point_matched", "测点报警一致", "point alarms matched", "条"),
    Column("point_reported_only", "测点报警仅矿井上报", "point alarms reported only", "条"),
    Column("point_computed_only", "测点报警未上报", "point alarms not reported", "条"),
    Column("personnel_matched", "人员报警一致", "personnel alarms matched", "条"),
    Column("personnel_reported_only", "人员报警仅矿井上报", "personnel reported only", "条"),
    Column("personnel_computed_only", "人员报警未上报", "personnel not reported", "条"),
)
#: Slack when matching a reported and a computed episode (the reconciliation API's default).
RECONCILIATION_TOLERANCE = dt.timedelta(seconds=60)


async def reconciliation(conn: AsyncConnection, access: Access, f: ReportFilter) -> Table:
    """9. Per mine: the mine's own alarm records (YCBJ, RYCS/RYCY/RYXZ/RYQJ files) against the
    alarms minewatch computed over the period: matched, reported only, computed only (not
    reported by the mine); the same query as ``GET /api/v1/mines/{mine}/reconciliation``,
    whose lists give every episode (each list counted up to ``limit``)."""
    start, end = f.period()
    rows: list[dict[str, object]] = []
    for mine in await inspection_repository.mines_in_scope(conn, access.scope, access.mine):
        window = reconciliation_repository.Window(
            str(mine["code"]), start, end, RECONCILIATION_TOLERANCE, f.limit
        )
        lists = await reconciliation_repository.reconcile(conn, window)
        row: dict[str, object] = {"mine_code": mine["code"], "mine_name": mine["name"]}
        for kind, prefix in (("point_alarms", "point"), ("personnel_alarms", "personnel")):
            for part, found in lists[kind].items():
                row[f"{prefix}_{part}"] = len(found)  # type: ignore[arg-type]
        rows.append(row)
    title = ("上报与计算报警核对报表", "Reported vs computed alarms")
    return Table("reconciliation", *title, RECONCILIATION_COLUMNS, rows,
                 _jurisdiction(access), period_text(start, end))  # fmt: skip


def local_days(start: dt.datetime, end: dt.datetime, tz: str) -> list[dt.datetime]:
    """The starts (local midnight, as aware datetimes) of the days of ``tz`` that overlap
    ``[start, end)``."""
    zone = ZoneInfo(tz)
    day = start.astimezone(zone).date()
    out: list[dt.datetime] = []
    while True:
        midnight = dt.datetime.combine(day, dt.time(), zone)
        if midnight >= end:
            return out
        out.append(midnight)
        day += dt.timedelta(days=1)


async def six_systems(conn: AsyncConnection, access: Access, f: ReportFilter) -> Table:
    """10. The six-system supervision check (专项督查): per mine, system (监管平台联网, 安全监控,
    人员定位, 产量监测, 视频调度, 通信联络) and local day: connected now (data within 10
    minutes), the newest data time, completeness (the share of the day's slots, up to now,
    holding any of the system's data), the on-time rate where minewatch knows when data
    arrived (safety readings not flagged late; communications reports stored within
    ``on_time_s``) and the faults open now."""
    start, end = f.period()
    tz = "Asia/Shanghai"
    now = dt.datetime.now(dt.UTC)
    mines = await inspection_repository.mines_in_scope(conn, access.scope, access.mine)
    days = local_days(start, end, tz)
    rows: list[dict[str, object]] = []
    per_system = {}
    for system in inspection_repository.SYSTEMS:
        filled = await inspection_repository.system_days(
            conn, system, access.scope, access.mine, start, end, tz, f.on_time_s
        )
        last, faults = await inspection_repository.system_now(
            conn, system, access.scope, access.mine, comms_repository.DEFAULT_TIMEOUT_S
        )
        per_system[system] = (filled, last, faults)
    slot_of = inspection_repository.SLOT_S
    for mine in mines:
        code = str(mine["code"])
        for system in inspection_repository.SYSTEMS:
            filled, last, faults = per_system[system]
            last_at = last.get(code)
            connected = isinstance(last_at, dt.datetime) and now - last_at <= CONNECTED_WITHIN
            for day in days:
                lo, hi = max(day, start), min(day + dt.timedelta(days=1), end, now)
                if hi <= lo:
                    continue
                slots = math.ceil((hi - lo).total_seconds() / slot_of[system])
                n, share = filled.get((code, day), (0, None))
                rows.append({
                    "mine_code": code, "mine_name": mine["name"],
                    "system": SYSTEM_NAMES[system], "day": day.date().isoformat(),
                    "connected": "在线" if connected else "离线", "last_data_at": last_at,
                    "completeness_pct": min(100.0, 100.0 * n / slots),
                    "on_time_pct": None if share is None else 100.0 * share,
                    "open_faults": None if faults is None else int(faults.get(code, 0)),  # type: ignore[call-overload]
                })  # fmt: skip
                if len(rows) >= f.limit:
                    break
    title = ("六大系统专项督查报表", "Six-system supervision check")
    return Table("six-systems", *title, SIX_SYSTEM_COLUMNS, rows[: f.limit],
                 _jurisdiction(access), period_text(start, end))  # fmt: skip


Build = Callable[[AsyncConnection, Access, ReportFilter], Awaitable[Table]]

#: Every report by its path name.
REPORTS: dict[str, Build] = {
    "alarms": alarms,
    "exceedance-ranking": exceedance_ranking,
    "disposal-compliance": disposal_compliance,
    "data-integrity": data_integrity,
    "calibration-compliance": calibration_compliance,
    "threshold-conformance": threshold_conformance,
    "personnel": personnel,
    "output": output,
    "reconciliation": reconciliation,
    "six-systems": six_systems,
}

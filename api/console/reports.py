"""The remote-inspection reports (远程监察报表): each one query of the repositories, its columns
and its filters. The report API (api/routers/reports.py) and the report pages
(api/routers/console_regulator.py) both build their ``Table`` here."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Query
from psycopg import AsyncConnection

from minewatch.api import report_repository, repository
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


Build = Callable[[AsyncConnection, Access, ReportFilter], Awaitable[Table]]

#: Every report by its path name.
REPORTS: dict[str, Build] = {
    "alarms": alarms,
    "exceedance-ranking": exceedance_ranking,
    "disposal-compliance": disposal_compliance,
    "data-integrity": data_integrity,
    "calibration-compliance": calibration_compliance,
}

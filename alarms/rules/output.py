"""Output over-capacity (超能力生产, domain §9) as alarms on the mine; pure.

重大事故隐患判定标准: a month's raw-coal output above ``output_month_share`` (10%) of the
approved annual capacity, or a year's above ``output_year_share`` (110%), is a major hazard.
Both shares and the capacity are columns of ``mines`` (data, not code).

One episode per period that goes over: it starts at the reading whose increment took the
period's running total strictly above the limit (exactly at the limit is not over) and ends
when the period ends (local time of the mine), since the next period starts from zero. The
totals follow the production API's counter rule (alarms/output_store.py), so an alarm and the
API's ``exceeds_limit`` always agree.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from minewatch.alarms.rules.personnel import AlarmUpdate, Condition, RuleInfo
from minewatch.timeutil import datetime_to_us, us_to_datetime

OUTPUT_MONTH = "output_month"
OUTPUT_YEAR = "output_year"

Period = Literal["month", "year"]

RULES: dict[str, RuleInfo] = {
    OUTPUT_MONTH: RuleInfo("Q01", "exceedance", "mine", "production"),
    OUTPUT_YEAR: RuleInfo("Q02", "exceedance", "mine", "production"),
}
PERIOD_OF: dict[str, Period] = {OUTPUT_MONTH: "month", OUTPUT_YEAR: "year"}


def period_start(t_us: int, period: Period, timezone: str) -> int:
    local = us_to_datetime(t_us).astimezone(ZoneInfo(timezone))
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if period == "year":
        start = start.replace(month=1)
    return datetime_to_us(start)


def period_end(start_us: int, period: Period, timezone: str) -> int:
    """The start of the next period (a local midnight, whatever the UTC offset then)."""
    start = us_to_datetime(start_us).astimezone(ZoneInfo(timezone))
    if period == "year":
        end = dt.datetime(start.year + 1, 1, 1, tzinfo=start.tzinfo)
    else:
        year, month = divmod(start.month, 12)
        end = dt.datetime(start.year + year, month + 1, 1, tzinfo=start.tzinfo)
    return datetime_to_us(end.replace(tzinfo=ZoneInfo(timezone)))


@dataclass(frozen=True, slots=True)
class PeriodOutput:
    """A period's total so far and when its running total first went over the limit."""

    start_us: int
    output_t: float
    crossed_at_us: int | None


def evaluate_output(
    update: AlarmUpdate, mine: str, rule: str, limit_t: float | None,
    periods: list[PeriodOutput], now_us: int, timezone: str, done: int | None,
) -> int | None:  # fmt: skip
    """Bring the mine's episode of ``rule`` in line with ``periods`` (ascending; those with
    new readings) at ``now_us``: a period over its limit raises at its crossing, an episode
    whose period has ended clears at the period's end. ``done`` is the start of the latest
    period that already had its episode (none is raised twice); returns the new one."""
    period = PERIOD_OF[rule]
    key = ("mine", mine, rule)

    def expire(before_us: int) -> None:
        episode = update.get(key)
        if episode is None:
            return
        start = period_start(episode.started_at, period, timezone)
        end = period_end(start, period, timezone)
        if start < before_us or limit_t is None:
            update.clear(key, min(end, now_us) if limit_t is not None else now_us)

    for p in periods:
        expire(p.start_us)
        if limit_t is None or p.crossed_at_us is None:
            continue
        if done is not None and p.start_us < done:
            continue
        if done == p.start_us or not update.raise_(
            mine, key, Condition(p.crossed_at_us, p.output_t, limit_t), now_us
        ):
            update.note_value(key, p.output_t, now_us)
        done = p.start_us
    # The current period: whatever is open from an earlier one has ended by now.
    expire(period_start(now_us, period, timezone))
    return done

"""Server-rendered pages: the Jinja2 environment, the words of the pages in Simplified Chinese
(the default) and English, and what every page needs (who is signed in, the CSRF token of the
browser's session, the language)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from psycopg_pool import AsyncConnectionPool

from minewatch.api import accounts
from minewatch.api.accounts import Identity
from minewatch.api.auth import SESSION_COOKIE
from minewatch.api.console.tables import local_time

LANG_COOKIE = "minewatch_lang"
LANGS = ("zh", "en")

#: The pages' words: key -> (Simplified Chinese, English).
WORDS: dict[str, tuple[str, str]] = {
    "app": ("煤矿安全监控", "Mine safety monitoring"),
    "sign_in": ("登录", "Sign in"),
    "sign_out": ("退出", "Sign out"),
    "username": ("用户名", "Username"),
    "password": ("密码", "Password"),
    "wrong_login": ("用户名或密码错误", "Wrong username or password"),
    "board": ("实时报警", "Live alarms"),
    "overview": ("矿井概况", "Mine overview"),
    "regulator": ("辖区概况", "Jurisdiction"),
    "reports": ("报表", "Reports"),
    "read_only": ("只读", "read-only"),
    "open_alarms": ("当前报警", "Open alarms"),
    "no_alarms": ("无报警", "No open alarms"),
    "time": ("时间", "Time"),
    "started": ("开始时间", "Started"),
    "point": ("测点", "Point"),
    "location": ("位置", "Location"),
    "rule": ("类型", "Rule"),
    "grade": ("等级", "Grade"),
    "value": ("数值", "Value"),
    "max": ("最大值", "Maximum"),
    "state": ("状态", "State"),
    "actions": ("操作", "Actions"),
    "acknowledge": ("确认", "Acknowledge"),
    "shelve": ("搁置", "Shelve"),
    "dispose": ("处置", "Dispose"),
    "record": ("记录", "Record"),
    "reason": ("原因", "Reason"),
    "minutes": ("分钟", "Minutes"),
    "cause": ("异常原因", "Cause"),
    "measures": ("处理措施", "Measures"),
    "open_reason": ("未结束即处置的理由", "Why dispose while still active"),
    "submit": ("提交", "Submit"),
    "cancel": ("取消", "Cancel"),
    "acknowledged": ("已确认", "Acknowledged"),
    "acknowledged_by": ("确认人", "Acknowledged by"),
    "shelved_until": ("搁置至", "Shelved until"),
    "disposed_at": ("处置时间", "Disposed at"),
    "handled_by": ("处置人", "Disposed by"),
    "ended": ("结束时间", "Ended"),
    "escalated": ("已升级", "Escalated"),
    "unit": ("单位", "Unit"),
    "latest": ("最新值", "Latest"),
    "status": ("状态", "Status"),
    "normal": ("正常", "normal"),
    "alarm": ("报警", "alarm"),
    "power_off": ("断电", "power off"),
    "no_data": ("无数据", "no data"),
    "restore": ("复电", "restore"),
    "points": ("测点", "Points"),
    "people": ("井下人员", "People underground"),
    "area": ("区域", "Area"),
    "count": ("人数", "Count"),
    "approved": ("核定人数", "Approved"),
    "cameras": ("视频", "Cameras"),
    "cameras_online": ("在线摄像头", "Cameras online"),
    "online": ("在线", "online"),
    "offline": ("离线", "offline"),
    "curve": ("曲线", "Curve"),
    "substations": ("分站", "Substations"),
    "run_0": ("通信正常", "communicating"),
    "run_1": ("通信中断", "communication lost"),
    "run_2": ("故障", "fault"),
    "run_9": ("未知", "unknown"),
    "run_none": ("无上报", "never reported"),
    "range": ("时段", "Range"),
    "hours": ("小时", "hours"),
    "mine": ("矿井", "Mine"),
    "mines": ("矿井", "Mines"),
    "last_data": ("最后数据时间", "Last data"),
    "silent": ("数据中断", "silent"),
    "never": ("从无数据", "never"),
    "filter": ("查询", "Filter"),
    "start": ("开始", "Start"),
    "end": ("结束", "End"),
    "export": ("导出", "Export"),
    "jurisdiction": ("管辖范围", "Jurisdiction"),
    "period": ("统计时段", "Period"),
    "rows": ("行", "rows"),
    "red": ("红色", "red"),
    "orange": ("橙色", "orange"),
    "yellow": ("黄色", "yellow"),
    "blue": ("蓝色", "blue"),
    "alarm_level": ("报警门限", "alarm level"),
    "poweroff_level": ("断电门限", "power-off level"),
    "restore_level": ("复电门限", "restore level"),
    "incidents": ("事件", "Incidents"),
    "incident": ("事件", "Incident"),
    "members": ("成员报警", "Member alarms"),
    "peak": ("峰值", "peak"),
    "incident_raised": ("报警中", "raised"),
    "incident_acknowledged": ("已确认", "acknowledged"),
    "incident_cleared": ("已恢复", "cleared"),
    "incident_disposed": ("已处置", "disposed"),
    "incident_acknowledge": ("确认事件", "Acknowledge incident"),
    "incident_dispose": ("处置事件", "Dispose incident"),
    "bands": ("报警、标校、中断与预警", "Episodes, calibrations, interruptions, pre-alarms"),
    "band_prealarm": ("预警", "pre-alarm"),
    "prealarms": ("瓦斯预警", "Methane pre-alarms"),
    "prealarm_note": (
        "趋势预测将达报警门限，尚未报警",
        "forecast to reach the alarm level; not an alarm yet",
    ),
    "prealarm_raised": ("预警时间", "Raised"),
    "forecast": ("预测值", "Forecast"),
    "expected_at": ("预计达限时间", "Expected at the level"),
    "time_to_limit": ("距达限", "Time to the level"),
    "lead": ("提前量", "Lead"),
    "minutes_short": ("分钟", "min"),
    "reached": ("已达限", "reached"),
    "before_incident": ("早于事件", "before the incident by"),
    "after_incident": ("晚于事件开始", "after the incident began"),
    "forecast_line": ("预警预测", "pre-alarm forecast"),
    "band_episode": ("报警", "alarm episode"),
    "band_calibration": ("标校", "calibration"),
    "band_interruption": ("数据中断", "data interruption"),
    "kind": ("类别", "Kind"),
    "on_time_s": ("及时上限 (秒)", "On time within (s)"),
    "output_today": ("今日产量", "Output today"),
    "no_output": ("无产量测点", "no belt scale"),
    "approved_capacity": ("核定生产能力", "Approved capacity"),
    "output_month": ("本月产量", "Output this month"),
    "month_limit": ("月上限", "monthly limit"),
    "grid": ("辖区分布", "By division"),
    "county": ("县区", "County"),
    "legend_silent": ("数据中断", "silent"),
    "legend_ok": ("正常", "normal"),
    "lang": ("English", "中文"),
    "times_note": ("时间为北京时间 (UTC+8)", "Times in UTC+8 (mine local time)"),
}


def _templates() -> Environment:
    folder = resources.files("minewatch.api.console") / "templates"
    env = Environment(loader=FileSystemLoader(str(folder)), autoescape=select_autoescape())
    env.filters["local"] = local_time
    return env


@dataclass(frozen=True, slots=True)
class Page:
    """Who looks at the page, in which language, and the CSRF token of their browser session
    (empty for a bearer token or an API key: such a caller sends no cookie to protect)."""

    identity: Identity | None
    lang: str
    csrf: str

    def t(self, key: str) -> str:
        zh, en = WORDS[key]
        return en if self.lang == "en" else zh


class Renderer:
    """The pages' templates, loaded once per application."""

    def __init__(self) -> None:
        self.env = _templates()

    def html(self, name: str, page: Page, status: int = 200, **context: object) -> HTMLResponse:
        template = self.env.get_template(name)
        return HTMLResponse(template.render(page=page, t=page.t, **context), status_code=status)


def language(request: Request) -> str:
    lang = request.cookies.get(LANG_COOKIE, "zh")
    return lang if lang in LANGS else "zh"


async def page_for(request: Request, pool: AsyncConnectionPool, identity: Identity) -> Page:
    csrf = ""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie and "authorization" not in request.headers:
        async with pool.connection() as conn:
            session = await accounts.session_identity(conn, cookie)
        csrf = "" if session is None else session[1]
    return Page(identity, language(request), csrf)


def renderer(request: Request) -> Renderer:
    return request.app.state.renderer

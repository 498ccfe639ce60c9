"""The live board at ``/`` of the HTTP API: one HTML page (templates/board.html) whose script
(static/board.js) asks the API's own JSON routes and draws the tables and charts in the browser.
Everything it loads comes from the service itself (no CDN, no web font), and its
Content-Security-Policy forbids anything else.

Pure: the API (servicescore/app/api.py) parses the request and calls ``page``, ``registry`` and
``asset``; nothing here touches storage.

    page("zh", 5, {"window": "30d"}, None, "Asia/Shanghai", {"/appraisals/latest": False})
    registry("en")["kpis"][0]   # {"name": "resolutions", "label": "Resolutions", "unit": ...}
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime
from functools import cache
from importlib import resources
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from appraisal.report import LABELS as REPORT_LABELS
from schemas.errors import ServicescoreError
from schemas.kpis import REGISTRY, UNIT_RANGES

LANGS = ("zh", "en")
DEFAULT_LANG = "zh"  # the department's language, as the printed report's default
REFRESH_S = 5  # seconds between two refreshes when ?refresh= does not say
DEFAULT_WINDOW = "30d"  # the table's window when the URL names none: rolling, like the charts
CHART_DAYS = 30
# The table's KPI columns and the charts, in the order shown. Their names, units and formats come
# from the registry (GET /kpis/registry), never from the script.
TABLE_KPIS = ("resolutions", "frt_avg_s", "frt_sla_rate", "aht_avg_s", "fcr_rate",
              "repeat_rate_7d", "onsite_on_time_rate", "csat_avg", "nps", "complaint_rate")
CHART_KPIS = ("frt_avg_s", "fcr_rate", "csat_avg")

# How a value of each unit is written: the rules of appraisal.report.kpi_value (the printed
# sheets), as data static/format.js applies, so the board and the sheets show a number alike.
# A test runs format.js against kpi_value.
FORMATS: dict[str, dict] = {
    "ratio": {"style": "percent", "places": 1},  # 0.923 -> "92.3 %", 0.92 -> "92 %"
    "seconds": {"style": "duration"},  # 6720 -> "1h52m", 2700 -> "45m", 20 -> "20s"
    "count": {"style": "fixed", "places": 0},
    "csat": {"style": "fixed", "places": 2},
    "score": {"style": "fixed", "places": 1, "trim": True},  # "95.0" -> "95"
    "nps": {"style": "fixed", "places": 1, "trim": True},
}

# Every word the board shows, one dict per language: the template and the script read only
# this (KPI, grade and role names are the printed report's, so both say the same).
_ZH = {
    "html_lang": "zh-CN", "title": "售后服务实时看板", "window": "统计窗口",
    "windows": {"24h": "近 24 小时", "7d": "近 7 天", "30d": "近 30 天", "month": "本月"},
    "engineers": "工程师指标", "teams": "团队指标", "engineer": "工程师", "team": "团队",
    "unassigned": "未分配", "no_team": "无团队", "open_tickets": "未结工单",
    "overdue_tickets": "超时工单", "oldest_open_age_s": "最久未结",
    "charts": "近 {days} 天趋势（按日）", "department": "全部门", "no_data": "暂无数据",
    "grades": "最近冻结的考核结果", "period": "考核期间", "closed_at": "冻结时间",
    "score": "得分", "grade": "等级", "role": "岗位",
    "no_close": "尚无已冻结的月度考核。", "updated": "更新于 {time}，每 {seconds} 秒刷新",
    "offline": "无法连接服务，{seconds} 秒后重试",
    "token_needed": "考核结果需要 API 令牌才能查看。",
    "token": "API 令牌", "token_submit": "查看", "token_wrong": "令牌不正确。",
    "language": "English", "none": "—",
}
_EN = {
    "html_lang": "en", "title": "After-sales live board", "window": "Window",
    "windows": {"24h": "last 24 hours", "7d": "last 7 days", "30d": "last 30 days",
                "month": "this month"},
    "engineers": "Engineers", "teams": "Teams", "engineer": "Engineer", "team": "Team",
    "unassigned": "unassigned", "no_team": "no team", "open_tickets": "Open tickets",
    "overdue_tickets": "Overdue", "oldest_open_age_s": "Oldest open",
    "charts": "Last {days} days, per day", "department": "Department", "no_data": "no data yet",
    "grades": "Latest frozen appraisal", "period": "Period", "closed_at": "Frozen at",
    "score": "Score", "grade": "Grade", "role": "Role",
    "no_close": "No month has been closed yet.",
    "updated": "Updated {time}, refreshing every {seconds} s",
    "offline": "The service does not answer; retrying in {seconds} s",
    "token_needed": "The appraisal results need the API token.", "token": "API token",
    "token_submit": "Show", "token_wrong": "The token is wrong.", "language": "中文",
    "none": "—",
}
WORDS = {
    lang: {**words, "grades_names": REPORT_LABELS[lang]["grades"],
           "roles": REPORT_LABELS[lang]["roles"]}
    for lang, words in (("zh", _ZH), ("en", _EN))
}
KPI_NAMES = {lang: REPORT_LABELS[lang]["kpis"] for lang in LANGS}

ASSETS = {"format.js": "text/javascript", "board.js": "text/javascript", "board.css": "text/css"}
# The page may load and ask only its own origin: nothing reaches a network beyond the service.
# (Styles set through the DOM's style properties are allowed; no inline script or style tag.)
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "connect-src 'self'; img-src 'self' data:; base-uri 'none'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
    "Vary": "Accept-Language",
    "X-Content-Type-Options": "nosniff",
}


def language(asked: str | None, accept: str = "") -> str:
    """``?lang=`` when given (zh or en), else the first of the browser's Accept-Language
    (by q-value) that the board speaks, else Chinese."""
    if asked is not None:
        if asked not in LANGS:
            raise ServicescoreError(f"lang must be one of {', '.join(LANGS)}")
        return asked
    offers = []
    for position, part in enumerate(accept.split(",")[:32]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGS and quality > 0:
            offers.append((-quality, position, primary))
    return min(offers)[2] if offers else DEFAULT_LANG


def registry(lang: str) -> dict:
    """The KPI registry (schemas/kpis.py) as the board reads it: every field with its unit,
    direction, sample-count field, the range of its unit, its name in ``lang`` and how to write
    its values; and the format of each unit (the backlog's ages are seconds)."""
    names = KPI_NAMES[lang]
    return {
        "lang": lang,
        "kpis": [{"name": k.name, "label": names.get(k.name, k.name), "unit": k.unit,
                  "direction": k.direction, "samples": k.samples, "family": k.family,
                  "range": list(UNIT_RANGES[k.unit]) if k.unit in UNIT_RANGES else None,
                  "format": FORMATS[k.unit]} for k in REGISTRY.values()],
        "formats": FORMATS,
    }


def page(lang: str, refresh_s: int, window: dict[str, str], bounds: tuple[int, int] | None,
         timezone: str, needs_token: dict[str, bool]) -> str:
    """The board's HTML. ``window`` is the window's query parameters as the URL gave them (the
    script asks /kpis with the same ones); ``bounds`` its [from, to) in epoch ms when it is
    fixed (a period, from/to), None for a rolling window; ``needs_token`` says which of the
    routes the script calls want the bearer token."""
    words = WORDS[lang]
    config = {"lang": lang, "refresh_s": refresh_s, "window": window,
              "bounds": list(bounds) if bounds else None, "timezone": timezone,
              "table": TABLE_KPIS, "charts": CHART_KPIS, "chart_days": CHART_DAYS,
              "needs_token": needs_token, "words": words}
    month = datetime.fromtimestamp(time.time(), ZoneInfo(timezone)).strftime("%Y-%m")
    choices = [(words["windows"][name], {"window": name}) for name in ("24h", "7d", "30d")]
    choices.append((f"{words['windows']['month']} ({month})", {"period": month}))
    return _templates().get_template("board.html").render(
        t=words, lang=lang, config=config, refresh_s=refresh_s,
        choices=[(label, _href({**chosen, "lang": lang, "refresh": str(refresh_s)}),
                  chosen == window) for label, chosen in choices],
        other=_href({**window, "lang": "en" if lang == "zh" else "zh",
                     "refresh": str(refresh_s)}),
        window_text=_window_text(words, window, bounds, timezone),
        versions={name: _asset(name)[2] for name in ASSETS})


def asset(name: str) -> tuple[bytes, str, str] | None:
    """A static file of the board: its bytes, content type and a version (hash of the bytes,
    the ETag); None for any other name."""
    return _asset(name) if name in ASSETS else None


@cache
def _asset(name: str) -> tuple[bytes, str, str]:
    body = resources.files("servicescore.app").joinpath("static", name).read_bytes()
    return body, ASSETS[name], hashlib.sha256(body).hexdigest()[:16]


@cache
def _templates() -> Environment:
    return Environment(loader=PackageLoader("servicescore.app", "templates"),
                       autoescape=select_autoescape(["html"]), undefined=StrictUndefined,
                       trim_blocks=True, lstrip_blocks=True)


def _href(params: dict[str, str]) -> str:
    return "/?" + urlencode(params)


def _window_text(words: dict, window: dict[str, str], bounds: tuple[int, int] | None,
                 timezone: str) -> str:
    if bounds is None:
        return words["windows"].get(window.get("window", ""), json.dumps(window))
    zone = ZoneInfo(timezone)
    lo, hi = (datetime.fromtimestamp(ms / 1000, zone).strftime("%Y-%m-%d %H:%M")
              for ms in bounds)
    label = f"{window['period']}: " if "period" in window else ""
    return f"{label}{lo} – {hi} ({timezone})"

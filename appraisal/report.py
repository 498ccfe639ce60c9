"""The printed appraisal report (appraisal.md "Outputs"): a sheet per engineer (考核表), a team page
and an index, as self-contained HTML. Pure: the data of ``appraisal.history.report_data`` in,
HTML strings out; ``write_report`` alone touches the disk.

    pages = render_pages(report_data(storage, "2026-11"), lang="zh")
    # {"index.html": "<!doctype html>...", "team.html": ..., "sheet-E001.html": ..., ...}

Money and scores are read from the frozen rows' exact decimal text and never pass through a
float; the charts are inline SVG (appraisal/charts.py), so a sheet opens and prints offline.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from functools import cache
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from appraisal.charts import distribution_svg, trend_svg
from appraisal.scorecard import INSUFFICIENT_LABEL, half_up
from schemas.kpis import REGISTRY

LANGS = ("zh", "en")
COACHING_NOTES = 3  # the KPIs that cost the most points; more would dilute the advice
_GRADE_COLOURS = ("#2e7d32", "#1565c0", "#f9a825", "#c62828", "#6a1b9a", "#00838f")
_NO_DATA_COLOUR = "#9e9e9e"

# Every word a page shows, one dict per language; the templates only look words up here.
ZH = {
    "html_lang": "zh-CN", "sheet": "绩效考核表", "team": "团队考核汇总", "index": "考核报告",
    "period": "考核期间", "engineer": "工程师", "name": "姓名", "role": "岗位",
    "closed_at": "冻结时间", "scheme": "考核方案", "content_hash": "数据指纹",
    "kpi": "考核指标", "value": "实际值", "target": "目标值", "floor": "底线值",
    "samples": "样本数", "score": "得分", "weight": "权重", "effective_weight": "有效权重",
    "status": "计分", "included": "计入", "null": "不计入：无数据",
    "below_min_samples": "不计入：样本不足（{samples} < {min}）",
    "total": "总分", "grade": "等级", "bonus": "绩效奖金", "flags": "标记",
    "trend": "近期得分趋势", "trend_empty": "暂无已冻结的得分", "coaching": "改进建议",
    "coaching_note": "{kpi}：得分 {score}，有效权重 {weight}，失分 {lost}。达到目标值 {target} "
                     "可使总分提高 {lost} 分（{total} → {then}{grade}）。",
    "coaching_grade": "，等级升至{grade}",
    "coaching_none": "各项计分指标均已达到目标值。",
    "coaching_insufficient": "本期没有可计分的指标，需由主管人工评定。",
    "excluded_note": "不计入的指标的权重按比例分配给计入的指标。",
    "distribution": "等级分布", "ranking": "排名", "rank": "名次", "bonus_total": "奖金合计",
    "engineers": "人数", "mean_score": "平均分", "sheets": "个人考核表",
    "signature": "被考核人签字", "appraiser": "考核人签字", "date": "日期",
    "points": "分", "none": "—",
    "grades": {}, "flag_names": {"consecutive_fail": "连续不合格", "excellent_award": "优秀奖励",
                                 "needs_review": "需人工评定"},
    "roles": {"field_engineer": "现场工程师", "support_specialist": "技术支持专员",
              "service_rep": "客服代表"},
    "currency": {"CNY": "元"},
    "kpis": {
        "frt_sla_rate": "首次响应达标率", "frt_avg_s": "平均首次响应时长",
        "aht_sla_rate": "解决时效达标率", "aht_avg_s": "平均处理时长",
        "fcr_rate": "一次解决率", "repeat_rate_7d": "7日重复报修率",
        "repeat_rate_30d": "30日重复报修率", "onsite_on_time_rate": "上门准时率",
        "onsite_arrival_avg_s": "平均上门到达时长", "csat_avg": "客户满意度",
        "csat_positive_rate": "满意率", "nps": "净推荐值", "complaint_rate": "投诉率",
        "complaints": "投诉数", "resolutions": "解决工单数", "escalations": "升级数",
        "assessment_compliance": "服务规范考核", "assessment_attitude": "服务态度考核",
        "assessment_collaboration": "团队协作考核", "assessment_training": "培训考核",
        "assessment_knowledge": "知识库贡献", "assessment_review360": "360度评估",
    },
}
EN = {
    "html_lang": "en", "sheet": "Appraisal sheet", "team": "Team summary",
    "index": "Appraisal report", "period": "Period", "engineer": "Engineer", "name": "Name",
    "role": "Role", "closed_at": "Frozen at", "scheme": "Scheme", "content_hash": "Inputs hash",
    "kpi": "KPI", "value": "Value", "target": "Target", "floor": "Floor", "samples": "Samples",
    "score": "Score", "weight": "Weight", "effective_weight": "Effective weight",
    "status": "Counted", "included": "included", "null": "excluded: no data",
    "below_min_samples": "excluded: too few samples ({samples} < {min})",
    "total": "Total", "grade": "Grade", "bonus": "Bonus", "flags": "Flags",
    "trend": "Recent scores", "trend_empty": "no frozen scores yet", "coaching": "Coaching notes",
    "coaching_note": "{kpi}: score {score} on an effective weight of {weight} costs {lost} "
                     "points. Reaching the target of {target} would add {lost} to the total "
                     "({total} → {then}{grade}).",
    "coaching_grade": ", {grade}",
    "coaching_none": "Every counted KPI is at its target.",
    "coaching_insufficient": "No KPI could be scored this period: a manager decides.",
    "excluded_note": "The weight of excluded KPIs is shared out over the included ones.",
    "distribution": "Grade distribution", "ranking": "Ranking", "rank": "Rank",
    "bonus_total": "Bonus total", "engineers": "Engineers", "mean_score": "Mean score",
    "sheets": "Appraisal sheets", "signature": "Engineer's signature",
    "appraiser": "Appraiser's signature", "date": "Date", "points": "points", "none": "—",
    "grades": {"excellent": "Excellent", "good": "Good", "pass": "Pass", "fail": "Fail",
               "insufficient_data": "Insufficient data"},
    "flag_names": {"consecutive_fail": "second fail in a row",
                   "excellent_award": "excellence award", "needs_review": "needs review"},
    "roles": {"field_engineer": "Field engineer", "support_specialist": "Support specialist",
              "service_rep": "Service representative"},
    "currency": {},
    "kpis": {
        "frt_sla_rate": "First response within SLA", "frt_avg_s": "Mean first response time",
        "aht_sla_rate": "Resolution within SLA", "aht_avg_s": "Mean handling time",
        "fcr_rate": "First-contact resolution", "repeat_rate_7d": "Repeat faults (7 days)",
        "repeat_rate_30d": "Repeat faults (30 days)", "onsite_on_time_rate": "On-site on time",
        "onsite_arrival_avg_s": "Mean on-site arrival time", "csat_avg": "Customer satisfaction",
        "csat_positive_rate": "Satisfied customers", "nps": "Net promoter score",
        "complaint_rate": "Complaint rate", "complaints": "Complaints",
        "resolutions": "Resolutions", "escalations": "Escalations",
        "assessment_compliance": "Compliance audit", "assessment_attitude": "Attitude review",
        "assessment_collaboration": "Collaboration review",
        "assessment_training": "Training assessment",
        "assessment_knowledge": "Knowledge contribution", "assessment_review360": "360 review",
    },
}
LABELS = {"zh": ZH, "en": EN}


# ---------------------------------------------------------------- numbers for people

def fixed(value: str | Decimal | None, places: int = 2) -> str:
    """``89.5`` -> ``89.50``, half-up; None -> ``—``."""
    if value is None:
        return "—"
    return f"{Decimal(value).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP):f}"


def percent(ratio: str | Decimal | None) -> str:
    """A ratio as a percentage to one decimal, ``.0`` dropped: 0.92 -> ``92 %``."""
    if ratio is None:
        return "—"
    shown = fixed(Decimal(ratio) * 100, 1).removesuffix(".0")
    return f"{'0' if shown == '-0' else shown} %"


def duration(seconds: str | Decimal | float | None) -> str:
    """Seconds to the minute, half-up: 6720 -> ``1h52m``, 2700 -> ``45m``, 20 -> ``20s``."""
    if seconds is None:
        return "—"
    exact = Decimal(str(seconds))
    if exact < 60:
        return f"{fixed(exact, 0)}s"
    minutes = int((exact / 60).quantize(Decimal(1), ROUND_HALF_UP))
    hours, rest = divmod(minutes, 60)
    return f"{hours}h{rest:02d}m" if hours else f"{rest}m"


def money(amount: str | Decimal | None, currency: str, lang: str) -> str:
    """``1,000 元`` (Chinese, CNY) or ``1,000 CNY``; cents only when there are any."""
    if amount is None:
        return "—"
    exact = Decimal(amount)
    shown = f"{exact:,.0f}" if exact == exact.to_integral_value() else f"{exact:,.2f}"
    return f"{shown} {LABELS[lang]['currency'].get(currency, currency)}"


def kpi_value(kpi: str, value: str | Decimal | None) -> str:
    """A KPI value (or target, floor) in its unit: ratios as percentages, seconds as hours and
    minutes, CSAT to two decimals, scores and NPS to one, counts whole."""
    if value is None:
        return "—"
    unit = REGISTRY[kpi].unit if kpi in REGISTRY else None
    if unit == "ratio":
        return percent(value)
    if unit == "seconds":
        return duration(value)
    if unit == "count":
        return fixed(value, 0)
    if unit in ("score", "nps"):
        return fixed(value, 1).removesuffix(".0")
    return fixed(value, 2)


def moment(instant: str | None) -> str:
    """An RFC 3339 instant as people read it: ``2026-12-08 09:30 +08:00``."""
    if instant is None:
        return "—"
    day, _, rest = instant.partition("T")
    return f"{day} {rest[:5]} {rest[8:]}".strip()


# ---------------------------------------------------------------- coaching notes

@dataclass(frozen=True)
class Note:
    """A KPI that costs points: what reaching its target would add to the total."""

    kpi: str
    score: Decimal
    share: Decimal  # its effective weight, in percent of the total
    gain: Decimal  # points the total gains at target = points this KPI costs now
    total_then: Decimal  # the total with this KPI at target


def coaching(row: Mapping, limit: int = COACHING_NOTES) -> list[Note]:
    """The included KPIs that cost the most points, most first: effective weight ×
    (100 − score) / 100. The effective weight is recomputed exactly from the scheme weights of
    the included KPIs (as the total is), not from its 2-decimal rounding."""
    included = [k for k in row["kpis"] if k["included"]]
    shared = sum((Fraction(Decimal(k["weight"])) for k in included), Fraction(0))
    if row["score"] is None or not shared:
        return []
    notes = []
    for k in included:
        share = Fraction(Decimal(k["weight"])) * 100 / shared
        lost = share * (100 - Fraction(Decimal(k["score"]))) / 100
        if half_up(lost) > 0:
            notes.append(Note(k["kpi"], Decimal(k["score"]), half_up(share), half_up(lost),
                              min(half_up(Fraction(Decimal(row["score"])) + lost),
                                  Decimal("100.00"))))
    return sorted(notes, key=lambda n: (-n.gain, n.kpi))[:limit]


def grade_for(total: Decimal, grades: list[Mapping]) -> Mapping:
    """The scheme's first grade whose min <= total (the scheme's JSON: min as text)."""
    return next(g for g in grades if Decimal(g["min"]) <= total)


# ---------------------------------------------------------------- pages

def render_pages(data: Mapping, lang: str = "zh") -> dict[str, str]:
    """Every page of the report, file name -> HTML: a sheet per appraisal, the team page when
    the data is the whole team's (no ``engineer`` asked for), and the index."""
    if lang not in LABELS:
        raise ValueError(f"unknown language {lang!r} (one of {', '.join(LANGS)})")
    view = _View(data, lang)
    pages = {sheet_file(r["engineer_id"]): view.page("sheet.html", **view.sheet(r))
             for r in data["appraisals"]}
    team = data.get("engineer") is None
    if team:
        pages["team.html"] = view.page("team.html", **view.team())
    pages["index.html"] = view.page("index.html", team=team, rows=view.ranking())
    return pages


def write_report(data: Mapping, out: Path, lang: str = "zh") -> list[Path]:
    """The pages of ``render_pages`` written into ``out`` (created if missing), UTF-8."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, html in render_pages(data, lang).items():
        (out / name).write_text(html, encoding="utf-8")
        written.append(out / name)
    return written


def sheet_file(engineer_id: str) -> str:
    """A file name for an engineer's sheet. Ids are free text: anything beyond letters, digits,
    ``-``, ``_`` and ``.`` is replaced, with a short hash of the id so two ids never meet."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", engineer_id).lstrip(".")
    if safe != engineer_id:
        safe += "-" + hashlib.sha256(engineer_id.encode()).hexdigest()[:8]
    return f"sheet-{safe}.html"


@cache
def _templates() -> Environment:
    return Environment(loader=PackageLoader("appraisal", "templates"),
                       autoescape=select_autoescape(["html"]), undefined=StrictUndefined,
                       trim_blocks=True, lstrip_blocks=True)


class _View:
    """The words and numbers of one report, as the templates show them."""

    def __init__(self, data: Mapping, lang: str):
        self.data, self.lang, self.t = data, lang, LABELS[lang]
        self.scheme = data["scheme"]
        self.currency = self.scheme["currency"]
        self.names = data.get("names") or {}

    def page(self, template: str, **values) -> str:
        return _templates().get_template(template).render(
            t=self.t, period=self.data["period"], closed_at=moment(self.data["closed_at"]),
            scheme_version=self.scheme["version"], **values)

    def grade(self, name: str, frozen_label: str | None = None) -> str:
        if self.lang == "zh":
            return frozen_label or next((g["label"] for g in self.scheme["grades"]
                                         if g["name"] == name), INSUFFICIENT_LABEL)
        return self.t["grades"].get(name, name)

    def kpi(self, name: str) -> str:
        return self.t["kpis"].get(name, name)

    def sheet(self, row: Mapping) -> dict:
        return {"row": row, "name": self.names.get(row["engineer_id"], ""),
                "role": self.t["roles"].get(row["role"], row["role"]),
                "score": fixed(row["score"]), "grade": self.grade(row["grade"], row["grade_label"]),
                "bonus": money(row["bonus"], self.currency, self.lang),
                "flags": [self.t["flag_names"].get(f, f) for f in row["flags"]],
                "lines": [self.line(row["role"], k) for k in row["kpis"]],
                "excluded": any(not k["included"] for k in row["kpis"]),
                "trend": Markup(self.trend(row["engineer_id"])),
                "notes": [self.note(n, row) for n in coaching(row)],
                "insufficient": row["score"] is None}

    def line(self, role: str, k: Mapping) -> dict:
        status = self.t["included"] if k["included"] else self.t.get(k.get("reason") or "null",
                                                                     k.get("reason") or "")
        if k.get("reason") == "below_min_samples":
            status = status.format(samples=k["samples"], min=self._min_samples(role, k["kpi"]))
        return {"kpi": k["kpi"], "name": self.kpi(k["kpi"]), "included": k["included"],
                "value": kpi_value(k["kpi"], k["value"]), "samples": k["samples"],
                "target": kpi_value(k["kpi"], k["target"]),
                "floor": kpi_value(k["kpi"], k["floor"]), "score": fixed(k["score"]),
                "weight": fixed(k["weight"], 0) if Decimal(k["weight"]) % 1 == 0
                else fixed(k["weight"]),
                "effective_weight": fixed(k["effective_weight"]), "status": status}

    def _min_samples(self, role: str, kpi: str) -> str:
        rules = self.scheme["roles"].get(role, {}).get("kpis", [])
        return str(next((r["min_samples"] for r in rules if r["kpi"] == kpi), "?"))

    def note(self, note: Note, row: Mapping) -> str:
        target = next(k["target"] for k in row["kpis"] if k["kpi"] == note.kpi)
        then = grade_for(note.total_then, self.scheme["grades"])["name"]
        change = (self.t["coaching_grade"].format(grade=self.grade(then))
                  if then != row["grade"] else "")
        return self.t["coaching_note"].format(
            kpi=self.kpi(note.kpi), score=fixed(note.score), weight=fixed(note.share),
            lost=fixed(note.gain), target=kpi_value(note.kpi, target),
            total=fixed(row["score"]), then=fixed(note.total_then), grade=change)

    def trend(self, engineer: str) -> str:
        trend = self.data["trend"]
        scores = trend["scores"].get(engineer, [None] * len(trend["periods"]))
        bands = [(Decimal(g["min"]), self.grade(g["name"])) for g in self.scheme["grades"]
                 if Decimal(g["min"]) > 0]
        return trend_svg(trend["periods"], [None if s is None else Decimal(s) for s in scores],
                         bands, self.t["trend"], self.t["trend_empty"])

    def ranking(self) -> list[dict]:
        """Highest score first, no score last; equal scores share a rank (1, 2, 2, 4)."""
        rows = sorted(self.data["appraisals"], key=lambda r: (
            r["score"] is None, -Decimal(r["score"] or 0), r["engineer_id"]))
        shown, rank = [], 0
        for i, r in enumerate(rows):
            if i == 0 or r["score"] != rows[i - 1]["score"]:
                rank = i + 1
            shown.append({**self.sheet_summary(r), "rank": rank if r["score"] is not None
                          else "—"})
        return shown

    def sheet_summary(self, r: Mapping) -> dict:
        return {"engineer_id": r["engineer_id"], "name": self.names.get(r["engineer_id"], ""),
                "role": self.t["roles"].get(r["role"], r["role"]), "score": fixed(r["score"]),
                "grade": self.grade(r["grade"], r["grade_label"]),
                "bonus": money(r["bonus"], self.currency, self.lang),
                "flags": [self.t["flag_names"].get(f, f) for f in r["flags"]],
                "file": sheet_file(r["engineer_id"])}

    def team(self) -> dict:
        rows = self.data["appraisals"]
        counts = [(g["name"], self.grade(g["name"]), _GRADE_COLOURS[i % len(_GRADE_COLOURS)])
                  for i, g in enumerate(self.scheme["grades"])]
        counts.append(("insufficient_data", self.grade("insufficient_data"), _NO_DATA_COLOUR))
        bars = [(label, sum(r["grade"] == name for r in rows), colour)
                for name, label, colour in counts]
        scored = [Decimal(r["score"]) for r in rows if r["score"] is not None]
        bonus = sum((Decimal(r["bonus"]) for r in rows if r["bonus"] is not None), Decimal(0))
        return {"rows": self.ranking(), "bars": bars,
                "chart": Markup(distribution_svg(bars, self.t["distribution"])),
                "engineers": len(rows),
                "mean": fixed(half_up(Fraction(sum(scored)) / len(scored)) if scored else None),
                "bonus_total": money(bonus, self.currency, self.lang)}

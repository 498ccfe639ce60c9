"""The printed report (appraisal/report.py, ``servicescore report``): its numbers, coaching notes
and charts as pure functions, the trend read from earlier closes, and the pages as a person sees
them: the real command writes them from three closed months and headless Chromium opens each one
(no console error, the values of ``servicescore appraisals`` in the DOM, a screenshot that shows
the chart and the table)."""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
import zlib
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from appraisal.charts import BARS_BOX, TREND_BOX, bar_heights, trend_points, trend_svg
from appraisal.close import close_period
from appraisal.history import recent_scores, report_data
from appraisal.report import (
    coaching,
    duration,
    fixed,
    kpi_value,
    money,
    percent,
    render_pages,
    sheet_file,
)
from appraisal.results import appraisals
from appraisal.scheme import default_scheme
from schemas.period import parse_instant, parse_period
from servicescore.app import roster
from servicescore.dev.simulate import simulate
from tests.test_close import TZ, facts_from, store

MONTHS = ("2026-09", "2026-10", "2026-11")
AFTER_GRACE = parse_instant("2027-01-09", TZ)
REPO = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------- numbers for people

def test_numbers_are_written_for_people():
    assert [fixed("89.5"), fixed("89.995"), fixed(None)] == ["89.50", "90.00", "—"]
    assert [percent("0.92"), percent("0.9234"), percent("0.0"), percent("1")] == [
        "92 %", "92.3 %", "0 %", "100 %"]
    assert [duration(6720), duration("6749.9"), duration(2700), duration(20),
            duration(172800)] == ["1h52m", "1h52m", "45m", "20s", "48h00m"]
    assert money("1000", "CNY", "zh") == "1,000 元"
    assert money("-500", "CNY", "en") == "-500 CNY"
    assert money("1234.5", "USD", "zh") == "1,234.50 USD"
    assert [kpi_value("frt_sla_rate", "0.95"), kpi_value("aht_avg_s", "28800"),
            kpi_value("csat_avg", "4.8"), kpi_value("nps", "12.94"),
            kpi_value("assessment_compliance", "95"), kpi_value("complaints", "3")] == [
        "95 %", "8h00m", "4.80", "12.9", "95", "3"]


def test_a_sheet_file_name_is_safe_and_never_shared_by_two_ids():
    assert sheet_file("E001") == "sheet-E001.html"
    odd = [sheet_file("E/1"), sheet_file("E_1"), sheet_file("../E 1")]
    assert len(set(odd)) == 3
    assert all(re.fullmatch(r"sheet-[A-Za-z0-9_.-]+\.html", name) for name in odd)


# ---------------------------------------------------------------- coaching notes

def _row(score: str, kpis: list[tuple[str, str, str | None, bool]]) -> dict:
    return {"score": score, "kpis": [{"kpi": k, "weight": w, "score": s, "included": inc}
                                     for k, w, s, inc in kpis]}


def test_coaching_names_the_kpis_costing_most_points_on_their_effective_weight():
    # 30 + 20 + 10 included (60), 40 excluded: effective weights 50, 33.33.., 16.66..
    row = _row("63.33", [("fcr_rate", "30", "40.00", True), ("csat_avg", "20", "100.00", True),
                         ("nps", "10", "40.00", True), ("complaint_rate", "40", None, False),
                         ])
    notes = coaching(row)
    assert [(n.kpi, n.share, n.gain, n.total_then) for n in notes] == [
        ("fcr_rate", Decimal("50.00"), Decimal("30.00"), Decimal("93.33")),
        ("nps", Decimal("16.67"), Decimal("10.00"), Decimal("73.33"))]  # csat is at target


def test_coaching_keeps_the_three_costliest_and_none_without_a_score():
    row = _row("50.00", [(f"assessment_{d}", "20", "50.00", True) for d in
                         ("compliance", "attitude", "training", "knowledge", "collaboration")])
    assert [n.gain for n in coaching(row)] == [Decimal("10.00")] * 3
    assert coaching(_row(None, [("fcr_rate", "100", None, False)])) == []


# ---------------------------------------------------------------- charts

def test_the_trend_chart_places_each_score_on_a_0_to_100_scale():
    box = TREND_BOX
    points = trend_points([Decimal(100), None, Decimal(0), Decimal(50)])
    assert points[1] is None
    assert [y for _, y in (points[0], points[2], points[3])] == [
        box.top, box.bottom, (box.top + box.bottom) / 2]
    xs = [p[0] for p in points if p]
    assert xs == sorted(xs) and xs[0] > box.left and xs[-1] < box.right
    assert trend_points([Decimal(70)]) == [((box.left + box.right) / 2,
                                            round(box.bottom - 0.7 * (box.bottom - box.top),
                                                  1))]
    svg = trend_svg(["2026-09", "2026-10", "2026-11", "2026-12"],
                    [Decimal(100), None, Decimal(0), Decimal(50)], [(Decimal(90), "优秀")],
                    "趋势", "无")
    lines = re.findall(r'<polyline class="trend" points="([^"]+)"', svg)
    assert lines == [f"{points[0][0]},{points[0][1]}",  # the gap breaks the line
                     f"{points[2][0]},{points[2][1]} {points[3][0]},{points[3][1]}"]
    assert svg.count("<circle") == 3 and "优秀 90" in svg


def test_the_distribution_chart_scales_bars_to_the_largest():
    full = BARS_BOX.bottom - BARS_BOX.top
    assert bar_heights([0, 4, 2]) == [0.0, full, full / 2]
    assert bar_heights([0, 0]) == [0.0, 0.0]


# ---------------------------------------------------------------- reading closed periods

@pytest.fixture(scope="module")
def season():
    """Three months (September to November) for 8 engineers, as facts and a roster."""
    sim = simulate(parse_period(MONTHS[0], TZ).start.date(), 80, 8, seed=3, timezone=TZ)
    return facts_from(sim.records), [roster.from_engineer(e) for e in sim.roster]


@pytest.fixture
def closed_season(storage, season):
    facts, people = season
    store(storage, facts)
    roster.store(storage, people)
    for month in MONTHS:
        close_period(storage, month, default_scheme(), AFTER_GRACE)
    return storage


def test_the_trend_is_the_engineers_scores_in_the_last_closed_periods_of_the_kind(
        closed_season):
    close_period(closed_season, "2026-Q4", default_scheme(), AFTER_GRACE)  # another kind
    found = recent_scores(closed_season, "2026-11", 2)
    assert found["periods"] == ["2026-10", "2026-11"]
    for i, month in enumerate(found["periods"]):
        frozen = {r["engineer_id"]: r["score"] for r in appraisals(closed_season, month, TZ)}
        assert {e: line[i] for e, line in found["scores"].items()} == frozen
    assert recent_scores(closed_season, "2026-10")["periods"] == ["2026-09", "2026-10"]
    assert recent_scores(closed_season, "2026-11", engineer="E002")["scores"].keys() == {"E002"}


def test_the_report_of_an_open_period_has_no_appraisal(closed_season):
    assert report_data(closed_season, "2026-12")["appraisals"] == []


def test_every_page_is_rendered_in_both_languages(closed_season):
    data = report_data(closed_season, "2026-11")
    zh, en = render_pages(data, "zh"), render_pages(data, "en")
    assert zh.keys() == en.keys() == {"index.html", "team.html",
                                      *(sheet_file(r["engineer_id"]) for r in data["appraisals"])}
    assert "绩效考核表" in zh["sheet-E001.html"] and "Appraisal sheet" in en["sheet-E001.html"]
    one = render_pages(report_data(closed_season, "2026-11", "E002"), "zh")
    assert one.keys() == {"index.html", "sheet-E002.html"}  # no team page for one engineer


# ---------------------------------------------------------------- as a person sees it

def seed(data_dir: str) -> None:
    """Stores the season into a data folder of its own (run in a child process: chDB allows one
    engine per process, and the tests' own engine is already open here)."""
    from servicescore.app.service import open_storage
    from servicescore.core.settings import load_settings

    sim = simulate(parse_period(MONTHS[0], TZ).start.date(), 80, 8, seed=3, timezone=TZ)
    storage = open_storage(load_settings(data_dir=Path(data_dir)), migrate=True)
    store(storage, facts_from(sim.records))
    roster.store(storage, [roster.from_engineer(e) for e in sim.roster])
    storage.close()


@pytest.fixture(scope="module")
def printed(tmp_path_factory):
    """The real commands: three months closed, then the report written in Chinese (the whole
    team) and in English (one engineer); also what ``servicescore appraisals`` says."""
    base = tmp_path_factory.mktemp("report")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICESCORE_")}
    env.update(SERVICESCORE_DATA_DIR=str(base / "data"), SERVICESCORE_TIMEZONE=TZ)

    def run(*args: str) -> str:
        done = subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr
        return done.stdout

    cli = (sys.executable, "-m", "servicescore.cli")
    run(sys.executable, "-c", f"from tests.test_report import seed; seed({str(base / 'data')!r})")
    for month in MONTHS:
        run(*cli, "close", "--period", month, "--early")
    said = run(*cli, "report", "--period", "2026-11", "--out", str(base / "zh"))
    run(*cli, "report", "--period", "2026-11", "--engineer", "E002", "--lang", "en",
        "--out", str(base / "en"))
    frozen = orjson.loads(run(*cli, "appraisals", "--period", "2026-11", "--format", "json"))
    return base, said, frozen


def chromium(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["chromium", "--headless=new", "--disable-gpu", "--no-sandbox",
                           "--enable-logging=stderr", "--v=0", *args],
                          capture_output=True, text=True, timeout=120)


def test_the_command_writes_a_sheet_per_engineer_a_team_page_and_an_index(printed):
    base, said, frozen = printed
    assert said.startswith(f"wrote {len(frozen) + 2} page(s)")
    names = {p.name for p in (base / "zh").iterdir()}
    assert names == {"index.html", "team.html", *(sheet_file(r["engineer_id"]) for r in frozen)}
    assert {p.name for p in (base / "en").iterdir()} == {"index.html", "sheet-E002.html"}


def test_every_page_opens_offline_without_a_console_error(printed):
    base, _, _ = printed
    pages = sorted((base / "zh").iterdir()) + sorted((base / "en").iterdir())
    for page in pages:
        html = page.read_text(encoding="utf-8")
        # self-contained: nothing to fetch (the SVG namespace is a name, not a request)
        assert not re.search(r'(src|href)="(https?:)?//', html), page.name
        assert "<script" not in html, page.name
        opened = chromium("--dump-dom", page.as_uri())
        assert opened.returncode == 0, opened.stderr
        assert "</main>" in opened.stdout, page.name
        problems = [line for line in opened.stderr.splitlines()
                    if "CONSOLE" in line or "Uncaught" in line]
        assert problems == [], (page.name, problems)


def test_each_sheet_shows_the_frozen_score_grade_and_bonus(printed):
    base, _, frozen = printed
    for row in frozen:
        dom = chromium("--dump-dom", (base / "zh" / sheet_file(row["engineer_id"])).as_uri())
        shown = {key: _text_of(dom.stdout, key) for key in ("engineer", "score", "grade",
                                                            "bonus")}
        bonus = "—" if row["bonus"] is None else f"{Decimal(row['bonus']):,.0f} 元"
        assert shown == {"engineer": row["engineer_id"], "score": fixed(row["score"]),
                         "grade": row["grade_label"], "bonus": bonus}
        assert dom.stdout.count('<tr class="included"') + dom.stdout.count(
            '<tr class="excluded"') == len(row["kpis"])


def test_the_team_page_ranks_everyone_with_the_bonus_total(printed):
    base, _, frozen = printed
    dom = chromium("--dump-dom", (base / "zh" / "team.html").as_uri()).stdout
    ranked = re.findall(r'<tr data-engineer="([^"]+)">', dom)
    want = sorted(frozen, key=lambda r: (r["score"] is None, -Decimal(r["score"] or 0),
                                         r["engineer_id"]))
    assert ranked == [r["engineer_id"] for r in want]
    total = sum(Decimal(r["bonus"]) for r in frozen if r["bonus"] is not None)
    assert _text_of(dom, "bonus-total") == f"{total:,.0f} 元"
    assert dom.count('<rect class="bar"') == len(default_scheme().grades) + 1


def test_a_screenshot_of_a_sheet_shows_its_chart_and_table(printed, tmp_path):
    base, _, _ = printed
    shot = tmp_path / "sheet.png"
    done = chromium(f"--screenshot={shot}", "--window-size=1240,1754",
                    (base / "en" / "sheet-E002.html").as_uri())
    assert done.returncode == 0 and shot.exists(), done.stderr
    width, height, pixels = _rgb(shot.read_bytes())
    assert (width, height) == (1240, 1754)
    count = {}
    for i in range(0, len(pixels), 3):
        colour = pixels[i:i + 3]
        count[colour] = count.get(colour, 0) + 1
    assert count.get(bytes((0x15, 0x65, 0xc0)), 0) > 300  # the trend line and its points
    assert count.get(bytes((0xee, 0xf2, 0xf7)), 0) > 5000  # the KPI table's header cells
    assert sum(n for c, n in count.items() if sum(c) < 200) > 5000  # text


def _text_of(dom: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}"[^>]*>([^<]*)<', dom)
    assert found, element_id
    return found.group(1).strip()


def _rgb(png: bytes) -> tuple[int, int, bytes]:
    """The pixels of an 8-bit RGB PNG (what Chromium writes), unfiltered (PNG spec 9)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height, depth, colour = struct.unpack(">IIBB", png[16:26])
    assert (depth, colour) == (8, 2)
    data, at = b"", 8
    while at < len(png):
        (size,), kind = struct.unpack(">I", png[at:at + 4]), png[at + 4:at + 8]
        if kind == b"IDAT":
            data += png[at + 8:at + 8 + size]
        at += 12 + size
    raw, stride, out = zlib.decompress(data), width * 3, bytearray()
    previous = bytearray(stride)
    for row in range(height):
        kind, line = raw[row * (stride + 1)], bytearray(raw[row * (stride + 1) + 1:
                                                          (row + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - 3] if i >= 3 else 0
            up, corner = previous[i], previous[i - 3] if i >= 3 else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else
                                      up if pb <= pc else corner)) & 255
        out += line
        previous = line
    return width, height, bytes(out)

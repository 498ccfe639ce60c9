"""How the commands show rows: tables a person can read at any terminal width, CSV a
spreadsheet can open safely, values in human units (servicescore/cli/output.py)."""

from __future__ import annotations

import csv
import io

import pytest
from rich.cells import cell_len

from schemas.kpis import FIELDS
from servicescore.cli.output import as_csv, duration, human, layout, percent, render


@pytest.mark.parametrize(("seconds", "shown"), [
    (0, "0s"), (0.4, "0.4s"), (9.94, "9.9s"), (45, "45s"), (59.6, "1m00s"), (725, "12m05s"),
    (6719, "1h52m"), (3599.7, "1h00m"), (86399, "1d00h"), (3 * 86400 + 4 * 3600, "3d04h")])
def test_durations_in_the_two_largest_units(seconds, shown):
    assert duration(seconds) == shown


@pytest.mark.parametrize(("ratio", "shown"), [
    (0.89, "89 %"), (0.8923, "89 %"), (1.0, "100 %"), (0.0, "0 %"),
    # rounding never claims always or never of what is neither
    (0.996, "99.6 %"), (0.004, "0.4 %")])
def test_ratios_as_whole_percents(ratio, shown):
    assert percent(ratio) == shown


def test_values_by_the_unit_of_their_field():
    assert human("aht_avg_s", 6719.123) == "1h52m"
    assert human("frt_sla_rate", 0.8923) == "89 %"
    assert human("csat_avg", 4.6234) == "4.62"
    assert human("nps", 42.0) == "42" and human("assessment_training", 87.25) == "87.2"
    assert human("resolutions", 12) == "12"
    assert human("oldest_open_age_s", 90061) == "1d01h"  # by its name: *_s are seconds
    assert human("csat_avg", None) == "—"
    assert human("truncated", True) == "yes"
    assert human("resolved_at", "2026-11-23T14:05:09+08:00") == "2026-11-23 14:05:09"
    assert human("flags", ["insufficient_samples", "new"]) == "insufficient_samples, new"


def read_csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_csv_has_its_header_even_without_rows():
    assert read_csv(as_csv([], ["engineer_id", "csat_avg"])) == [["engineer_id", "csat_avg"]]


def test_csv_nulls_are_empty_booleans_one_way_numbers_exact():
    rows = [{"id": "E-1", "avg": None, "fcr": True, "late": False, "x": 0.1 + 0.2, "n": 7,
             "bonus": -500, "csat": [5, 4]}]
    assert read_csv(as_csv(rows)) == [
        ["id", "avg", "fcr", "late", "x", "n", "bonus", "csat"],
        ["E-1", "", "true", "false", "0.30000000000000004", "7", "-500", "[5, 4]"]]


@pytest.mark.parametrize("text", ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)",
                                  "\tcmd", "\r=1"])
def test_csv_cells_a_spreadsheet_would_run_as_formulas_are_neutralised(text):
    (_, (cell,)) = read_csv(as_csv([{"comment": text}]))
    assert cell == "'" + text


def test_csv_quotes_what_needs_it_and_keeps_the_text():
    rows = [{"comment": '多次转接, "没人负责"\n第二行', "id": "E,1"}]
    assert read_csv(as_csv(rows))[1] == ['多次转接, "没人负责"\n第二行', "E,1"]


def kpi_rows(count: int = 4) -> list[dict]:
    rows = []
    for n in range(count):
        row = {"engineer_id": f"E{n:03d}", "team_id": "华东一组" if n % 2 else None}
        row.update({f: (3600.5 * (n + 1) if f.endswith("_s") or f.endswith("_s_bh")
                        else 0.5 + n / 10) for f in FIELDS})
        rows.append(row)
    return rows


@pytest.mark.parametrize("width", [60, 80, 100, 132, 250])
def test_every_kpi_column_is_shown_once_within_the_width(width):
    columns = ["engineer_id", "team_id", *FIELDS]
    cells = {c: [human(c, r[c]) for r in kpi_rows()] for c in columns}
    blocks = layout(columns, cells, width)
    assert [c for block in blocks for c, _, _ in block[1:]] == columns[1:]
    assert all(block[0][0] == "engineer_id" for block in blocks)  # the key in every block
    text = render(kpi_rows(), columns, "KPIs", width)
    assert max(cell_len(line) for line in text.splitlines()) <= width


@pytest.mark.parametrize("width", [60, 80, 100])
def test_headers_break_only_between_words(width):
    columns = ["engineer_id", "team_id", *FIELDS]
    cells = {c: [human(c, r[c]) for r in kpi_rows()] for c in columns}
    for block in layout(columns, cells, width):
        for column, column_width, lines in block:
            assert "".join(lines) == column
            assert all(line.endswith("_") for line in lines[:-1]), lines
            assert len(lines) <= 2 and all(cell_len(line) <= column_width for line in lines)


def test_a_wide_terminal_shows_one_table_with_one_line_headers():
    columns = ["engineer_id", "team_id", "resolutions", "frt_sla_rate", "aht_avg_s"]
    text = render(kpi_rows(), columns, None, 200)
    header = text.splitlines()[0].split()
    assert header == columns
    assert "1h00m" in text and "50 %" in text and "华东一组" in text


def test_long_text_folds_within_the_width_and_keeps_every_character():
    reason = "not valid UTF-8: " + "x" * 150
    rows = [{"topic": "survey-submitted", "offset": 7, "reason": reason}]
    text = render(rows, None, "Dead letters", 80)
    assert max(cell_len(line) for line in text.splitlines()) <= 80
    assert "x" * 150 in "".join(line.split("   ")[-1].strip() for line in text.splitlines())


def test_no_rows_says_so():
    assert render([], ["engineer_id"], "KPIs 2026-11", 80,
                  empty="no KPI sample in 2026-11") == "KPIs 2026-11\n(no KPI sample in 2026-11)\n"


def test_a_table_for_a_file_has_no_escape_codes_or_trailing_blanks():
    text = render(kpi_rows(), ["engineer_id", "csat_avg"], "KPIs", 80, note="2 of 46")
    assert "\x1b" not in text
    assert all(line == line.rstrip() for line in text.splitlines())

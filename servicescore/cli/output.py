"""How a command shows rows: JSON for programs, CSV for spreadsheets, a table for people.

JSON and CSV are complete and exact: every field, numbers as computed. The table is for
reading: values in human units (``1h52m``, ``89 %``, ``4.62``), times in the business timezone,
``—`` for nothing, and fitted to the terminal. Headers wrap only at ``_`` (never inside a word),
and columns that do not fit the width go into a further block that repeats the key column,
so nothing is cut or folded away.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import sys
from collections.abc import Sequence

from schemas.kpis import REGISTRY

FORMATS = ("json", "table", "csv")
MIN_WIDTH = 40  # narrower than this, no table reads well: lay it out as if it were this wide
GAP = 3  # the space between two columns of a table (rich's padding and the separator)
NOTHING = "—"
# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection");
# tab and carriage return too, which some of them strip before looking.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_ISO_TIME = re.compile(r"^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(\.\d+)?([+-]\d\d:\d\d|Z)$")


def emit(rows: list[dict], fmt: str, title: str | None = None,
         columns: Sequence[str] | None = None, note: str | None = None,
         empty: str = "nothing to show") -> None:
    """``rows`` in ``fmt``. ``columns``: the fields in order (a CSV header even when there are
    no rows; the table shows only these). ``note`` is printed under a table, ``empty`` instead
    of a table without rows."""
    if fmt == "json":
        print(json.dumps(rows, ensure_ascii=False, indent=1))
    elif fmt == "csv":
        sys.stdout.write(as_csv(rows, columns))
    else:
        sys.stdout.write(render(rows, columns, title, terminal_width(), note, empty,
                                styled=sys.stdout.isatty()))


# ------------------------------------------------------------------------------------ CSV

def as_csv(rows: list[dict], columns: Sequence[str] | None = None) -> str:
    """A header line (from ``columns``, else the first row's fields), then one line per row."""
    out = io.StringIO()
    header = list(columns) if columns is not None else list(rows[0]) if rows else []
    if not header:
        return ""
    # CRLF, as RFC 4180 has it: the csv module quotes a cell holding a character of the line
    # terminator, so with "\n" alone a stray "\r" in a cell would go out unquoted.
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([csv_cell(row.get(column)) for column in header])
    return out.getvalue()


def csv_cell(value) -> str:
    """One way for everything: null as an empty cell, booleans ``true``/``false``, lists and
    objects as JSON, numbers as Python writes them (exact), and text that a spreadsheet would
    run as a formula behind a ``'`` (numbers are never such text: -500 stays a number)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, dict)):
        text = json.dumps(value, ensure_ascii=False)
    else:
        text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


# ------------------------------------------------------------------------- human units

def human(column: str, value) -> str:
    """A value as a person reads it, by the unit its field has (schemas/kpis.py, else its
    name: ``*_s`` seconds, ``*_rate`` a ratio)."""
    if value is None:
        return NOTHING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(human(column, v) for v in value) or NOTHING
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, (int, float)):
        unit = unit_of(column)
        if unit == "seconds":
            return duration(value)
        if unit == "ratio":
            return percent(value)
        if unit == "csat":
            return f"{value:.2f}"
        if unit in ("nps", "score"):
            return f"{value:.1f}".removesuffix(".0")
        if isinstance(value, float):
            return f"{value:.2f}".rstrip("0").rstrip(".")
        return str(value)
    text = str(value)
    if (when := _ISO_TIME.match(text)) is not None:
        return f"{when[1]} {when[2]}"  # the offset is the business timezone's (table titles)
    return text


def unit_of(column: str) -> str | None:
    kpi = REGISTRY.get(column)
    if kpi is not None:
        return kpi.unit
    if column.endswith("_s") or column.endswith("_s_bh"):
        return "seconds"
    if column.endswith("_rate"):
        return "ratio"
    return None


def duration(seconds: float) -> str:
    """The two largest units, rounded: ``45s``, ``12m05s``, ``1h52m``, ``3d04h``; under ten
    seconds with a tenth (``0.4s``)."""
    if seconds < 0:
        return "-" + duration(-seconds)
    if seconds < 9.95:
        return f"{seconds:.1f}s".replace(".0s", "s")
    if seconds < 59.5:
        return f"{round(seconds)}s"
    if seconds < 3600 - 0.5:
        minutes, secs = divmod(round(seconds), 60)
        return f"{minutes}m{secs:02d}s"
    if seconds < 86400 - 30:
        hours, minutes = divmod(round(seconds / 60), 60)
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(round(seconds / 3600), 24)
    return f"{days}d{hours:02d}h"


def percent(ratio: float) -> str:
    """A whole percent (``89 %``), with a tenth where rounding would say 0 % or 100 % of
    something that is neither (an SLA met 99.6 % of the time has not been met always)."""
    value = ratio * 100
    whole = round(value)
    if (whole == 100 and value < 100) or (whole == 0 and value > 0):
        return f"{value:.1f} %"
    if (whole == -100 and value > -100) or (whole == 0 and value < 0):
        return f"{value:.1f} %"
    return f"{whole} %"


# ------------------------------------------------------------------------------- table

def terminal_width() -> int:
    """The terminal's width (``COLUMNS`` wins); 100 when the output is not a terminal."""
    return max(MIN_WIDTH, shutil.get_terminal_size((100, 24)).columns)


def render(rows: list[dict], columns: Sequence[str] | None, title: str | None, width: int,
           note: str | None = None, empty: str = "nothing to show", styled: bool = False,
           keys: int = 1) -> str:
    """The table as text at ``width`` characters: a block of columns per slice that fits, the
    first ``keys`` columns (the row's identity) repeated in each."""
    from rich.console import Console

    width = max(width, MIN_WIDTH)
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=styled, no_color=not styled,
                      highlight=False, emoji=False, soft_wrap=False)
    if title:
        console.print(title, style="bold", markup=False)
    columns = list(columns) if columns is not None else list(rows[0]) if rows else []
    if not rows:
        console.print(f"({empty})", markup=False)
    else:
        cells = {c: [human(c, row.get(c)) for row in rows] for c in columns}
        numeric = {c: not c.endswith("_id") and all(_is_number(row.get(c)) for row in rows)
                   for c in columns}
        blocks = layout(columns, cells, width, min(keys, len(columns)))
        for n, block in enumerate(blocks):
            if n:
                console.print()
            console.print(_table(block, cells, numeric, len(rows)))
    if note:
        console.print(note, style="dim", markup=False)
    text = out.getvalue()
    # rich pads every line to the table's width: a file or a diff should not carry that.
    return text if styled else "".join(line.rstrip() + "\n" for line in text.splitlines())


def _is_number(value) -> bool:
    """Numbers right-aligned: also exact decimals carried as text (a score of "87.50")."""
    if value is None or isinstance(value, (int, float)) and not isinstance(value, bool):
        return True
    return isinstance(value, str) and re.fullmatch(r"-?\d+(\.\d+)?", value) is not None


def _table(block: list[tuple[str, int, list[str]]], cells: dict[str, list[str]],
           numeric: dict[str, bool], count: int):
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for column, width, header in block:
        fold = max(_cell_len(text) for text in cells[column]) > width
        table.add_column("\n".join(header), width=width, no_wrap=not fold,
                         overflow="fold", justify="right" if numeric[column] else "left")
    for i in range(count):
        table.add_row(*(cells[column][i] for column, _, _ in block))
    return table


def layout(columns: list[str], cells: dict[str, list[str]], width: int,
           keys: int = 1) -> list[list[tuple[str, int, list[str]]]]:
    """Blocks of (column, width, header lines) that each fit ``width``.

    A header is one line when the table fits that way, else it wraps at ``_`` into at most two
    lines as narrow as the column's values allow. What still does not fit goes on in another
    block, after the key columns again. A column of long text (a dead letter's reason) is
    capped at half the width and its cells fold."""
    cap = max(12, width // 2)
    content = {c: min(max((_cell_len(t) for t in cells[c]), default=0), cap) for c in columns}
    one_line = {c: (max(content[c], _cell_len(c)), [c]) for c in columns}
    if _total(w for w, _ in one_line.values()) <= width:
        return [[(c, *one_line[c]) for c in columns]]
    wrapped = {c: _wrap_header(c, content[c]) for c in columns}
    if _total(w for w, _ in wrapped.values()) <= width:
        return [[(c, *wrapped[c]) for c in columns]]
    key_part = [(c, *wrapped[c]) for c in columns[:keys]]
    room = width - _total(w for _, w, _ in key_part) - GAP
    blocks, current, used = [], [], 0
    for column in columns[keys:]:
        w, header = wrapped[column]
        if w > room:  # wider than a whole block: give it the room and fold its cells
            w, header = max(room, 1), _split(column, max(room, 1))
        if current and used + GAP + w > room:
            blocks.append(current)
            current, used = [], 0
        used += (GAP if current else 0) + w
        current.append((column, w, header))
    if current or not blocks:
        blocks.append(current)
    return [key_part + block for block in blocks]


def _total(widths) -> int:
    widths = list(widths)
    return sum(widths) + GAP * max(len(widths) - 1, 0)


def _wrap_header(header: str, content: int) -> tuple[int, list[str]]:
    """The narrowest width >= ``content`` at which ``header`` wraps at ``_`` into at most two
    lines (or its longest piece, when it has more pieces than that allows)."""
    pieces = _pieces(header)
    width = max(content, max(_cell_len(p) for p in pieces))
    while len(_split(header, width)) > 2:
        width += 1
    return width, _split(header, width)


def _pieces(header: str) -> list[str]:
    return [p for p in re.split(r"(?<=[_ ])", header) if p]


def _split(header: str, width: int) -> list[str]:
    """Greedy lines of whole pieces (a piece longer than ``width`` stands on its own)."""
    lines: list[str] = []
    for piece in _pieces(header):
        if lines and _cell_len(lines[-1] + piece) <= width:
            lines[-1] += piece
        else:
            lines.append(piece)
    return [line.rstrip() for line in lines] or [header]


def _cell_len(text: str) -> int:
    from rich.cells import cell_len

    return max((cell_len(line) for line in text.splitlines()), default=0)

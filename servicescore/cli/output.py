"""How a command shows rows: JSON for programs, a table for people, CSV for spreadsheets."""

from __future__ import annotations

import csv
import io
import json
import sys

FORMATS = ("json", "table", "csv")


def emit(rows: list[dict], fmt: str, title: str | None = None) -> None:
    if fmt == "json":
        print(json.dumps(rows, ensure_ascii=False, indent=1))
    elif fmt == "csv":
        sys.stdout.write(as_csv(rows))
    else:
        table(rows, title)


def as_csv(rows: list[dict]) -> str:
    """A header from the first row; lists and objects as JSON in their cell."""
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: json.dumps(v, ensure_ascii=False)
                             if isinstance(v, (list, dict)) else v for k, v in row.items()})
    return out.getvalue()


def table(rows: list[dict], title: str | None) -> None:
    from rich.console import Console
    from rich.table import Table

    shown = Table(title=title, show_lines=False)
    columns = list(rows[0]) if rows else ["(nothing in this window)"]
    for column in columns:
        shown.add_column(column, overflow="fold")
    for row in rows:
        shown.add_row(*(_cell(row[c]) for c in columns))
    Console(width=max(120, 14 * len(columns))).print(shown)


def _cell(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)

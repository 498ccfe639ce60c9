"""The simulation's files: the events as JSON Lines for ``servicescore replay``, and the roster as
the CSV ``servicescore roster import`` reads."""

from __future__ import annotations

import csv
import json
import os
from typing import IO

from servicescore.dev.simulate.staff import Engineer


def write_jsonl(records: list[tuple[str, dict]], path_or_file: str | os.PathLike | IO) -> int:
    """One ``{"topic": ..., "event": {...}}`` per line, UTF-8; returns the number of lines."""
    lines = (json.dumps({"topic": t, "event": e}, ensure_ascii=False) + "\n" for t, e in records)
    if isinstance(path_or_file, (str, os.PathLike)):
        with open(path_or_file, "w", encoding="utf-8", newline="\n") as out:
            return _write_lines(lines, out)
    return _write_lines(lines, path_or_file)


def write_roster_csv(roster: list[Engineer], path_or_file: str | os.PathLike | IO) -> None:
    """The roster as CSV: ``engineer_id,name,role,team_id,active`` (active is true/false)."""
    if isinstance(path_or_file, (str, os.PathLike)):
        with open(path_or_file, "w", encoding="utf-8", newline="") as out:
            _write_roster(roster, out)
    else:
        _write_roster(roster, path_or_file)


def _write_lines(lines, out: IO) -> int:
    text_mode = hasattr(out, "encoding")  # text streams have it, binary ones do not
    count = 0
    for line in lines:
        out.write(line if text_mode else line.encode("utf-8"))
        count += 1
    return count


def _write_roster(roster: list[Engineer], out: IO) -> None:
    # Imported here: it brings pydantic and the ClickHouse client, which the events do not need.
    from servicescore.app.roster import HEADER, from_engineer

    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)  # the columns the import requires, defined once
    for e in roster:
        record = from_engineer(e)
        writer.writerow([_csv_cell(record[column]) for column in HEADER])


def _csv_cell(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return value

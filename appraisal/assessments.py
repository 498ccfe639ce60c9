"""People's assessments from CSV (appraisal.md "Assessments entered by people").

Columns ``engineer_id, dimension, score, assessor_role, assessor_id, period, comment``. Each row
becomes an ``assessment-recorded`` event whose ``event_id`` is derived from the row's content,
so importing the same file twice counts once. A file with any bad row is refused whole, every
bad row named with its line number and reason.
"""

from __future__ import annotations

import csv
import hashlib

from pydantic import ValidationError

from schemas.deadletter import describe
from schemas.errors import ServicescoreError
from schemas.events import AssessmentRecorded

HEADER = ("engineer_id", "dimension", "score", "assessor_role", "assessor_id", "period",
          "comment")
_OPTIONAL = ("assessor_id", "period", "comment")


class AssessmentsRefused(ServicescoreError):
    """The file is refused whole; the message names every bad row."""


def read_assessments(text: str, source: str, now_ms: int) -> list[dict]:
    """The file's rows as wire events of ``assessment-recorded``, or ``AssessmentsRefused``."""
    reader = csv.DictReader(text.lstrip("\ufeff").splitlines())
    header = tuple(h.strip() for h in reader.fieldnames or ())
    if header != HEADER:
        raise AssessmentsRefused(f"{source}: the header must be {','.join(HEADER)}")
    events, problems = [], []
    for line, row in enumerate(reader, start=2):
        event, problem = _event(row, now_ms)
        if problem:
            problems.append(f"line {line}: {problem}")
        else:
            events.append(event)
    if problems:
        raise AssessmentsRefused(f"{source}: {len(problems)} bad row(s), nothing imported: "
                                 + "; ".join(problems))
    return events


def _event(row: dict, now_ms: int) -> tuple[dict | None, str | None]:
    if None in row:  # more cells than columns
        return None, "more cells than the header has columns"
    values = {k.strip(): (v or "").strip() for k, v in row.items()}
    content = "\x1f".join(values.get(c, "") for c in HEADER)
    event = {"event_id": "assess-" + hashlib.sha256(content.encode()).hexdigest()[:32],
             "occurred_at": now_ms, "source": "assess-import",
             **{k: v for k, v in values.items() if v or k not in _OPTIONAL}}
    try:
        event["score"] = float(values["score"])
    except ValueError:
        return None, f"score: not a number ({values['score'][:20]!r})"
    try:
        AssessmentRecorded.model_validate(event)
    except ValidationError as exc:
        return None, describe(exc)
    return event, None

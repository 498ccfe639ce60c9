"""The report's charts as inline SVG strings, drawn here in Python: a sheet must print and open
offline, so no JavaScript charting library and nothing fetched from a network.

    trend_svg(["2026-10", "2026-11"], [Decimal("81.5"), Decimal("89.5")], [(90, "优秀"), ...])
    distribution_svg([("优秀", 3, "#2e7d32"), ("良好", 5, "#1565c0"), ...])
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import NamedTuple

from markupsafe import escape

WIDTH, HEIGHT = 640, 240
TEXT = "#222"
MUTED = "#888"
LINE = "#1565c0"


class Box(NamedTuple):
    """The plot area inside the SVG, in SVG units."""

    left: float
    top: float
    right: float
    bottom: float


TREND_BOX = Box(96, 20, WIDTH - 16, HEIGHT - 36)
INSET = 28  # the first and last period stay clear of the grade labels and the edge
BARS_BOX = Box(24, 24, WIDTH - 24, HEIGHT - 40)


def trend_points(scores: Sequence[Decimal | None],
                 box: Box = TREND_BOX) -> list[tuple[float, float] | None]:
    """Where each score sits on a 0..100 scale, periods spread evenly left to right (a lone
    period in the middle); None stays None, a gap in the line."""
    return [None if s is None else (x, _y(float(s), box))
            for x, s in zip(_xs(len(scores), box), scores, strict=True)]


def _xs(count: int, box: Box) -> list[float]:
    if count == 1:
        return [round((box.left + box.right) / 2, 1)]
    left, right = box.left + INSET, box.right - INSET
    return [round(left + i * (right - left) / (count - 1), 1) for i in range(count)]


def _y(score: float, box: Box) -> float:
    return round(box.bottom - score / 100 * (box.bottom - box.top), 1)


def trend_svg(periods: Sequence[str], scores: Sequence[Decimal | None],
              bands: Sequence[tuple[Decimal, str]], title: str, empty: str) -> str:
    """A line of the scores per period with the grade minimums as dashed lines; ``bands`` is
    (min, label) per grade, ``empty`` what to say when no period has a score."""
    box = TREND_BOX
    parts = [_open(title), f'<line x1="{box.left}" y1="{box.bottom}" x2="{box.right}" '
             f'y2="{box.bottom}" stroke="{MUTED}"/>']
    for low, label in bands:
        y = _y(float(low), box)
        parts.append(f'<line x1="{box.left}" y1="{y}" x2="{box.right}" y2="{y}" '
                     f'stroke="#ccc" stroke-dasharray="4 3"/>'
                     f'<text x="{box.left - 6}" y="{y + 4}" text-anchor="end" font-size="12" '
                     f'fill="{MUTED}">{escape(label)} {_number(low)}</text>')
    points = trend_points(scores, box)
    for segment in _segments(points):
        shown = " ".join(f"{x},{y}" for x, y in segment)
        parts.append(f'<polyline class="trend" points="{shown}" fill="none" stroke="{LINE}" '
                     f'stroke-width="2"/>')
    for period, score, point, x in zip(periods, scores, points, _xs(len(periods), box),
                                       strict=True):
        parts.append(f'<text x="{x}" y="{HEIGHT - 14}" text-anchor="middle" font-size="12" '
                     f'fill="{TEXT}">{escape(period)}</text>')
        if point is not None:
            parts.append(f'<circle cx="{point[0]}" cy="{point[1]}" r="4" fill="{LINE}"/>'
                         f'<text x="{point[0]}" y="{point[1] - 9}" text-anchor="middle" '
                         f'font-size="12" fill="{TEXT}">{Decimal(score):.2f}</text>')
    if not any(points):
        parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" '
                     f'font-size="14" fill="{MUTED}">{escape(empty)}</text>')
    return "".join(parts) + "</svg>"


def bar_heights(counts: Sequence[int], box: Box = BARS_BOX) -> list[float]:
    """Each bar's height, the tallest filling the plot area."""
    top = max(counts, default=0)
    return [round(c / top * (box.bottom - box.top), 1) if top else 0.0 for c in counts]


def distribution_svg(bars: Sequence[tuple[str, int, str]], title: str) -> str:
    """One bar per (label, count, colour), its count above it and its label below."""
    box = BARS_BOX
    slot = (box.right - box.left) / max(len(bars), 1)
    parts = [_open(title),
             f'<line x1="{box.left}" y1="{box.bottom}" x2="{box.right}" y2="{box.bottom}" '
             f'stroke="{MUTED}"/>']
    for i, ((label, count, colour), height) in enumerate(
            zip(bars, bar_heights([c for _, c, _ in bars], box), strict=True)):
        x, middle = box.left + i * slot + slot * 0.2, box.left + (i + 0.5) * slot
        parts.append(f'<rect class="bar" x="{round(x, 1)}" y="{round(box.bottom - height, 1)}" '
                     f'width="{round(slot * 0.6, 1)}" height="{height}" fill="{colour}"/>'
                     f'<text x="{middle}" y="{round(box.bottom - height - 6, 1)}" '
                     f'text-anchor="middle" font-size="13" fill="{TEXT}">{count}</text>'
                     f'<text x="{middle}" y="{box.bottom + 20}" text-anchor="middle" '
                     f'font-size="13" fill="{TEXT}">{escape(label)}</text>')
    return "".join(parts) + "</svg>"


def _open(title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
            f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(title)}">'
            f"<title>{escape(title)}</title>")


def _segments(points: Sequence[tuple[float, float] | None]) -> list[list[tuple[float, float]]]:
    """Runs of consecutive points: a period without a score breaks the line."""
    runs: list[list[tuple[float, float]]] = [[]]
    for point in points:
        if point is None:
            runs.append([])
        else:
            runs[-1].append(point)
    return [run for run in runs if run]


def _number(value: Decimal | float | None) -> str:
    return "" if value is None else f"{Decimal(value).normalize():f}"

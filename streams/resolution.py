"""The business math of one resolution and of survey credit (kpis.md), as pure functions."""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from streams.episode import Episode, Lifecycle

DAY_MS = 86_400_000


def within_days(t_ms: int, since_ms: int, days: int) -> bool:
    """'Within N days after': 0 <= t - since <= N x 86400 s."""
    return 0 <= t_ms - since_ms <= days * DAY_MS


def duration_s(start_ms: int, end_ms: int) -> float:
    """Seconds from start to end; clock skew (a negative duration) counts as 0."""
    return max(0, end_ms - start_ms) / 1000


def reopened_within(life: Lifecycle, resolved_ms: int, days: int) -> bool:
    """A reopen of the ticket within ``days`` after ``resolved_ms`` (reopens are in order)."""
    first = bisect_left(life.reopens, resolved_ms)
    return first < len(life.reopens) and within_days(life.reopens[first], resolved_ms, days)


def first_contact(life: Lifecycle, episode: Episode) -> bool:
    """First-contact resolution: episode 1, no escalation in it, resolved by the first responder
    (or nobody responded), and no reopen within 7 days after it."""
    resolved = episode.resolution
    responder = life.first_response["engineer_id"] if life.first_response else None
    return (
        episode.number == 1
        and not episode.escalations
        and responder in (None, resolved["engineer_id"])
        and not reopened_within(life, resolved["t"], 7)
    )


def survey_credit(life: Lifecycle, survey_ms: int) -> tuple[str | None, str]:
    """Who a survey at ``survey_ms`` is credited to, and by which rule."""
    latest = bisect_right(life.resolved_times, survey_ms) - 1
    if latest >= 0:
        return life.resolvers[latest], "resolution"
    if life.first_response is not None:
        return life.first_response["engineer_id"], "first_response"
    if life.opened.get("assignee_id"):
        return life.opened["assignee_id"], "assignee"
    return None, "none"


def owner(life: Lifecycle) -> str | None:
    """Who holds an open ticket now: the last escalation's target, else the assignee, else the
    first responder (the live view's backlog per engineer)."""
    if life.target:
        return life.target
    if life.opened.get("assignee_id"):
        return life.opened["assignee_id"]
    return life.first_response["engineer_id"] if life.first_response else None

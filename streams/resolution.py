"""The business math of one resolution and of survey credit (kpis.md), as pure functions."""

from __future__ import annotations

from streams.episode import Episode, Lifecycle

DAY_MS = 86_400_000


def within_days(t_ms: int, since_ms: int, days: int) -> bool:
    """'Within N days after': 0 <= t - since <= N x 86400 s."""
    return 0 <= t_ms - since_ms <= days * DAY_MS


def duration_s(start_ms: int, end_ms: int) -> float:
    """Seconds from start to end; clock skew (a negative duration) counts as 0."""
    return max(0, end_ms - start_ms) / 1000


def reopened_within(life: Lifecycle, resolved_ms: int, days: int) -> bool:
    return any(within_days(t, resolved_ms, days) for t in life.reopens)


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
    latest = None
    for episode in life.resolutions():
        if episode.resolution["t"] <= survey_ms:
            latest = episode.resolution
    if latest is not None:
        return latest["engineer_id"], "resolution"
    if life.first_response is not None:
        return life.first_response["engineer_id"], "first_response"
    if life.opened.get("assignee_id"):
        return life.opened["assignee_id"], "assignee"
    return None, "none"


def owner(life: Lifecycle) -> str | None:
    """Who holds an open ticket now: the last escalation's target, else the assignee, else the
    first responder (the live view's backlog per engineer)."""
    for rec, _ in reversed(life.escalations):
        if rec.get("to_engineer_id"):
            return rec["to_engineer_id"]
    if life.opened.get("assignee_id"):
        return life.opened["assignee_id"]
    return life.first_response["engineer_id"] if life.first_response else None

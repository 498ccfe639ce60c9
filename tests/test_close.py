"""The period close on the real embedded ClickHouse (appraisal/close.py, appraisal/results.py):
a simulated month goes through the product's own steps into the fact tables, is closed, and
stays frozen whatever comes later; a close that fails at any write leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from appraisal.close import CloseRefused, close_period, current_close
from appraisal.results import adjustments, appraisals, what_if
from appraisal.scheme import default_scheme
from schemas.calendar import WorkCalendar
from schemas.facts import FACT_TABLES
from schemas.period import parse_instant, parse_period
from servicescore.app import roster
from servicescore.core.errors import StorageError
from servicescore.core.faults import Faults
from servicescore.dev.simulate import simulate
from servicescore.queries import kpis
from streams import lifecycle, ticket
from streams.intake import route

TZ = "Asia/Shanghai"
ROOT = Path(__file__).resolve().parents[1]
AFTER_GRACE = parse_instant("2026-12-09", TZ)  # November's end plus 7 days of grace, and a day


def facts_from(records: list[tuple[str, dict]]) -> list[dict]:
    """The facts the worker would emit for these events, in this order (streams/app.py's loop
    without Kafka)."""
    states, out = {}, []
    for topic, event in records:
        routed = route(topic, orjson.dumps(event), 0, 0, 0, TZ)
        if routed.target == "fact":
            out.append(routed.value)
        elif routed.target == "ticket":
            rec = {k: v for k, v in routed.value.items() if k != "src"}
            state = states.setdefault(rec["ticket_id"], ticket.new_state())
            out += lifecycle.apply(state, rec, WorkCalendar(TZ)).facts
    return out


def store(storage, facts: list[dict]) -> None:
    for kind in {f["kind"] for f in facts}:
        spec = FACT_TABLES[kind]
        storage.insert(spec.table, [spec.row(f) for f in facts if f["kind"] == kind],
                       spec.columns)


@pytest.fixture(scope="module")
def month():
    """Two weeks of November for 8 engineers, and one more engineer only in the roster."""
    sim = simulate(parse_period("2026-11", TZ).start.date(), 14, 8, seed=3, timezone=TZ)
    people = [roster.from_engineer(e) for e in sim.roster]
    people.append({"engineer_id": "E-new", "name": "新人", "role": "service_rep",
                   "team_id": None, "active": True})
    return facts_from(sim.records), people


@pytest.fixture
def closed_month(storage, month):
    facts, people = month
    store(storage, facts)
    roster.store(storage, people)
    return storage


def test_a_close_before_its_grace_has_passed_is_refused_unless_early(closed_month):
    with pytest.raises(CloseRefused, match="may be closed from 2026-12-08T00:00:00\\+08:00"):
        close_period(closed_month, "2026-11", default_scheme(), parse_instant("2026-12-07", TZ))
    done = close_period(closed_month, "2026-11", default_scheme(),
                        parse_instant("2026-12-07", TZ), early=True)
    assert done.engineers == 9


def test_every_engineer_is_frozen_with_the_fields_of_appraisal_md(closed_month):
    done = close_period(closed_month, "2026-11", default_scheme(), AFTER_GRACE)
    rows = appraisals(closed_month, "2026-11", TZ)
    assert len(rows) == done.engineers == 9
    assert {r["status"] for r in rows} == {"frozen"}
    assert set(rows[0]) >= {"engineer_id", "role", "period", "score", "grade", "grade_label",
                            "bonus", "flags", "kpis", "scheme_version", "closed_at",
                            "content_hash", "status"}
    (new,) = [r for r in rows if r["engineer_id"] == "E-new"]
    assert (new["grade"], new["score"], new["bonus"], new["flags"]) == (
        "insufficient_data", None, None, ["needs_review"])
    scored = [r for r in rows if r["score"] is not None]
    assert scored and all(r["grade"] in ("excellent", "good", "pass", "fail") for r in scored)
    kpi = scored[0]["kpis"][0]
    assert set(kpi) >= {"kpi", "value", "samples", "target", "floor", "weight",
                        "effective_weight", "score", "included"}


def test_the_frozen_kpis_are_the_live_kpis_of_the_period_at_close_time(closed_month):
    close_period(closed_month, "2026-11", default_scheme(), AFTER_GRACE)
    period = parse_period("2026-11", TZ)
    live = {r["engineer_id"]: r for r in kpis.compute(closed_month, period.start_ms,
                                                       period.end_ms)}
    for row in appraisals(closed_month, "2026-11", TZ):
        for k in row["kpis"]:
            want = live.get(row["engineer_id"], {}).get(k["kpi"])
            got = k["value"]
            assert (want is None) == (got is None), (row["engineer_id"], k["kpi"])
            if want is not None:
                assert abs(float(got) - float(want)) <= 1e-9 * max(1, abs(want))


def test_closing_again_changes_nothing_and_says_so(closed_month):
    first = close_period(closed_month, "2026-11", default_scheme(), AFTER_GRACE)
    with pytest.raises(CloseRefused, match="already closed"):
        close_period(closed_month, "2026-11", default_scheme(), AFTER_GRACE + 1)
    assert current_close(closed_month, "2026-11")["close_id"] == first.close_id
    assert len(appraisals(closed_month, "2026-11", TZ, with_superseded=True)) == 9


def test_a_late_event_never_changes_the_frozen_rows_and_shows_as_an_adjustment(closed_month):
    close_period(closed_month, "2026-11", default_scheme(), AFTER_GRACE)
    before = appraisals(closed_month, "2026-11", TZ)
    engineer = next(r for r in before if r["score"] is not None and any(
        k["kpi"] == "complaint_rate" and k["included"] for k in r["kpis"]))
    late = [("complaint-filed", {"event_id": f"late-{n}", "occurred_at": "2026-11-20T10:00:00Z",
                                 "engineer_id": engineer["engineer_id"], "severity": "major"})
            for n in range(3)]
    store(closed_month, facts_from(late))

    assert appraisals(closed_month, "2026-11", TZ) == before
    found = {a["engineer_id"]: a for a in adjustments(closed_month, "2026-11")}
    mine = found.pop(engineer["engineer_id"])
    (change,) = [c for c in mine["changed"] if c["kpi"] == "complaint_rate"]
    assert float(change["now"]) > float(change["frozen"])
    assert (mine["frozen_score"], mine["frozen_grade"]) == (engineer["score"], engineer["grade"])
    assert float(mine["score_now"]) < float(mine["frozen_score"])  # complaints cost points
    assert all(not a["changed"] for a in found.values())


def test_supersede_keeps_the_old_rows_marked_superseded_with_the_reason(closed_month):
    first = close_period(closed_month, "2026-11", default_scheme(), AFTER_GRACE)
    second = close_period(closed_month, "2026-11", default_scheme(), AFTER_GRACE + 1,
                          supersede="roster corrected")
    assert second.supersedes == first.close_id
    rows = appraisals(closed_month, "2026-11", TZ, with_superseded=True)
    assert {(r["close_id"], r["status"]) for r in rows} == {
        (first.close_id, "superseded"), (second.close_id, "frozen")}
    assert len(rows) == 18
    assert second.content_hash == first.content_hash  # the same inputs, the same hash
    with pytest.raises(CloseRefused, match="needs a reason"):
        close_period(closed_month, "2026-11", default_scheme(), AFTER_GRACE, supersede=" ")


class FailingWrites:
    """The storage, refusing its ``fail_at``-th write (an insert or an INSERT statement)."""

    def __init__(self, storage, fail_at: int):
        self.storage, self.fail_at, self.writes = storage, fail_at, 0

    def _write(self, call, *args, **kwargs):
        self.writes += 1
        if self.writes == self.fail_at:
            raise StorageError("ClickHouse: Code: 243. NOT_ENOUGH_SPACE (injected)")
        return call(*args, **kwargs)

    def insert(self, *args, **kwargs):
        return self._write(self.storage.insert, *args, **kwargs)

    def command(self, sql, *args, **kwargs):
        if sql.lstrip().upper().startswith("INSERT"):
            return self._write(self.storage.command, sql, *args, **kwargs)
        return self.storage.command(sql, *args, **kwargs)

    def rows(self, *args, **kwargs):
        return self.storage.rows(*args, **kwargs)


@pytest.mark.parametrize("fail_at", [1, 2, 3])  # the copy, the appraisals, the marker
def test_a_storage_error_at_any_write_leaves_no_close(closed_month, fail_at):
    with pytest.raises(StorageError):
        close_period(FailingWrites(closed_month, fail_at), "2026-11", default_scheme(),
                     AFTER_GRACE)
    assert current_close(closed_month, "2026-11") is None
    assert appraisals(closed_month, "2026-11", TZ, with_superseded=True) == []
    done = close_period(closed_month, "2026-11", default_scheme(), AFTER_GRACE)
    assert {r["close_id"] for r in appraisals(closed_month, "2026-11", TZ)} == {done.close_id}


def test_a_quarter_is_computed_from_its_own_events_not_from_months(closed_month):
    close_period(closed_month, "2026-Q4", default_scheme(), parse_instant("2027-01-09", TZ))
    quarter = parse_period("2026-Q4", TZ)
    live = {r["engineer_id"]: r for r in kpis.compute(closed_month, quarter.start_ms,
                                                       quarter.end_ms)}
    for row in appraisals(closed_month, "2026-Q4", TZ):
        fcr = next((k for k in row["kpis"] if k["kpi"] == "fcr_rate"), None)
        if fcr and fcr["value"] is not None:
            assert abs(float(fcr["value"]) - live[row["engineer_id"]]["fcr_rate"]) < 1e-9


def test_a_second_fail_in_a_row_is_flagged(closed_month):
    strict = default_scheme().model_copy(update={"grades": _everyone_fails()})
    close_period(closed_month, "2026-10", strict, AFTER_GRACE, early=True)
    close_period(closed_month, "2026-11", strict, AFTER_GRACE)
    october = {r["engineer_id"]: r["grade"] for r in appraisals(closed_month, "2026-10", TZ)}
    for row in appraisals(closed_month, "2026-11", TZ):
        failed_before = october.get(row["engineer_id"]) == "fail"
        assert ("consecutive_fail" in row["flags"]) == (row["grade"] == "fail" and failed_before)


def _everyone_fails():
    """Grades under which any score fails, to make consecutive fails happen."""
    grades = default_scheme().grades
    return tuple(g.model_copy(update={"min": g.min + 1000}) if g.name != "fail" else g
                 for g in grades)


def test_what_if_freezes_nothing_and_shows_the_frozen_result_beside(closed_month):
    scored = what_if(closed_month, "2026-11", default_scheme())
    assert all(r["frozen_grade"] is None for r in scored)
    assert current_close(closed_month, "2026-11") is None
    close_period(closed_month, "2026-11", default_scheme(), AFTER_GRACE)
    again = what_if(closed_month, "2026-11", default_scheme())
    assert [(r["grade"], r["score"]) for r in again] == [
        (r["frozen_grade"], r["frozen_score"]) for r in again]


def test_a_crash_point_in_the_close_stops_before_the_marker(closed_month, monkeypatch):
    exits = []
    monkeypatch.setattr("servicescore.core.faults.os._exit", lambda code: exits.append(code)
                        or (_ for _ in ()).throw(SystemExit(code)))
    with pytest.raises(SystemExit):
        close_period(closed_month, "2026-11", default_scheme(), AFTER_GRACE,
                     faults=Faults.parse("close:appraisals:1"))
    assert exits and current_close(closed_month, "2026-11") is None


LOAD_MONTH = """
import sys, orjson
from servicescore.app import roster
from servicescore.app.service import open_storage
from servicescore.core.settings import load_settings
from tests.test_close import store
month = orjson.loads(open(sys.argv[1], "rb").read())
storage = open_storage(load_settings(), migrate=True)
store(storage, month["facts"])
roster.store(storage, month["people"])
"""


def test_a_close_killed_mid_way_leaves_nothing_and_the_next_one_closes(tmp_path, month):
    """A real process stopped dead after its appraisals are written, before the marker."""
    import os
    import subprocess
    import sys

    facts, people = month
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICESCORE_")}
    env.update(SERVICESCORE_DATA_DIR=str(tmp_path / "data"), SERVICESCORE_TIMEZONE=TZ)

    def cli(*args, **extra):
        return subprocess.run([sys.executable, "-m", "servicescore.cli", *args], cwd=ROOT,
                              env={**env, **extra}, capture_output=True, text=True, timeout=300)

    # The month goes in through a process of its own: chDB lets one process hold a folder, and
    # this one must not (its engine stays open until it exits).
    (tmp_path / "month.json").write_bytes(orjson.dumps({"facts": facts, "people": people}))
    loaded = subprocess.run([sys.executable, "-c", LOAD_MONTH, str(tmp_path / "month.json")],
                            env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert loaded.returncode == 0, loaded.stderr
    killed = cli("close", "--period", "2026-11", "--early",
                 SERVICESCORE_CRASH_AT="close:appraisals:1")
    assert killed.returncode == 137, killed.stderr
    nothing = cli("appraisals", "--period", "2026-11")
    assert nothing.returncode == 1 and "is not closed" in nothing.stderr
    assert cli("close", "--period", "2026-11", "--early").returncode == 0
    rows = cli("appraisals", "--period", "2026-11", "--all", "--format", "json")
    assert len(orjson.loads(rows.stdout)) == 9  # the killed close left no row anyone reads


def test_run_closes_the_previous_month_by_itself_once_its_grace_has_passed(closed_month):
    from appraisal.close import close_due

    scheme = default_scheme()
    assert close_due(closed_month, scheme, parse_instant("2026-12-07T23:59", TZ)) is None
    done = close_due(closed_month, scheme, parse_instant("2026-12-08T00:00", TZ))
    assert done is not None and done.period == "2026-11" and done.engineers == 9
    assert close_due(closed_month, scheme, parse_instant("2026-12-20", TZ)) is None  # once
    assert close_due(closed_month, scheme, parse_instant("2026-11-20", TZ)) is None  # October:
    # nothing happened that month, so there is nothing to freeze


def test_the_service_watcher_closes_with_its_clock(closed_month, settings_for_close):
    import asyncio

    from servicescore.app.reader import LocalReader
    from servicescore.app.service import watch_closes

    reader = LocalReader(closed_month, settings_for_close)

    async def one_round():
        task = asyncio.create_task(watch_closes(reader, every_s=3600,
                                                clock=lambda: parse_instant("2026-12-09", TZ)))
        while current_close(closed_month, "2026-11") is None:
            await asyncio.sleep(0.05)
        task.cancel()

    asyncio.run(asyncio.wait_for(one_round(), 60))
    assert len(appraisals(closed_month, "2026-11", TZ)) == 9


@pytest.fixture
def settings_for_close(tmp_path):
    from servicescore.core.settings import load_settings

    return load_settings(data_dir=tmp_path, timezone=TZ)

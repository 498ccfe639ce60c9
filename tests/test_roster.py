"""The roster CSV import (servicescore/roster.py): CSV strings converted, then validated by the
same model as the engineer-roster topic (schemas/roster.py), stored in the real engine."""

from __future__ import annotations

import pytest

from schemas.roster import ROLES
from servicescore.app import roster
from servicescore.core.errors import ServicescoreError

HEADER = "engineer_id,name,role,team_id,active\n"


def imported(tmp_path, body: str) -> list[dict]:
    path = tmp_path / "roster.csv"
    path.write_text(HEADER + body, encoding="utf-8")
    return roster.read_csv(path)


def test_csv_words_become_booleans_and_empty_cells_absent(tmp_path, storage):
    rows = imported(tmp_path, "E1,张三,field_engineer,华东一组,是\n"
                              "E2,,service_rep,,否\n"
                              "E3,Li,support_specialist,T1,0\n"
                              "E4,Wang,service_rep,T1,\n"
                              "E5,Zhao,service_rep,T2,FALSE\n")
    roster.store(storage, rows)

    stored = storage.rows("SELECT engineer_id, name, role, team_id, active FROM roster FINAL "
                          "ORDER BY engineer_id")

    assert stored == [
        {"engineer_id": "E1", "name": "张三", "role": "field_engineer", "team_id": "华东一组",
         "active": True},
        {"engineer_id": "E2", "name": "", "role": "service_rep", "team_id": None,
         "active": False},
        {"engineer_id": "E3", "name": "Li", "role": "support_specialist", "team_id": "T1",
         "active": False},
        {"engineer_id": "E4", "name": "Wang", "role": "service_rep", "team_id": "T1",
         "active": True},
        {"engineer_id": "E5", "name": "Zhao", "role": "service_rep", "team_id": "T2",
         "active": False}]


@pytest.mark.parametrize(("line", "field"), [
    pytest.param("E1,A,manager,T1,true", "role", id="unknown-role"),
    pytest.param("E1,A,field_engineer,T1,maybe", "active", id="not-a-yes-or-no"),
    pytest.param(",A,field_engineer,T1,true", "engineer_id", id="no-id"),
    pytest.param(f"{'E' * 129},A,field_engineer,T1,true", "engineer_id", id="long-id"),
    pytest.param(f"E1,{'n' * 129},field_engineer,T1,true", "name", id="long-name"),
    pytest.param(f"E1,A,field_engineer,{'T' * 129},true", "team_id", id="long-team"),
])
def test_a_bad_row_names_its_line_and_field(tmp_path, line, field):
    with pytest.raises(ServicescoreError) as refused:
        imported(tmp_path, f"E0,ok,service_rep,T1,true\n{line}\n")

    assert str(refused.value).startswith(f"{tmp_path / 'roster.csv'}:3: {field}: ")


def test_roles_are_the_contracts_three():
    assert ROLES == ("field_engineer", "support_specialist", "service_rep")

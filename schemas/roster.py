"""One roster record (events.md "Reference data"), the same for the CSV import and the
``engineer-roster`` topic, so roles and limits are defined once.

Strict like the wire events: ``"active": "false"`` is refused, not read as true, and a team id
sent as a number is a producer bug. Unknown extra fields are ignored (forward compatibility);
null means absent for the optional fields.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, model_validator

from schemas.events import ID_MAX

Role = Literal["field_engineer", "support_specialist", "service_rep"]
ROLES: tuple[str, ...] = get_args(Role)
EngineerId = Annotated[StrictStr, Field(min_length=1, max_length=ID_MAX)]


class RosterRecord(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    engineer_id: EngineerId
    name: Annotated[StrictStr, Field(max_length=ID_MAX)] = ""
    role: Role
    team_id: EngineerId | None = None
    active: StrictBool = True

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, data: object) -> object:
        """A null optional field takes its default; a null required one is refused as missing."""
        if not isinstance(data, dict):
            return data
        return {k: v for k, v in data.items()
                if v is not None or k not in _OPTIONAL}


_OPTIONAL = frozenset(n for n, f in RosterRecord.model_fields.items() if not f.is_required())

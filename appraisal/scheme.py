"""The appraisal scheme (appraisal.md "Scheme file"): grades with their bonus, and per role the
weighted KPIs with target, floor and minimum sample count.

Read from YAML and validated strictly (frozen models, unknown keys refused), because a typo in
this file changes people's bonuses: a misspelt ``wieght`` must refuse the file, not silently
score with no weight. A refusal is one ``SchemeError`` line naming the key path and the reason::

    scheme = load_scheme("scheme.yaml")          # or default_scheme(), the shipped one
    rules = scheme.role("field_engineer").kpis    # KpiRule(kpi, weight, target, floor, ...)
    scheme.grade_for(Decimal("89.99")).name       # "good"

Numbers that decide money (weights, targets, floors, grade minimums, bonuses) are ``Decimal``
exactly as written in the file: a YAML ``0.95`` is read from its text, never through a float.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from schemas.kpis import FIELDS, REGISTRY
from schemas.roster import ROLES
from servicescore.core.errors import ConfigError

EXCELLENT, FAIL = "excellent", "fail"  # the grades the flags name (appraisal.md "Flags")
INSUFFICIENT = "insufficient_data"  # the grade of an engineer with no included KPI

# The department standard's four categories and their share of a role's weight, in percent
# (appraisal.md: a shipped scheme stays inside them; a calibration scheme may leave them).
STANDARD_RANGES: Mapping[str, tuple[int, int]] = {
    "response_resolution": (35, 45),
    "satisfaction": (25, 35),
    "compliance_collaboration": (15, 25),
    "growth_knowledge": (10, 15),
}
# KPI name prefix -> category. Attitude and 360 reviews are conduct towards customers and
# colleagues (服务规范与协作); training and knowledge are growth (学习成长).
_CATEGORY_PREFIXES: tuple[tuple[str, str], ...] = (
    ("frt_", "response_resolution"), ("first_responses", "response_resolution"),
    ("aht_", "response_resolution"), ("resolutions", "response_resolution"),
    ("fcr_", "response_resolution"), ("repeat_rate_", "response_resolution"),
    ("onsite_", "response_resolution"), ("escalations", "response_resolution"),
    ("csat_", "satisfaction"), ("surveys", "satisfaction"), ("nps", "satisfaction"),
    ("complaint", "satisfaction"),
    ("assessment_compliance", "compliance_collaboration"),
    ("assessment_attitude", "compliance_collaboration"),
    ("assessment_collaboration", "compliance_collaboration"),
    ("assessment_review360", "compliance_collaboration"),
    ("assessment_training", "growth_knowledge"), ("assessment_knowledge", "growth_knowledge"),
)
KPI_FIELDS: frozenset[str] = frozenset(FIELDS)


class SchemeError(ConfigError):
    """The scheme file cannot be read or is invalid; the message names the key and the reason."""


def category(kpi: str) -> str:
    """The department-standard category a KPI's weight counts towards."""
    return next(cat for prefix, cat in _CATEGORY_PREFIXES if kpi.startswith(prefix))


def samples_field(kpi: str) -> str:
    """The KPI row field holding the number of samples a KPI's value comes from (the registry
    of schemas/kpis.py, appraisal.md "Scoring")."""
    return REGISTRY[kpi].samples


def _exact(value: object, info: ValidationInfo) -> object:
    """YAML gives whole numbers as int: take them as Decimal (a bool stays refused). In JSON
    (``Scheme.model_dump_json``, which the close may store) a Decimal is a string."""
    if type(value) is int or (info.mode == "json" and isinstance(value, str)):
        try:
            return Decimal(value)
        except InvalidOperation:
            return value  # refused by the model as not a number
    return value


def _known_kpi(kpi: str) -> str:
    if kpi not in KPI_FIELDS:
        raise ValueError(f"unknown KPI {kpi!r} (the KPI fields of kpis.md)")
    return kpi


def _known_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r} (roles: {', '.join(ROLES)})")
    return role


def _known_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {name!r} (an IANA name like Asia/Shanghai)") from None
    return name


Number = Annotated[Decimal, BeforeValidator(_exact), Field(allow_inf_nan=False)]
RoleName = Annotated[StrictStr, AfterValidator(_known_role)]
# Lists in YAML, tuples here (frozen all the way down); the items stay strict.
_Items = Field(strict=False)


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")


class Grade(_Strict):
    """A grade band: the first grade whose ``min`` <= the rounded total, top-down."""

    name: Annotated[StrictStr, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    label: Annotated[StrictStr, Field(min_length=1)]
    min: Annotated[Number, Field(ge=0, le=100)]
    bonus: Number  # in the scheme's currency; negative for a deduction


class KpiRule(_Strict):
    """One KPI of a role: its weight, the value scoring 100 (target) and the value scoring 0
    (floor); a reverse indicator has target < floor."""

    kpi: Annotated[StrictStr, AfterValidator(_known_kpi)]
    weight: Annotated[Number, Field(gt=0)]
    target: Number
    floor: Number
    min_samples: Annotated[int, Field(ge=0)] = 1

    @model_validator(mode="after")
    def _target_apart_from_floor(self) -> KpiRule:
        if self.target == self.floor:
            raise ValueError(f"target equals floor ({self.target}): no range to score in")
        return self

    @property
    def samples_field(self) -> str:
        return samples_field(self.kpi)


class RoleScheme(_Strict):
    """The KPIs one role is appraised on; their weights sum to 100."""

    kpis: Annotated[tuple[KpiRule, ...], _Items]

    @field_validator("kpis")
    @classmethod
    def _weights_make_100(cls, kpis: tuple[KpiRule, ...]) -> tuple[KpiRule, ...]:
        if not kpis:
            raise ValueError("a role needs at least one KPI")
        first: dict[str, int] = {}
        for i, rule in enumerate(kpis):
            if rule.kpi in first:
                raise ValueError(f"{rule.kpi} is listed twice (kpis[{first[rule.kpi]}] "
                                 f"and kpis[{i}])")
            first[rule.kpi] = i
        total = sum(rule.weight for rule in kpis)
        if total != 100:
            raise ValueError(f"weights sum to {total}, not 100")
        return kpis


class Scheme(_Strict):
    """A whole scheme file. ``version`` is stored with every frozen result."""

    version: Annotated[StrictStr, Field(min_length=1)]
    timezone: Annotated[StrictStr, AfterValidator(_known_timezone)] = "Asia/Shanghai"
    currency: Annotated[StrictStr, Field(pattern=r"^[A-Z]{3}$")]
    grace_days: Annotated[int, Field(ge=0)]
    grades: Annotated[tuple[Grade, ...], _Items]
    roles: dict[RoleName, RoleScheme]
    default_role: RoleName  # after roles, so its check can see them

    @field_validator("grades")
    @classmethod
    def _grades_cover_0_to_100(cls, grades: tuple[Grade, ...]) -> tuple[Grade, ...]:
        if not grades:
            raise ValueError("at least one grade is needed")
        for i in range(1, len(grades)):
            if grades[i].min >= grades[i - 1].min:
                raise ValueError(f"not descending by min: grades[{i}] ({grades[i].name}) has "
                                 f"min {grades[i].min}, grades[{i - 1}] has {grades[i - 1].min}")
        if grades[-1].min != 0:
            raise ValueError(f"the last grade's min must be 0 so every score has a grade "
                             f"({grades[-1].name} has {grades[-1].min})")
        names = [g.name for g in grades]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"grade {name} is listed twice")
        if INSUFFICIENT in names:
            raise ValueError(f"{INSUFFICIENT} is reserved for an engineer with no data")
        for name in (EXCELLENT, FAIL):
            if name not in names:
                raise ValueError(f"no grade named {name} (the flags need it)")
        return grades

    @field_validator("roles")
    @classmethod
    def _some_role(cls, roles: dict[str, RoleScheme]) -> dict[str, RoleScheme]:
        if not roles:
            raise ValueError("at least one role is needed")
        return roles

    @field_validator("default_role")
    @classmethod
    def _default_role_is_scored(cls, role: str, info: ValidationInfo) -> str:
        roles = info.data.get("roles")
        if roles is not None and role not in roles:
            raise ValueError(f"{role} is not a role of this scheme "
                             f"(roles: {', '.join(roles)})")
        return role

    def role(self, name: str) -> RoleScheme:
        """The KPIs of a role; a role the scheme does not cover is the user's to fix."""
        if name not in self.roles:
            raise SchemeError(f"scheme {self.version} has no role {name!r} "
                              f"(roles: {', '.join(self.roles)})")
        return self.roles[name]

    def grade_for(self, total: Decimal) -> Grade:
        """The first grade whose min <= total, top-down (the last one's min is 0)."""
        return next(g for g in self.grades if g.min <= total)


def category_weights(role: RoleScheme) -> dict[str, Decimal]:
    """A role's weight per category of the department standard (every category, 0 if unused)."""
    totals = dict.fromkeys(STANDARD_RANGES, Decimal(0))
    for rule in role.kpis:
        totals[category(rule.kpi)] += rule.weight
    return totals


def parse_scheme(text: str, source: str = "<scheme>") -> Scheme:
    """A Scheme from YAML text; ``source`` names the file in the refusal."""
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        raise SchemeError(f"scheme {source}: not valid YAML: {_yaml_reason(err)}") from None
    if not isinstance(data, dict):
        raise SchemeError(f"scheme {source}: the top level must be a mapping "
                          f"(version, grades, roles, ...)")
    try:
        return Scheme.model_validate(data)
    except ValidationError as err:
        raise SchemeError(f"scheme {source}: {_reasons(err, data)}") from None


def load_scheme(path: str | Path) -> Scheme:
    """The scheme in a YAML file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise SchemeError(f"cannot read scheme {path}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise SchemeError(f"cannot read scheme {path}: not UTF-8 text") from None
    return parse_scheme(text, str(path))


@cache
def default_scheme() -> Scheme:
    """The shipped scheme (appraisal/default_scheme.yaml); frozen, so one shared instance."""
    text = resources.files("appraisal").joinpath("default_scheme.yaml").read_text("utf-8")
    return parse_scheme(text, "default_scheme.yaml")


class _Loader(yaml.SafeLoader):
    """Floats as exact Decimals, and a key given twice refused: PyYAML would keep the last one
    silently, and a scheme with two ``weight:`` lines must not pass."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[Hashable] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)

    def construct_yaml_decimal(self, node: yaml.ScalarNode) -> Decimal:
        text = self.construct_scalar(node).replace("_", "")
        try:
            return Decimal(text)
        except InvalidOperation:  # .inf, .nan, 1:30 (sexagesimal): the model refuses them
            return Decimal(str(self.construct_yaml_float(node)))


_Loader.add_constructor("tag:yaml.org,2002:float", _Loader.construct_yaml_decimal)


def _yaml_reason(err: yaml.YAMLError) -> str:
    if isinstance(err, yaml.MarkedYAMLError) and err.problem_mark is not None:
        mark = err.problem_mark
        return f"{err.problem} (line {mark.line + 1}, column {mark.column + 1})"
    return " ".join(str(err).split())


def _reasons(err: ValidationError, data: dict) -> str:
    """Every problem as ``key.path: reason``, on one line; unknown keys first, since a misspelt
    key is usually also the cause of a missing one."""
    errors = sorted(err.errors(), key=lambda e: e["type"] != "extra_forbidden")
    problems = [f"{_path(e['loc'], data)}: {_reason(e)}" for e in errors]
    shown = "; ".join(problems[:3])
    return shown + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")


def _path(loc: tuple[int | str, ...], data: Any) -> str:
    """``roles.field_engineer.kpis[2] (frt_sla_rate).weight``: the KPI's name beside its index,
    since nobody counts list items in a YAML file."""
    path, node = "", data
    for part in loc:
        if part == "[key]":
            continue  # the key is the last part already
        if isinstance(part, int) and isinstance(node, list):
            node = node[part] if part < len(node) else None
            path += f"[{part}]"
            if isinstance(node, dict) and isinstance(node.get("kpi"), str):
                path += f" ({node['kpi']})"
            continue
        node = node.get(part) if isinstance(node, dict) else None
        path += f".{part}" if path else str(part)
    return path or "(top level)"


_MESSAGES = {
    "extra_forbidden": "unknown key",
    "missing": "missing",
    "is_instance_of": "must be a number",
    "string_type": "must be text (quote it)",
    "int_type": "must be a whole number",
}


def _reason(error: Mapping[str, Any]) -> str:
    if error["type"] == "value_error":
        return str(error["ctx"]["error"])
    reason = _MESSAGES.get(error["type"], error["msg"])
    if error["type"] in ("is_instance_of", "string_type", "int_type", "decimal_type"):
        given = error["input"]
        reason += f", got {given if isinstance(given, Decimal) else repr(given)}"
    return reason

"""A panel's SQL as ClickHouse receives it from Grafana's ClickHouse data source.

The plugin (grafana-clickhouse-datasource 4.x) turns a panel's raw SQL into a query in three
passes, reproduced here in the same order so that a test can run every panel against a real
database and an operator can paste a panel's query into ``clickhouse-client``:

1. ``$__conditionalAll(condition, $variable)`` (the plugin's front end,
   ``CHDatasource.applyConditionalAll``): replaced by ``1=1`` when the variable is *All* (or
   empty), else by the condition. Only a plain ``$name`` or ``${name}`` second argument is
   recognised, exactly like the plugin's regular expression.
2. Grafana's template variables (``templateSrv.replace`` with the plugin's ``format``): ``$name``,
   ``${name}``, ``${name:format}``, ``[[name]]`` and the built-ins ``${__from}``/``${__to}``
   (epoch milliseconds). Without an explicit format the plugin quotes a multi-value selection
   (``'a','b'``) and leaves a single value as it is.
3. The back end's macros (``pkg/macros/macros.go``, expanded longest name first, arguments
   split on top-level commas): ``$__timeFilter(c)`` is ``c >= toDateTime(from_s) AND c <=
   toDateTime(to_s)`` (seconds, both ends included), ``$__timeFilter_ms(c)`` the same with
   ``fromUnixTimestamp64Milli``, ``$__timeInterval(c)`` is ``toStartOfInterval(toDateTime(c),
   INTERVAL n second)`` with the panel's interval, ``$__fromTime``/``$__toTime`` are
   ``toDateTime(s)``, and so on.

    expand("SELECT ... WHERE $__timeFilter_ms(at) AND $__conditionalAll(engineer_id IN "
           "(${engineer:singlequote}), $engineer)",
           TimeRange(from_ms, to_ms, 3_600_000), {"engineer": Variable(["E001"])})
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

ALL = "$__all"  # the value Grafana gives a variable whose "All" option is selected


@dataclass(frozen=True)
class Variable:
    """A template variable's current value: a list for a multi-value variable (even with one
    value selected, as Grafana keeps it), ``ALL`` or ``[ALL]`` for *All*, whose values are then
    ``options`` (the variable's own query result; our variables set no custom all-value)."""

    current: str | list[str]
    options: tuple[str, ...] = ()

    @property
    def is_all(self) -> bool:
        return self.current in (ALL, [ALL])

    def value(self) -> str | list[str]:
        return list(self.options) if self.is_all else self.current


@dataclass(frozen=True)
class TimeRange:
    from_ms: int
    to_ms: int
    interval_ms: int  # the panel's interval (range / max data points, rounded by Grafana)


def expand(sql: str, time: TimeRange, variables: Mapping[str, Variable]) -> str:
    """The SQL the plugin sends for ``sql`` over ``time`` with ``variables``."""
    sql = conditional_all(sql, variables)
    sql = template_variables(sql, time, variables)
    return backend_macros(sql, time)


# --------------------------------------------------------------------- 1. $__conditionalAll

_CONDITIONAL = "$__conditionalAll("
_VARIABLE_NAME = re.compile(r"(?<=\$\{)[\w\d]+(?=\})|(?<=\$)[\w\d]+")


def conditional_all(sql: str, variables: Mapping[str, Variable]) -> str:
    """The plugin's ``applyConditionalAll``: from the last occurrence backwards."""
    index = sql.rfind(_CONDITIONAL)
    while index != -1:
        params = _frontend_args(sql, index + len(_CONDITIONAL) - 1)
        if len(params) != 2:
            return sql  # the plugin gives up on the whole query, leaving it as it is
        phrase = params[0]
        name = _VARIABLE_NAME.search(params[1].strip())
        if name:
            variable = variables.get(name[0])
            # JavaScript's Array.toString: a list joined by commas ([ALL] gives ALL)
            shown = None if variable is None else (
                ",".join(variable.current) if isinstance(variable.current, list)
                else variable.current)
            if shown in ("", ALL):
                phrase = "1=1"
        sql = sql.replace(f"{_CONDITIONAL}{params[0]},{params[1]})", phrase, 1)
        index = sql.rfind(_CONDITIONAL)
    return sql


def _frontend_args(sql: str, open_index: int) -> list[str]:
    """The plugin's ``getMacroArgs``: split at top-level commas up to the matching bracket,
    arguments untrimmed; [] when the bracket never closes."""
    args: list[str] = []
    depth, last = 0, 1
    text = sql[open_index:]
    for match in re.finditer(r"[(),]", text):
        node, end = match[0], match.end()
        if node == "(":
            depth += 1
        elif node == ")":
            depth -= 1
        if node == "," and depth == 1:
            args.append(text[last:end - 1])
            last = end
        if depth == 0:
            args.append(text[last:end - 1])
            return args
    return []


# ------------------------------------------------------------------ 2. template variables

# Grafana's variableRegex: $name | [[name:format]] | ${name.fieldPath:format}
_TEMPLATE = re.compile(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]"
                       r"|\$\{(\w+)(?:\.([^:^\}]+))?(?::([^\}]+))?\}")


def template_variables(sql: str, time: TimeRange, variables: Mapping[str, Variable]) -> str:
    builtins = {"__from": str(time.from_ms), "__to": str(time.to_ms),
                "__interval_ms": str(time.interval_ms)}

    def replace(match: re.Match) -> str:
        name = match[1] or match[2] or match[4]
        form = match[3] or match[6]
        if name in builtins:
            if form:
                raise ValueError(f"format {form!r} of ${{{name}}} is not supported here")
            return builtins[name]
        variable = variables.get(name)
        if variable is None:
            return match[0]  # not a variable (a plugin macro such as $__timeFilter): left alone
        return _formatted(variable.value(), form)

    return _TEMPLATE.sub(replace, sql)


def _formatted(value: str | list[str], form: str | None) -> str:
    values = value if isinstance(value, list) else [value]
    if form is None:  # the plugin's own format(): a list quoted, a single value as it is
        return "'" + "','".join(value) + "'" if isinstance(value, list) else value
    if form == "singlequote":
        return ",".join("'" + v.replace("'", "\\'") + "'" for v in values)
    if form == "doublequote":
        return ",".join('"' + v.replace('"', '\\"') + '"' for v in values)
    if form == "sqlstring":
        return ",".join("'" + v.replace("'", "''") + "'" for v in values)
    if form in ("csv", "raw"):
        return ",".join(values)
    raise ValueError(f"variable format {form!r} is not supported here")


# ---------------------------------------------------------------------- 3. back-end macros


def _seconds(ms: int) -> int:
    return ms // 1000  # Go's time.Unix(): whole seconds, the milliseconds dropped


def _date(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


def _one(name: str, args: list[str], count: int = 1) -> list[str]:
    if len(args) != count:
        raise ValueError(f"$__{name}: expected {count} argument(s), received {len(args)}")
    return args


def _interval_s(time: TimeRange) -> int:
    return int(max(time.interval_ms / 1000, 1))


_GO_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)$")


def _time_group(time: TimeRange, args: list[str]) -> str:
    column, period = _one("timeGroup", args, 2)
    found = _GO_DURATION.match(period.strip().strip("'\""))
    if not found:
        raise ValueError(f"$__timeGroup: invalid interval {period!r}")
    seconds = round(float(found[1]) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[found[2]])
    if seconds <= 0:
        raise ValueError(f"$__timeGroup: interval must be positive, got {period!r}")
    return f"toStartOfInterval(toDateTime({column.strip()}), INTERVAL {seconds} second)"


def _time_filter(time: TimeRange, args: list[str]) -> str:
    (column,) = _one("timeFilter", args)
    return (f"{column} >= toDateTime({_seconds(time.from_ms)}) AND "
            f"{column} <= toDateTime({_seconds(time.to_ms)})")


def _time_filter_ms(time: TimeRange, args: list[str]) -> str:
    (column,) = _one("timeFilter_ms", args)
    return (f"{column} >= fromUnixTimestamp64Milli({time.from_ms}) AND "
            f"{column} <= fromUnixTimestamp64Milli({time.to_ms})")


def _date_filter(time: TimeRange, args: list[str]) -> str:
    (column,) = _one("dateFilter", args)
    return (f"{column} >= toDate('{_date(time.from_ms)}') AND "
            f"{column} <= toDate('{_date(time.to_ms)}')")


def _date_time_filter(time: TimeRange, args: list[str]) -> str:
    date_column, time_column = _one("dateTimeFilter", args, 2)
    return (f"({date_column} >= toDate('{_date(time.from_ms)}') AND {date_column} <= "
            f"toDate('{_date(time.to_ms)}')) AND ({time_column} >= "
            f"toDateTime({_seconds(time.from_ms)}) AND {time_column} <= "
            f"toDateTime({_seconds(time.to_ms)}))")


def _time_interval(time: TimeRange, args: list[str]) -> str:
    (column,) = _one("timeInterval", args)
    return f"toStartOfInterval(toDateTime({column}), INTERVAL {_interval_s(time)} second)"


def _time_interval_ms(time: TimeRange, args: list[str]) -> str:
    (column,) = _one("timeInterval_ms", args)
    return (f"toStartOfInterval(toDateTime64({column}, 3), "
            f"INTERVAL {int(max(time.interval_ms, 1))} millisecond)")


def _time_from(time: TimeRange, args: list[str]) -> str:
    (column,) = _one("timeFrom", args)
    return f"{column} >= toDateTime({_seconds(time.from_ms)})"


def _time_to(time: TimeRange, args: list[str]) -> str:
    (column,) = _one("timeTo", args)
    return f"{column} <= toDateTime({_seconds(time.to_ms)})"


Macro = Callable[[TimeRange, list[str]], str]
MACROS: dict[str, Macro] = {
    "fromTime": lambda t, a: f"toDateTime({_seconds(t.from_ms)})",
    "toTime": lambda t, a: f"toDateTime({_seconds(t.to_ms)})",
    "fromTime_ms": lambda t, a: f"fromUnixTimestamp64Milli({t.from_ms})",
    "toTime_ms": lambda t, a: f"fromUnixTimestamp64Milli({t.to_ms})",
    "timeFilter": _time_filter,
    "timeFilter_ms": _time_filter_ms,
    "dateFilter": _date_filter,
    "dateTimeFilter": _date_time_filter,
    "dt": _date_time_filter,
    "timeInterval": _time_interval,
    "timeInterval_ms": _time_interval_ms,
    "interval_s": lambda t, a: str(_interval_s(t)),
    "timeFrom": _time_from,
    "timeTo": _time_to,
    "timeGroup": _time_group,
}


def backend_macros(sql: str, time: TimeRange) -> str:
    """Longest macro name first (``$__timeFilter_ms`` before ``$__timeFilter``); every
    occurrence of one macro call replaced by its expansion."""
    for name in sorted(MACROS, key=len, reverse=True):
        for full, args in _backend_calls(sql, name):
            sql = sql.replace(full, MACROS[name](time, args))
    return sql


def _backend_calls(sql: str, name: str) -> list[tuple[str, list[str]]]:
    """sqlutil's getMacroMatches: each ``$__name`` with its bracketed, trimmed arguments."""
    calls = []
    for match in re.finditer(rf"\$__{re.escape(name)}\b", sql):
        args, length = _backend_args(sql[match.end():])
        if length < 0:
            raise ValueError(f"$__{name}: failed to parse macro arguments (missing close bracket?)")
        calls.append((sql[match.start():match.end() + length], args))
    return calls


def _backend_args(text: str) -> tuple[list[str], int]:
    if not text.startswith("("):
        return [], 0
    args: list[str] = []
    depth, current = 0, []
    for i, char in enumerate(text):
        if char == "(":
            depth += 1
            if depth == 1:
                continue
        elif char == ")":
            depth -= 1
            if depth == 0:
                args.append("".join(current).strip())
                return args, i + 1
        elif char == "," and depth == 1:
            args.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    return [], -1

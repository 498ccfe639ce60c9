"""The migrations of sql/ for a ClickHouse cluster: replicated, sharded, behind Distributed tables.

Derived statement by statement from the single-node migrations (never copied), so a migration
added to sql/ has its cluster form at once, or a refusal naming the statement this module has no
rule for. The rules:

* a fact table ``T`` (every MergeTree table not listed in ``REFERENCE``) becomes ``T_local`` on
  every node, ``Replicated<Engine>('/clickhouse/tables/{shard}/{database}/{table}',
  '{replica}', <the engine's own arguments>)``, and ``T`` becomes
  ``Distributed('{cluster}', <database>, 'T_local', cityHash64(<T's ORDER BY>))``. Sharding by
  the sorting key, which is the fact's identity, keeps every version of a fact on one shard, so
  ReplacingMergeTree and FINAL collapse them there as on one node. The product's SQL reads and
  writes ``T`` unchanged.
* a reference table (the roster, the SLA targets, the review weights, the closes' commit
  markers, the migrations record) is small and joined by the views: it is replicated whole to
  every node (``/clickhouse/tables/all/...``, one replica set over the cluster) and keeps its
  name, with no Distributed table. A join with it then runs on each shard against the local
  copy; a join with a Distributed table there would be a "double-distributed" subquery, which
  ClickHouse refuses by default (``distributed_product_mode = 'deny'``).
* ``EXCHANGE TABLES`` of two fact tables with different sorting keys (a table rebuilt with
  another ORDER BY, sql/007) makes both Distributed tables again with their new keys.
* views, ``ALTER``, ``DROP``, ``RENAME``, ``EXCHANGE``, ``TRUNCATE`` and ``OPTIMIZE`` run
  ``ON CLUSTER '{cluster}'`` (on both tables of a fact table where both change); ``INSERT`` runs
  once, through the Distributed or replicated table.
* ``non_replicated_deduplication_window`` is dropped: replicated tables deduplicate retried
  inserts themselves (``replicated_deduplication_window``).

The output ends each migration by recording it in ``schema_migrations`` with the checksum
``servicescore migrate`` uses, so the services (which migrate at start) find the schema up to
date. ``{cluster}``, ``{shard}``, ``{replica}``, ``{database}`` and ``{table}`` are the nodes'
macros (deploy/clickhouse/cluster/servicescore-cluster.xml).

    python -m servicescore.ops.cluster --database servicescore > cluster.sql
    clickhouse-client --host node-1 --database servicescore --multiquery < cluster.sql
    python -m servicescore.ops.cluster --after 6     # only the migrations after 006
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from servicescore.storage.clickhouse import Migration, migrations

CLUSTER = "'{cluster}'"
LOCAL = "_local"
SHARD_PATH = "/clickhouse/tables/{shard}/{database}/{table}"
WHOLE_PATH = "/clickhouse/tables/all/{database}/{table}"
REPLICA = "{replica}"
# Replicated whole on every node (see the module's docstring); every other table is sharded.
REFERENCE = frozenset({"roster", "sla_targets", "review_weights", "closes",
                       "schema_migrations"})
# servicescore/storage/clickhouse.py creates it outside sql/; the same columns here.
MIGRATIONS_TABLE = ("CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String, "
                    "checksum String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
                    "ENGINE = MergeTree ORDER BY version")

_I = re.IGNORECASE | re.DOTALL
_CREATE_TABLE = re.compile(r"^CREATE\s+TABLE\s+(IF\s+NOT\s+EXISTS\s+)?(\w+)\s*(.*)$", _I)
_ENGINE = re.compile(r"^ENGINE\s*=\s*(\w+)\s*", _I)
_ORDER_BY = re.compile(r"\bORDER\s+BY\s+(.+?)(?=\s+(?:PARTITION\s+BY|PRIMARY\s+KEY|SAMPLE\s+BY"
                       r"|TTL|SETTINGS)\b|$)", _I)
_SETTINGS = re.compile(r"\s+SETTINGS\s+(.+)$", _I)
_CREATE_VIEW = re.compile(r"^(CREATE\s+(?:OR\s+REPLACE\s+)?VIEW\s+(?:IF\s+NOT\s+EXISTS\s+)?"
                          r"(\w+))(\s+AS\s.*)$", _I)
_ALTER = re.compile(r"^ALTER\s+TABLE\s+(\w+)\s+(.*)$", _I)
_COLUMN_COMMAND = re.compile(r"^(ADD|DROP|MODIFY|RENAME|COMMENT|CLEAR)\s+COLUMN\b", _I)
_DROP = re.compile(r"^DROP\s+(TABLE|VIEW)\s+(IF\s+EXISTS\s+)?(\w+)(\s+SYNC)?$", _I)
_RENAME = re.compile(r"^RENAME\s+TABLE\s+(.*)$", _I)
_EXCHANGE = re.compile(r"^EXCHANGE\s+TABLES\s+(\w+)\s+AND\s+(\w+)$", _I)
_TRUNCATE = re.compile(r"^TRUNCATE\s+(?:TABLE\s+)?(IF\s+EXISTS\s+)?(\w+)$", _I)
_OPTIMIZE = re.compile(r"^OPTIMIZE\s+TABLE\s+(\w+)(.*)$", _I)
_INSERT = re.compile(r"^INSERT\s+INTO\s+(\w+)\b", _I)
# A partition moved between tables names the other one: that one's local table too.
_OTHER_TABLE = re.compile(r"\b(FROM|TO\s+TABLE)\s+(\w+)\b", _I)


class NoClusterRule(ValueError):
    """A statement of sql/ this module cannot rewrite yet: add its rule here."""


@dataclass
class Schema:
    """What the statements so far created: sharded tables with their sharding key, the
    reference tables and the views."""

    sharded: dict[str, str] = field(default_factory=dict)
    reference: set[str] = field(default_factory=set)
    views: set[str] = field(default_factory=set)


def cluster_ddl(database: str, after: int = 0,
                known: Sequence[Migration] | None = None) -> list[str]:
    """Every statement, in order, that brings a cluster to the migrations of sql/ after version
    ``after`` (0: from nothing). The earlier migrations are read, not emitted: they say which
    tables exist and how they are sharded."""
    schema = Schema()
    out = [f"CREATE DATABASE IF NOT EXISTS {database} ON CLUSTER {CLUSTER}"]
    out += rewrite(MIGRATIONS_TABLE, schema, database)
    for migration in migrations() if known is None else known:
        statements = []
        for statement in migration.statements():
            try:
                statements += rewrite(statement, schema, database)
            except NoClusterRule as exc:
                raise NoClusterRule(f"{migration.file}: {exc}") from None
        if migration.version > after:
            out += statements
            out.append("INSERT INTO schema_migrations (version, name, checksum) VALUES "
                       f"({migration.version}, '{migration.name}', '{migration.checksum}')")
    return out


def rewrite(statement: str, schema: Schema, database: str) -> list[str]:
    """The cluster form of one single-node statement (updating ``schema``)."""
    statement = statement.strip()
    for rule in (_create_table, _create_view, _alter, _drop, _rename, _exchange, _truncate,
                 _optimize, _insert):
        done = rule(statement, schema, database)
        if done is not None:
            return done
    raise NoClusterRule(f"no cluster rule for: {' '.join(statement.split())[:120]}")


def _create_table(statement: str, schema: Schema, database: str) -> list[str] | None:
    found = _CREATE_TABLE.match(statement)
    if not found:
        return None
    if_not_exists, name, rest = found[1] or "", found[2], found[3]
    if not rest.startswith("("):
        raise NoClusterRule(f"CREATE TABLE {name} without a column list")
    end = _closing(rest, 0)
    columns, tail = rest[:end + 1], rest[end + 1:].strip()
    engine = _ENGINE.match(tail)
    if not engine or not engine[1].endswith("MergeTree") or engine[1].startswith("Replicated"):
        raise NoClusterRule(f"CREATE TABLE {name}: not a (non-replicated) MergeTree table")
    tail = tail[engine.end():]
    args = ""
    if tail.startswith("("):
        close = _closing(tail, 0)
        args, tail = tail[1:close].strip(), tail[close + 1:].strip()
    tail = _without_local_dedup(tail)
    key = _ORDER_BY.search(tail)
    if not key:
        raise NoClusterRule(f"CREATE TABLE {name}: no ORDER BY")
    reference = name in REFERENCE
    table = name if reference else name + LOCAL
    path = WHOLE_PATH if reference else SHARD_PATH
    replicated = ", ".join([f"'{path}'", f"'{REPLICA}'", *([args] if args else [])])
    head = f"CREATE TABLE {if_not_exists}{table} ON CLUSTER {CLUSTER}"
    out = [f"{head} {columns}\nENGINE = Replicated{engine[1]}({replicated})\n{tail}"]
    if reference:
        schema.reference.add(name)
        return out
    schema.sharded[name] = _sharding_key(key[1])
    return out + [_distributed(name, schema.sharded[name], database, if_not_exists)]


def _distributed(name: str, key: str, database: str, if_not_exists: str = "") -> str:
    return (f"CREATE TABLE {if_not_exists}{name} ON CLUSTER {CLUSTER} AS {name}{LOCAL} "
            f"ENGINE = Distributed({CLUSTER}, '{database}', '{name}{LOCAL}', {key})")


def _sharding_key(order_by: str) -> str:
    """The identity's hash: the sorting key (a tuple or one column); no key, no identity."""
    order_by = order_by.strip()
    if re.fullmatch(r"tuple\(\s*\)", order_by, re.IGNORECASE):
        return "rand()"
    if order_by.startswith("(") and _closing(order_by, 0) == len(order_by) - 1:
        order_by = order_by[1:-1].strip()
    return f"cityHash64({order_by})"


def _without_local_dedup(tail: str) -> str:
    found = _SETTINGS.search(tail)
    if not found:
        return tail
    kept = [s.strip() for s in _top_level_split(found[1])
            if not re.match(r"non_replicated_deduplication_window\s*=", s.strip(), re.I)]
    return tail[:found.start()] + (f"\nSETTINGS {', '.join(kept)}" if kept else "")


def _create_view(statement: str, schema: Schema, database: str) -> list[str] | None:
    if re.match(r"^CREATE\s+MATERIALIZED\s+VIEW\b", statement, re.I):
        raise NoClusterRule("a materialized view needs a rule (its target table's local form)")
    found = _CREATE_VIEW.match(statement)
    if not found:
        return None
    schema.views.add(found[2])
    return [f"{found[1]} ON CLUSTER {CLUSTER}{found[3]}"]


def _alter(statement: str, schema: Schema, database: str) -> list[str] | None:
    found = _ALTER.match(statement)
    if not found:
        return None
    name, commands = found[1], found[2]
    if name in schema.reference:
        return [f"ALTER TABLE {name} ON CLUSTER {CLUSTER} {commands}"]
    if name not in schema.sharded:
        raise NoClusterRule(f"ALTER TABLE {name}: not a table of the migrations")
    local = _OTHER_TABLE.sub(lambda m: f"{m[1]} {_local_name(m[2], schema)}", commands)
    out = [f"ALTER TABLE {name}{LOCAL} ON CLUSTER {CLUSTER} {local}"]
    parts = [c.strip() for c in _top_level_split(commands)]
    if all(_COLUMN_COMMAND.match(c) for c in parts):
        out.append(f"ALTER TABLE {name} ON CLUSTER {CLUSTER} {commands}")  # its structure too
    elif any(_COLUMN_COMMAND.match(c) for c in parts):
        raise NoClusterRule(f"ALTER TABLE {name} mixes column and other commands")
    return out


def _local_name(name: str, schema: Schema) -> str:
    return name + LOCAL if name in schema.sharded else name


def _drop(statement: str, schema: Schema, database: str) -> list[str] | None:
    found = _DROP.match(statement)
    if not found:
        return None
    kind, if_exists, name = found[1].upper(), found[2] or "", found[3]
    if name in schema.sharded:
        del schema.sharded[name]
        return [f"DROP TABLE {if_exists}{name} ON CLUSTER {CLUSTER} SYNC",
                f"DROP TABLE {if_exists}{name}{LOCAL} ON CLUSTER {CLUSTER} SYNC"]
    schema.reference.discard(name)
    schema.views.discard(name)
    return [f"DROP {kind} {if_exists}{name} ON CLUSTER {CLUSTER} SYNC"]


def _rename(statement: str, schema: Schema, database: str) -> list[str] | None:
    found = _RENAME.match(statement)
    if not found:
        return None
    out = []
    for pair in _top_level_split(found[1]):
        names = re.fullmatch(r"\s*(\w+)\s+TO\s+(\w+)\s*", pair, re.I)
        if not names:
            raise NoClusterRule(f"RENAME TABLE {pair.strip()}: not 'a TO b'")
        old, new = names[1], names[2]
        if old in schema.sharded:
            # the Distributed table names its local one: a new one over the renamed table
            key = schema.sharded.pop(old)
            schema.sharded[new] = key
            out += [f"RENAME TABLE {old}{LOCAL} TO {new}{LOCAL} ON CLUSTER {CLUSTER}",
                    f"DROP TABLE {old} ON CLUSTER {CLUSTER} SYNC",
                    _distributed(new, key, database)]
        else:
            for group in (schema.reference, schema.views):
                if old in group:
                    group.discard(old)
                    group.add(new)
            out.append(f"RENAME TABLE {old} TO {new} ON CLUSTER {CLUSTER}")
    return out


def _exchange(statement: str, schema: Schema, database: str) -> list[str] | None:
    found = _EXCHANGE.match(statement)
    if not found:
        return None
    a, b = found[1], found[2]
    if (a in schema.sharded) != (b in schema.sharded):
        raise NoClusterRule(f"EXCHANGE TABLES {a} AND {b}: one sharded, one not")
    if a in schema.sharded:
        # each Distributed table keeps its name and reads the exchanged local table; where the
        # two sorting keys differ (a table rebuilt with another ORDER BY) each is made again
        # with its new local table's key, so every write of an identity still goes to the shard
        # holding its earlier versions (the rows copied in went by the new table's key)
        schema.sharded[a], schema.sharded[b] = schema.sharded[b], schema.sharded[a]
        out = [f"EXCHANGE TABLES {a}{LOCAL} AND {b}{LOCAL} ON CLUSTER {CLUSTER}"]
        if schema.sharded[a] != schema.sharded[b]:
            for name in (a, b):
                out += [f"DROP TABLE {name} ON CLUSTER {CLUSTER} SYNC",
                        _distributed(name, schema.sharded[name], database)]
        return out
    return [f"EXCHANGE TABLES {a} AND {b} ON CLUSTER {CLUSTER}"]


def _truncate(statement: str, schema: Schema, database: str) -> list[str] | None:
    found = _TRUNCATE.match(statement)
    if not found:
        return None
    return [f"TRUNCATE TABLE {found[1] or ''}{_local_name(found[2], schema)} "
            f"ON CLUSTER {CLUSTER}"]


def _optimize(statement: str, schema: Schema, database: str) -> list[str] | None:
    found = _OPTIMIZE.match(statement)
    if not found:
        return None
    return [f"OPTIMIZE TABLE {_local_name(found[1], schema)} ON CLUSTER {CLUSTER}{found[2]}"]


def _insert(statement: str, schema: Schema, database: str) -> list[str] | None:
    found = _INSERT.match(statement)
    if not found:
        return None
    if found[1] not in schema.sharded and found[1] not in schema.reference:
        raise NoClusterRule(f"INSERT INTO {found[1]}: not a table of the migrations")
    return [statement]  # once: the Distributed table spreads it, replication copies it


def _closing(text: str, open_index: int) -> int:
    """The index of the bracket closing the one at ``open_index`` (quotes respected)."""
    depth, quote = 0, None
    for i in range(open_index, len(text)):
        char = text[i]
        if quote:
            if char == "\\":
                continue
            if char == quote and text[i - 1] != "\\":
                quote = None
        elif char in "'`\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return i
    raise NoClusterRule(f"unbalanced brackets in: {text[:80]}")


def _top_level_split(text: str) -> list[str]:
    """``text`` split at the commas outside brackets and quotes."""
    parts, depth, quote, start = [], 0, None, 0
    for i, char in enumerate(text):
        if quote:
            if char == quote and text[i - 1] != "\\":
                quote = None
        elif char in "'`\"":
            quote = char
        elif char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    return [*parts, text[start:]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m servicescore.ops.cluster",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="servicescore",
                        help="the database (SERVICESCORE_CLICKHOUSE_DATABASE); default "
                             "servicescore")
    parser.add_argument("--after", type=int, default=0, metavar="VERSION",
                        help="only the migrations after this version (the cluster has them)")
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", args.database):
        parser.error(f"{args.database!r} is not a database name (letters, digits, _)")
    try:
        statements = cluster_ddl(args.database, args.after)
    except NoClusterRule as exc:
        print(f"servicescore: {exc}", file=sys.stderr)
        return 1
    print(f"-- servicescore schema for a ClickHouse cluster, database {args.database} "
          f"(migrations after {args.after:03d}); generated from sql/ by "
          "python -m servicescore.ops.cluster\n")
    for statement in statements:
        print(statement + ";\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

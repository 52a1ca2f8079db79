"""The database's own guards: the append-only triggers, as the migrations made them.

``trigger_problems`` compares the triggers on the log's tables with what
migrations 0001 and 0002 created and names every one that is missing, altered,
disabled, or not ours. The writer refuses to start on such a database, checks
again while idle, and ``saksi check`` reports the same lines.

Not here: a PostgreSQL superuser can skip triggers for one session
(``session_replication_role = replica``), which no other session can see;
that edit is still caught by the proofs and the seal (SECURITY.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from sqlalchemy.engine import Connection

__all__ = ["trigger_problems"]

APPEND_ONLY = ("log_meta", "entries", "tiles", "checkpoints", "records")
TABLES = (*APPEND_ONLY, "tree_head")

_SQLITE_EXPECTED = {
    **{
        f"{table}_no_{verb}": (
            table,
            f"CREATE TRIGGER {table}_no_{verb} BEFORE {verb.upper()} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, 'saksi: {table} is append-only'); END",
        )
        for table in APPEND_ONLY
        for verb in ("update", "delete")
    },
    "tree_head_forward": (
        "tree_head",
        "CREATE TRIGGER tree_head_forward BEFORE UPDATE ON tree_head "
        "WHEN NEW.size < OLD.size OR NEW.made_at_ms <= OLD.made_at_ms "
        "OR NEW.id != OLD.id "
        "BEGIN SELECT RAISE(ABORT, 'saksi: tree head may only move forward'); END",
    ),
    "tree_head_no_delete": (
        "tree_head",
        "CREATE TRIGGER tree_head_no_delete BEFORE DELETE ON tree_head "
        "BEGIN SELECT RAISE(ABORT, 'saksi: tree head cannot be deleted'); END",
    ),
}

# pg_trigger.tgtype bits: ROW 1, BEFORE 2, DELETE 8, UPDATE 16, TRUNCATE 32.
_ROW_UPDATE_DELETE = 1 | 2 | 8 | 16
_STATEMENT_TRUNCATE = 2 | 32
_PG_EXPECTED = {
    **{
        f"{table}_append_only": (table, _ROW_UPDATE_DELETE, "saksi_append_only")
        for table in APPEND_ONLY
    },
    **{
        f"{table}_no_truncate": (table, _STATEMENT_TRUNCATE, "saksi_append_only")
        for table in TABLES
    },
    "tree_head_forward": ("tree_head", _ROW_UPDATE_DELETE, "saksi_head_forward"),
}
_PG_FUNCTIONS = {
    "saksi_append_only": "BEGIN RAISE EXCEPTION 'saksi: % is append-only', "
    "TG_TABLE_NAME; END",
    "saksi_head_forward": "BEGIN IF TG_OP <> 'UPDATE' OR NEW.size < OLD.size "
    "OR NEW.made_at_ms <= OLD.made_at_ms OR NEW.id <> OLD.id THEN "
    "RAISE EXCEPTION 'saksi: tree head may only move forward'; END IF; "
    "RETURN NEW; END",
}


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def trigger_problems(conn: Connection) -> list[str]:
    """One line for each append-only trigger that is missing, altered or foreign."""
    if conn.dialect.name == "sqlite":
        return _sqlite(conn)
    return _postgresql(conn)


def _sqlite(conn: Connection) -> list[str]:
    marks = ", ".join("?" * len(TABLES))
    found = {
        name: (table, _squash(sql or ""))
        for name, table, sql in conn.exec_driver_sql(
            "SELECT name, tbl_name, sql FROM sqlite_master "  # noqa: S608 - marks
            f"WHERE type = 'trigger' AND tbl_name IN ({marks})",
            TABLES,
        )
    }
    return _compare(found, _SQLITE_EXPECTED)


def _postgresql(conn: Connection) -> list[str]:
    rows = conn.exec_driver_sql(
        "SELECT t.tgname, c.relname, t.tgtype, p.proname, t.tgenabled "
        "FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "JOIN pg_proc p ON p.oid = t.tgfoid "
        "WHERE NOT t.tgisinternal AND c.relname = ANY(%s) "
        "AND c.relnamespace = to_regnamespace(current_schema())::oid",
        (list(TABLES),),
    ).all()
    problems = [
        f"trigger {name} on {table} is disabled ({enabled})"
        for name, table, _, _, enabled in rows
        if enabled != "O"
    ]
    found = {
        name: (table, int(kind), function) for name, table, kind, function, _ in rows
    }
    problems += _compare(found, _PG_EXPECTED)
    sources: dict[str, str] = dict(
        conn.exec_driver_sql(
            "SELECT proname, prosrc FROM pg_proc WHERE proname = ANY(%s) "
            "AND pronamespace = to_regnamespace(current_schema())::oid",
            (list(_PG_FUNCTIONS),),
        ).all()
    )
    for function, body in _PG_FUNCTIONS.items():
        if function not in sources:
            problems.append(f"trigger function {function} is missing")
        elif _squash(sources[function]) != body:
            problems.append(f"trigger function {function} is altered")
    return problems


def _compare(
    found: Mapping[str, tuple[object, ...]], expected: Mapping[str, tuple[object, ...]]
) -> list[str]:
    problems = []
    for name, want in expected.items():
        have = found.get(name)
        if have is None:
            problems.append(f"append-only trigger {name} on {want[0]} is missing")
        elif have != want:
            problems.append(f"append-only trigger {name} on {want[0]} is altered")
    problems += [
        f"trigger {name} on {have[0]} is not one of the log's"
        for name, have in sorted(found.items())
        if name not in expected
    ]
    return problems

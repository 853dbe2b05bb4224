"""What an archive run checks before it touches anything: the live schema, its privileges, the lake and who
owns it, foreign keys into the table and ON DELETE triggers on it.

Each failure is one message naming everything that is missing; nothing has been written or deleted yet.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import psycopg
from psycopg import sql

from forge_assets.lake import LakeStoreError, ObjectPath
from forge_assets.retention.catalog import TableEntry, rule_reads, validate
from forge_assets.retention.errors import RetentionError
from forge_assets.retention.ownership import LakeOwnershipError, Ledger, claim_lake, ledger_of

LEDGER = "forge_retention.archive_ledger"
_ACTIONS = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}


class PreflightError(RuntimeError):
    """An archive run cannot succeed as configured; nothing was written or deleted."""


def check_archive(conn: psycopg.Connection, entry: TableEntry, directory: Path, lake_root: Path) -> Ledger:
    """Raise CatalogError on schema drift, PreflightError on missing privileges, an unwritable lake, a lake
    owned by another ledger or an ON DELETE trigger not opted in; return this database's ledger."""
    validate(conn, [entry])
    missing = _missing_privileges(conn, entry)
    if missing:
        user = conn.execute("SELECT current_user").fetchone()[0]
        grant = sql.SQL("GRANT forge_retention TO {}").format(sql.Identifier(user)).as_string(conn)
        raise PreflightError(
            f"{entry.key}: role {user} lacks {'; '.join(missing)}. Archiving runs as a member of forge_retention "
            f"({grant}; README: Deploy against production); nothing was written or deleted")
    if conn.execute("SELECT current_setting('transaction_read_only')::bool").fetchone()[0]:
        raise PreflightError(f"{entry.key}: the connection is read-only; nothing was written or deleted")
    _refuse_delete_triggers(conn, entry)
    conn.rollback()
    try:
        ledger = ledger_of(conn)
    except LakeOwnershipError as exc:
        raise PreflightError(str(exc)) from None
    conn.rollback()
    if entry.archives:
        _check_writable(entry, directory)
        try:
            claim_lake(lake_root, entry.source, ledger)
        except LakeOwnershipError as exc:
            raise PreflightError(f"{entry.key}: {exc}") from None
        except LakeStoreError as exc:
            raise PreflightError(f"{entry.key}: {exc}; nothing was written or deleted") from None
        except OSError as exc:
            raise PreflightError(f"{entry.key}: the lake directory {directory} is not writable by this process "
                                 f"({exc.strerror or exc}); nothing was written or deleted") from None
    return ledger


def foreign_keys(conn: psycopg.Connection, table: str) -> list[tuple[str, str, str, str, list[str], list[str]]]:
    """Every foreign key into `table` (from any schema, any number of columns): (child as regclass text,
    child schema, child table, ON DELETE action, child columns, parent columns)."""
    return [(child, schema, name, _ACTIONS.get(action, action), list(fk), list(pk)) for child, schema, name, action, fk, pk
            in conn.execute(
        "SELECT c.conrelid::regclass::text, n.nspname::text, r.relname::text, c.confdeltype::text, "
        "array_agg(ca.attname::text ORDER BY k.i), array_agg(pa.attname::text ORDER BY k.i) "
        "FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid JOIN pg_namespace n ON n.oid = r.relnamespace "
        "CROSS JOIN LATERAL unnest(c.conkey, c.confkey) WITH ORDINALITY AS k(child_attnum, parent_attnum, i) "
        "JOIN pg_attribute ca ON ca.attrelid = c.conrelid AND ca.attnum = k.child_attnum "
        "JOIN pg_attribute pa ON pa.attrelid = c.confrelid AND pa.attnum = k.parent_attnum "
        "WHERE c.contype = 'f' AND c.conparentid = 0 AND c.confrelid = to_regclass(format('%%I', %s::text)) "
        "GROUP BY c.oid, c.conrelid, n.nspname, r.relname, c.confdeltype ORDER BY 1, c.conname", (table,))]


def refuse_if_referenced(conn: psycopg.Connection, entry: TableEntry, day_rows: sql.Composable, day: date) -> None:
    """Deleting rows other rows reference would cascade, null or reset them (CASCADE, SET NULL, SET DEFAULT) or
    fail late (NO ACTION, RESTRICT): refuse, naming the child table, unless no child row references a row of
    the day (`day_rows`: the day's rows as alias `p`). Runs under the archiving snapshot, before anything is
    written; a child row committed after it makes the DELETE fail (REPEATABLE READ), never cascade."""
    found = []
    for child, schema, name, action, fk, pk in foreign_keys(conn, entry.table):
        match = sql.SQL(" AND ").join(sql.SQL("p.{} = c.{}").format(sql.Identifier(p), sql.Identifier(f))
                                      for f, p in zip(fk, pk, strict=True))
        query = sql.SQL("SELECT count(*) FROM {child} c WHERE EXISTS (SELECT 1 FROM {parent} p WHERE {match} AND {day})"
                        ).format(child=sql.Identifier(schema, name), parent=sql.Identifier(entry.table), match=match,
                                 day=day_rows)
        if name == entry.table:  # a row referencing a row of its own day goes with it
            query = sql.SQL("{} AND NOT EXISTS (SELECT 1 FROM {parent} p WHERE p.ctid = c.ctid AND {day})").format(
                query, parent=sql.Identifier(entry.table), day=day_rows)
        count = conn.execute(query).fetchone()[0]
        if count:
            found.append(f"{count} rows of {child} still reference these rows (foreign key ({', '.join(fk)}) "
                         f"ON DELETE {action}); archive {child} first")
    if found:
        raise RetentionError(f"{entry.key} {day}: {'; '.join(found)} (nothing deleted)")


def _refuse_delete_triggers(conn: psycopg.Connection, entry: TableEntry) -> None:
    """An ON DELETE trigger or rule could change other rows than those archived: refuse unless the catalog
    names it in `delete_triggers`."""
    found = conn.execute(
        "SELECT DISTINCT t.tgname::text FROM pg_trigger t WHERE NOT t.tgisinternal AND t.tgenabled <> 'D' "
        "AND (t.tgtype & 8) <> 0 AND t.tgrelid IN (SELECT relid FROM pg_partition_tree(%(t)s::oid::regclass) "
        "UNION SELECT %(t)s::oid) "
        "UNION SELECT DISTINCT 'rule ' || r.rulename::text FROM pg_rewrite r WHERE r.ev_type = '4' AND r.ev_class IN "
        "(SELECT relid FROM pg_partition_tree(%(t)s::oid::regclass) UNION SELECT %(t)s::oid) ORDER BY 1",
        {"t": _regclass(conn, entry.table)}).fetchall()
    refused = [name for (name,) in found if name not in entry.delete_triggers]
    if refused:
        raise PreflightError(
            f"{entry.key}: {entry.table} has ON DELETE trigger(s) {', '.join(refused)}, which a purge would fire "
            "(they may change or delete other rows than those archived); name them in the catalog entry's "
            "delete_triggers to allow it. Nothing was written or deleted")


def _regclass(conn: psycopg.Connection, table: str) -> int | None:
    return conn.execute("SELECT to_regclass(format('%%I', %s::text))::oid", (table,)).fetchone()[0]


def _missing_privileges(conn: psycopg.Connection, entry: TableEntry) -> list[str]:
    table = conn.execute("SELECT to_regclass(format('%%I', %s::text))::oid", (entry.table,)).fetchone()[0]
    wanted = [
        (f"SELECT on {entry.table}", "SELECT has_table_privilege(%s::oid, 'SELECT')", (table,)),
        (f"DELETE on {entry.table}", "SELECT has_table_privilege(%s::oid, 'DELETE')", (table,)),
        ("USAGE on schema forge_retention", "SELECT has_schema_privilege('forge_retention', 'USAGE')", ()),
        *((f"{p} on {LEDGER}", "SELECT has_table_privilege(%s, %s)", (LEDGER, p)) for p in ("SELECT", "INSERT")),
        (f"UPDATE (restored_at) on {LEDGER}", "SELECT has_column_privilege(%s, 'restored_at', 'UPDATE')", (LEDGER,)),
    ]
    missing = [label for label, query, args in wanted if not conn.execute(query, args).fetchone()[0]]
    missing += [f"SELECT ({column}) on {child}, which references {entry.table}" for child, column in conn.execute(
        "SELECT DISTINCT c.conrelid::regclass::text, a.attname FROM pg_constraint c "
        "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey) "
        "WHERE c.contype = 'f' AND c.conparentid = 0 AND c.confrelid = %s "
        "AND NOT has_column_privilege(c.conrelid, a.attnum, 'SELECT') ORDER BY 1, 2", (table,))]
    for unfinished in entry.unfinished:
        if unfinished.parent:
            for column in (unfinished.column, unfinished.parent_key):
                if not conn.execute("SELECT has_column_privilege(to_regclass(format('%%I', %s::text)), %s, 'SELECT')",
                                    (unfinished.parent, column)).fetchone()[0]:
                    missing.append(f"SELECT ({column}) on {unfinished.parent} (tells unfinished work)")
    missing += [f"SELECT ({', '.join(columns)}) on {other} (read by the policy file's rules)"
                for other, columns in rule_reads(entry).items()
                if not all(conn.execute("SELECT has_column_privilege(%s, %s, 'SELECT')", (other, c)).fetchone()[0]
                           for c in columns)]
    return missing


def _check_writable(entry: TableEntry, directory: Path) -> None:
    """The day's directory, or its nearest existing ancestor, must be a directory this process may write."""
    if isinstance(directory, ObjectPath):  # no permission bits: the lake's marker claim writes first
        return
    existing = directory
    try:
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        writable = existing.is_dir() and os.access(existing, os.W_OK | os.X_OK)
    except OSError:  # a parent this process may not even search
        writable = False
    if not writable:
        raise PreflightError(
            f"{entry.key}: the lake directory {directory} is not writable by this process (uid {os.geteuid()}); "
            "nothing was written or deleted")


def check_restore(conn: psycopg.Connection, entry: TableEntry) -> None:
    """Raise PreflightError, before anything is loaded, when the login may not restore `entry`'s rows."""
    table = conn.execute("SELECT to_regclass(format('%%I', %s::text))::oid", (entry.table,)).fetchone()[0]
    if table is None:
        raise PreflightError(f"{entry.key}: table {entry.table} does not exist in this database; nothing was restored")
    wanted = [
        *((f"{p} on {entry.table}", "SELECT has_table_privilege(%s::oid, %s)", (table, p)) for p in ("SELECT", "INSERT")),
        ("USAGE on schema forge_retention", "SELECT has_schema_privilege('forge_retention', 'USAGE')", ()),
        *((f"{p} on {LEDGER}", "SELECT has_schema_privilege('forge_retention', 'USAGE') AND has_table_privilege(%s, %s)",
           (LEDGER, p)) for p in ("SELECT", "UPDATE")),
    ]
    missing = [label for label, query, args in wanted if not conn.execute(query, args).fetchone()[0]]
    conn.rollback()
    if missing:
        user = conn.execute("SELECT current_user").fetchone()[0]
        conn.rollback()
        grant = sql.SQL("GRANT forge_owner TO {}").format(sql.Identifier(user)).as_string(conn)
        raise PreflightError(
            f"{entry.key}: role {user} lacks {'; '.join(missing)}. Restoring runs as the owner login "
            f"(FORGE_<SOURCE>_OWNER_URL, a member of forge_owner: {grant}, with `forge-assets grants` applied; README: "
            "Deploy against production); nothing was restored")

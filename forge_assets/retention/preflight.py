"""What an archive run checks before it touches anything: the live schema, its privileges, the lake.

Each failure is one message naming everything that is missing; nothing has been written or deleted yet.
"""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
from psycopg import sql

from forge_assets.retention.catalog import TableEntry, validate

LEDGER = "forge_retention.archive_ledger"


class PreflightError(RuntimeError):
    """An archive run cannot succeed as configured; nothing was written or deleted."""


def check_archive(conn: psycopg.Connection, entry: TableEntry, directory: Path) -> None:
    """Raise CatalogError on schema drift, PreflightError on missing privileges or an unwritable lake."""
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
    if entry.archives:
        _check_writable(entry, directory)


def _missing_privileges(conn: psycopg.Connection, entry: TableEntry) -> list[str]:
    table = conn.execute("SELECT to_regclass(format('%%I', %s::text))::oid", (entry.table,)).fetchone()[0]
    wanted = [
        (f"SELECT on {entry.table}", "SELECT has_table_privilege(%s::oid, 'SELECT')", (table,)),
        (f"DELETE on {entry.table}", "SELECT has_table_privilege(%s::oid, 'DELETE')", (table,)),
        ("USAGE on schema forge_retention", "SELECT has_schema_privilege('forge_retention', 'USAGE')", ()),
        *((f"{p} on {LEDGER}", "SELECT has_table_privilege(%s, %s)", (LEDGER, p)) for p in ("SELECT", "INSERT", "DELETE")),
    ]
    missing = [label for label, query, args in wanted if not conn.execute(query, args).fetchone()[0]]
    missing += [f"SELECT ({column}) on {child}, which references {entry.table}" for child, column in conn.execute(
        "SELECT c.conrelid::regclass::text, a.attname FROM pg_constraint c "
        "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
        "WHERE c.contype = 'f' AND c.confrelid = %s AND cardinality(c.conkey) = 1 "
        "AND NOT has_column_privilege(c.conrelid, a.attnum, 'SELECT')", (table,))]
    if entry.strategy == "drop_partition":
        not_owned = [name for (name,) in conn.execute(
            "SELECT c.oid::regclass::text FROM pg_class c WHERE (c.oid = %s OR c.oid IN "
            "(SELECT inhrelid FROM pg_inherits WHERE inhparent = %s)) "
            "AND NOT pg_has_role(current_user, c.relowner, 'USAGE') ORDER BY c.relname", (table, table))]
        if not_owned:
            shown = ", ".join(not_owned[:5]) + (f" and {len(not_owned) - 5} more" if len(not_owned) > 5 else "")
            missing.append(f"ownership of {shown} (only an owner may DETACH and DROP a partition)")
    return missing


def _check_writable(entry: TableEntry, directory: Path) -> None:
    """The day's directory, or its nearest existing ancestor, must be a directory this process may write."""
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

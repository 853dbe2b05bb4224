"""Grants on a source's tables for the least-privilege roles, derived from the catalog.

The roles themselves (cluster-wide, NOLOGIN) and their rights on forge_assets' own schema come from the
migration `sql/migrations/forge_retention/002_roles.sql`. On the source's tables:

- `forge_reader` (rollups, checks): SELECT on every table of the source's schema, except its sensitive
  columns (catalog.SENSITIVE), which it cannot read at all;
- `forge_retention` (archive and purge): SELECT and DELETE on the catalog's tables, SELECT on the
  referencing columns of every foreign key into one of them (any number of columns, any schema: the engine
  counts such rows to refuse a purge that would cascade, null or fail), and SELECT on the columns of the
  tables that tell unfinished work (a job's status for its events). Nothing else: no INSERT, UPDATE,
  TRUNCATE or DDL.

`drop_partition` entries also need forge_retention to own the partitioned table and its partitions:
PostgreSQL lets only an owner DETACH and DROP a partition, and no GRANT confers that. The engine's
preflight refuses such an entry, before writing anything, when the role does not own them.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from forge_assets.catalog import SENSITIVE, entries

READER = "forge_reader"
RETENTION = "forge_retention"


def grant_statements(conn: psycopg.Connection, source: str) -> list[sql.Composed]:
    """The GRANT (and REVOKE) statements that give both roles exactly their rights on `source`'s tables."""
    tables = conn.execute(
        "SELECT c.relname, array_agg(a.attname::text ORDER BY a.attnum) FROM pg_class c "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
        "WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition "
        "GROUP BY c.relname ORDER BY c.relname").fetchall()
    reader, retention = sql.Identifier(READER), sql.Identifier(RETENTION)
    statements = []
    for table, columns in tables:
        name = sql.Identifier(table)
        sensitive = SENSITIVE.get((source, table), ())
        if not sensitive:
            statements.append(sql.SQL("GRANT SELECT ON {} TO {}").format(name, reader))
            continue
        readable = sql.SQL(", ").join(sql.Identifier(c) for c in columns if c not in sensitive)
        statements.append(sql.SQL("REVOKE SELECT ON {} FROM {}").format(name, reader))  # and its column grants
        statements.append(sql.SQL("GRANT SELECT ({}) ON {} TO {}").format(readable, name, reader))
    for table in dict.fromkeys(e.table for e in entries(source)):
        statements.append(sql.SQL("GRANT SELECT, DELETE ON {} TO {}").format(sql.Identifier(table), retention))
        for schema, child, columns in conn.execute(
            "SELECT n.nspname::text, r.relname::text, array_agg(DISTINCT a.attname::text ORDER BY a.attname::text) "
            "FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid JOIN pg_namespace n ON n.oid = r.relnamespace "
            "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey) "
            "WHERE c.contype = 'f' AND c.conparentid = 0 AND c.confrelid = to_regclass(format('%%I', %s::text)) "
            "GROUP BY 1, 2 ORDER BY 1, 2", (table,)):
            statements.append(sql.SQL("GRANT SELECT ({}) ON {} TO {}").format(
                sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(schema, child), retention))
    catalog_tables = {e.table for e in entries(source)}
    parents: dict[str, set[str]] = {}
    for entry in entries(source):
        for unfinished in entry.unfinished:
            if unfinished.parent and unfinished.parent not in catalog_tables:
                parents.setdefault(unfinished.parent, set()).update((unfinished.column, unfinished.parent_key))
    for parent, columns in sorted(parents.items()):
        statements.append(sql.SQL("GRANT SELECT ({}) ON {} TO {}").format(
            sql.SQL(", ").join(map(sql.Identifier, sorted(columns))), sql.Identifier(parent), retention))
    conn.rollback()
    return statements


def apply_grants(conn: psycopg.Connection, source: str) -> int:
    """Apply `grant_statements` in one transaction (idempotent); return how many statements ran."""
    statements = grant_statements(conn, source)
    with conn.transaction():
        for statement in statements:
            conn.execute(statement)
    return len(statements)

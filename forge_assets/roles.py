"""Grants on a source's tables for the least-privilege roles, derived from the catalog.

The roles themselves (cluster-wide, NOLOGIN) and their rights on forge_assets' own schema come from the
migration `sql/migrations/forge_retention/002_roles.sql`. On the source's tables:

- `forge_reader` (rollups, checks): SELECT on every table of the source's schema, except its sensitive
  columns (catalog.SENSITIVE), which it cannot read at all;
- `forge_retention` (archive and purge): SELECT and DELETE on the catalog's tables, and SELECT on the
  referencing column of every table with a foreign key into one of them (the engine counts such rows to
  refuse a purge that would cascade). Nothing else: no INSERT, UPDATE, TRUNCATE or DDL.

`drop_partition` entries also need forge_retention to own the partitioned table and its partitions:
PostgreSQL lets only an owner DETACH and DROP a partition, and no GRANT confers that. The engine's
preflight refuses such an entry, before writing anything, when the role does not own them.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from forge_assets.retention.catalog import rule_reads
from forge_assets.retention.policy import current_policy

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
    policy = current_policy()  # the policy file may add sensitive columns, switch entries off, add rules
    statements = []
    for table, columns in tables:
        name = sql.Identifier(table)
        sensitive = policy.sensitive_columns(source, table)
        if not sensitive:
            statements.append(sql.SQL("GRANT SELECT ON {} TO {}").format(name, reader))
            continue
        readable = sql.SQL(", ").join(sql.Identifier(c) for c in columns if c not in sensitive)
        statements.append(sql.SQL("REVOKE SELECT ON {} FROM {}").format(name, reader))  # and its column grants
        statements.append(sql.SQL("GRANT SELECT ({}) ON {} TO {}").format(readable, name, reader))
    selected = policy.effective_entries(source)
    for table in dict.fromkeys(e.table for e in selected):
        statements.append(sql.SQL("GRANT SELECT, DELETE ON {} TO {}").format(sql.Identifier(table), retention))
        for child, column in conn.execute(
            "SELECT c.conrelid::regclass::text, a.attname::text FROM pg_constraint c "
            "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
            "WHERE c.contype = 'f' AND c.confrelid = to_regclass(format('%%I', %s::text)) "
            "AND cardinality(c.conkey) = 1 ORDER BY 1, 2", (table,)):
            statements.append(sql.SQL("GRANT SELECT ({}) ON {} TO {}").format(
                sql.Identifier(column), sql.SQL(child), retention))  # regclass text: already quoted as needed
    reads: dict[str, dict[str, None]] = {}
    for entry in selected:
        for table, columns in rule_reads(entry).items():
            reads.setdefault(table, {}).update(dict.fromkeys(columns))
    for table, columns in reads.items():
        if table in {e.table for e in selected}:
            continue
        statements.append(sql.SQL("GRANT SELECT ({}) ON {} TO {}").format(  # read by the policy's rules
            sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(table), retention))
    conn.rollback()
    return statements


def apply_grants(conn: psycopg.Connection, source: str) -> int:
    """Apply `grant_statements` in one transaction (idempotent); return how many statements ran."""
    statements = grant_statements(conn, source)
    with conn.transaction():
        for statement in statements:
            conn.execute(statement)
    return len(statements)

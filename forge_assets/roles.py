"""Grants on a source's tables for the least-privilege roles, derived from the catalog.

The roles themselves (cluster-wide, NOLOGIN) and their rights on forge_assets' own schema come from the
migrations `sql/migrations/forge_retention/002_roles.sql` and `004_owner_role.sql`. On the source's tables:

- `forge_reader` (rollups, checks, sensor probes): SELECT on every table of the source's schema, except its
  sensitive columns (catalog.SENSITIVE), which it cannot read at all;
- `forge_retention` (archive and purge): SELECT and DELETE on the catalog's tables, SELECT on the
  referencing columns of every foreign key into one of them (any number of columns, any schema: the engine
  counts such rows to refuse a purge that would cascade, null or fail), SELECT on the columns of the tables
  that tell unfinished work (a job's status for its events), and SELECT on the columns the policy file's
  rules read in other tables (job templates and organizations by name). Nothing else: no INSERT, UPDATE,
  TRUNCATE or DDL;
- `forge_owner` (restore): SELECT and INSERT on the catalog's tables.

`drop_partition` entries also need forge_retention to own the partitioned table and its partitions:
PostgreSQL lets only an owner DETACH and DROP a partition, and no GRANT confers that (see `ownership_note`).
Every name is schema-qualified, so the statements mean the same whatever the search_path.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from forge_assets.retention.catalog import rule_reads
from forge_assets.retention.policy import current_policy

READER = "forge_reader"
RETENTION = "forge_retention"
OWNER = "forge_owner"

_TABLES = (
    "SELECT n.nspname, c.relname, array_agg(a.attname::text ORDER BY a.attnum) FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
    "WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition "
    "GROUP BY n.nspname, c.relname ORDER BY c.relname"
)
_REFERENCING_COLUMNS = (  # every foreign key into the table (composite ones too), once per child table
    "SELECT n.nspname::text, r.relname::text, array_agg(DISTINCT a.attname::text ORDER BY a.attname::text) "
    "FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid JOIN pg_namespace n ON n.oid = r.relnamespace "
    "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey) "
    "WHERE c.contype = 'f' AND c.conparentid = 0 AND c.confrelid = to_regclass(format('%%I', %s::text)) "
    "GROUP BY 1, 2 ORDER BY 1, 2"
)


def grant_statements(conn: psycopg.Connection, source: str) -> list[sql.Composed]:
    """The GRANT (and REVOKE) statements that give the three roles exactly their rights on `source`'s tables."""
    reader, retention, owner = sql.Identifier(READER), sql.Identifier(RETENTION), sql.Identifier(OWNER)
    policy = current_policy()  # the policy file may add sensitive columns, switch entries off, add rules
    statements = []
    schema_of = {}
    for schema, table, columns in conn.execute(_TABLES).fetchall():
        schema_of[table] = schema
        name = sql.Identifier(schema, table)
        sensitive = policy.sensitive_columns(source, table)
        if not sensitive:
            statements.append(sql.SQL("GRANT SELECT ON {} TO {}").format(name, reader))
            continue
        readable = sql.SQL(", ").join(sql.Identifier(c) for c in columns if c not in sensitive)
        statements.append(sql.SQL("REVOKE SELECT ON {} FROM {}").format(name, reader))  # and its column grants
        statements.append(sql.SQL("GRANT SELECT ({}) ON {} TO {}").format(readable, name, reader))
    selected = policy.effective_entries(source)
    catalog_tables = {e.table for e in selected}
    for table in dict.fromkeys(e.table for e in selected):
        name = sql.Identifier(schema_of.get(table, "public"), table)
        statements.append(sql.SQL("GRANT SELECT, DELETE ON {} TO {}").format(name, retention))
        statements.append(sql.SQL("GRANT SELECT, INSERT ON {} TO {}").format(name, owner))
        for schema, child, columns in conn.execute(_REFERENCING_COLUMNS, (table,)):
            statements.append(sql.SQL("GRANT SELECT ({}) ON {} TO {}").format(
                sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(schema, child), retention))
    reads: dict[str, dict[str, None]] = {}
    for entry in selected:
        for table, columns in rule_reads(entry).items():
            reads.setdefault(table, {}).update(dict.fromkeys(columns))
        for unfinished in entry.unfinished:  # the parent rows that tell whether a row is still in use
            if unfinished.parent:
                reads.setdefault(unfinished.parent, {}).update(dict.fromkeys((unfinished.column, unfinished.parent_key)))
    for table, columns in reads.items():
        if table not in catalog_tables:  # read by the policy's rules or the unfinished-work predicates
            statements.append(sql.SQL("GRANT SELECT ({}) ON {} TO {}").format(
                sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(schema_of.get(table, "public"), table),
                retention))
    conn.rollback()
    return statements


def ownership_note(source: str) -> list[str]:
    """What `drop_partition` entries need beyond GRANTs, as SQL comment lines for the owner to act on."""
    tables = sorted({e.table for e in current_policy().effective_entries(source) if e.strategy == "drop_partition"})
    if not tables:
        return []
    return [
        f"-- drop_partition ({', '.join(tables)}): only an owner may DETACH and DROP a partition, and no GRANT",
        "-- confers it. Give the partitioned table and its partitions to a group role that the application's",
        "-- owner and forge_retention both belong to, e.g. CREATE ROLE forge_partitions NOLOGIN;",
        "-- GRANT forge_partitions TO <application owner>, forge_retention; ALTER TABLE ... OWNER TO",
        "-- forge_partitions (the table and each partition), and have the application create new partitions",
        "-- after SET ROLE forge_partitions. Partitions it does not own are archived row by row instead (DELETE",
        "-- of exactly the archived rows; the run's metadata says `fallback: not owner of ...`) and kept.",
    ]


def apply_grants(conn: psycopg.Connection, source: str) -> int:
    """Apply `grant_statements` in one transaction (idempotent); return how many statements ran."""
    statements = grant_statements(conn, source)
    with conn.transaction():
        for statement in statements:
            conn.execute(statement)
    return len(statements)

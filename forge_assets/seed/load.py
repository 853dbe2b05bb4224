"""`forge-assets seed`: deterministic, realistic data for the stand-in source databases, loaded with COPY."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import import_module

import psycopg
from psycopg import sql

from forge_assets.config import SOURCES, Settings
from forge_assets.db import source_connection
from forge_assets.seed import dirty
from forge_assets.seed.common import SeedPlan

# Each source's generator is `seed(conn, plan)` in the module of the same name: forge_assets/seed/<source>.py.
GENERATORS: dict[str, Callable[[psycopg.Connection, SeedPlan], None]] = {
    source: import_module(f"forge_assets.seed.{source}").seed for source in SOURCES
}


class SeedError(RuntimeError):
    """Seeding was refused or failed; the source database is unchanged."""


@dataclass(frozen=True)
class SeedReport:
    """Rows per table after seeding one source, and how long it took."""

    source: str
    counts: dict[str, int]
    seconds: float


def seed_sources(settings: Settings, plan: SeedPlan, sources: Iterable[str] = SOURCES,
                 reset: bool = False) -> list[SeedReport]:
    """Seed each source database in one transaction: all of its data lands, or none does."""
    reports = []
    for source in sources:
        started = time.perf_counter()
        with source_connection(settings, source) as conn:
            _require_stand_in(conn, source)
            conn.execute("SET LOCAL synchronous_commit = off")
            if reset:
                _clear(conn)
            else:
                _require_empty(conn, source)
            with _secondary_indexes_rebuilt_after(conn):
                GENERATORS[source](conn, plan)
            if plan.dirty:
                dirty.inject(conn, source)
            conn.commit()
            conn.execute("ANALYZE")
            reports.append(SeedReport(source, table_counts(conn), time.perf_counter() - started))
    return reports


def table_counts(conn: psycopg.Connection) -> dict[str, int]:
    """Exact row counts of the source tables (partitioned tables counted once, through the parent)."""
    counts = {}
    for (table,) in conn.execute(_SOURCE_TABLES + " ORDER BY c.relname").fetchall():
        counts[table] = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()[0]
    return counts


_SOURCE_TABLES = (
    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
)


@contextmanager
def _secondary_indexes_rebuilt_after(conn: psycopg.Connection) -> Iterator[None]:
    """Drop the plain tables' secondary indexes for the bulk load and build them again afterwards.

    One index build after the load is about twice as fast as maintaining the indexes row by row. It all
    happens in the seeding transaction, so a failure leaves the schema as it was.
    """
    indexes = conn.execute(
        "SELECT ic.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid "
        "JOIN pg_namespace n ON n.oid = t.relnamespace "
        "WHERE n.nspname = 'public' AND t.relkind = 'r' AND NOT t.relispartition "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)"
    ).fetchall()
    for name, _ in indexes:
        conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
    yield
    for _, definition in indexes:
        conn.execute(definition)


def _require_stand_in(conn: psycopg.Connection, source: str) -> None:
    """Refuse to write into a database whose schema forge_assets did not create (a real source)."""
    recorded = conn.execute(
        "SELECT to_regclass('forge_retention.schema_migrations') IS NOT NULL"
    ).fetchone()[0] and conn.execute(
        "SELECT count(*) FROM forge_retention.schema_migrations WHERE schema_name = %s", (source,)
    ).fetchone()[0]
    if not recorded:
        raise SeedError(
            f"the {source} database has no stand-in schema applied by `forge-assets migrate`; "
            "seed only writes into stand-in databases, never into a real source"
        )


def first_table_with_data(conn: psycopg.Connection) -> str | None:
    """A source table that holds at least one row (an EXISTS probe per table), or None when all are empty."""
    for (table,) in conn.execute(_SOURCE_TABLES + " ORDER BY c.relname").fetchall():
        if conn.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(table))).fetchone()[0]:
            return table
    return None


def _require_empty(conn: psycopg.Connection, source: str) -> None:
    table = first_table_with_data(conn)
    if table is not None:
        raise SeedError(f"the {source} database already holds data ({table}); use --reset to replace it")


def _clear(conn: psycopg.Connection) -> None:
    """Drop generated partitions and empty every source table."""
    partitions = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relispartition "
        "AND pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT'"
    ).fetchall()
    for (name,) in partitions:
        conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
    tables = [sql.Identifier(t) for (t,) in conn.execute(_SOURCE_TABLES).fetchall()]
    if tables:
        conn.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(sql.SQL(", ").join(tables)))

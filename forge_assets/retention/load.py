"""Loading archive files back into PostgreSQL (restore): a file's rows stream into one COPY, row group by
row group, whether or not the day already holds rows.

The COPY itself is PostgreSQL's work (heap, WAL and index inserts: measured with the same bytes, binary
COPY took as long as CSV, so the rows travel as CSV). What a restore adds around it is kept small: when
the day already holds rows, only those rows' whole-row identities are noted before the COPY, and afterwards
only rows whose key matches one of them are compared, so a restore next to a few live rows costs about what
a restore into an empty day does. A row is kept out only when an identical row (every loaded column) was
already there, as a multiset.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pyarrow.parquet as pq
from psycopg import sql

from forge_assets.pgcopy import copy_rows
from forge_assets.retention.content import as_postgres_input
from forge_assets.retention.stream import release_freed_memory

_BATCH_ROWS = 8_192
_PRESENT = sql.Identifier("forge_present")
_STAGING = sql.Identifier("forge_restore")


def file_batches(path: Path, names: list[str]):
    """A file's rows in small batches, one row group decoded at a time on one thread. (iter_batches grew by
    about 100 B a row read, 640 MB restoring a 5M-row day; threaded reads decode columns ahead.)"""
    parquet = pq.ParquetFile(path)
    try:
        for group in range(parquet.metadata.num_row_groups):
            for batch in parquet.read_row_group(group, columns=names, use_threads=False).to_batches(
                    max_chunksize=_BATCH_ROWS):
                yield {name: as_postgres_input(batch.column(name)) for name in names}
    finally:
        release_freed_memory()


def identity(columns: list[str], alias: str) -> sql.Composed:
    """A row's whole-row identity over `columns`: its text form, equal exactly when every value is."""
    return sql.SQL("ROW({})::text").format(
        sql.SQL(", ").join(sql.SQL("{}.{}").format(sql.Identifier(alias), sql.Identifier(c)) for c in columns))


def load_beside(conn: psycopg.Connection, table: str, day: sql.Composable, path: Path, names: list[str],
                key_columns: tuple[str, ...], copy) -> tuple[int, int]:
    """Load a file into `table` whose day (`day`: a filter on alias t) already holds rows; return (inserted,
    already present). `copy(table, batches)` does the COPY (the engine's, which words its refusals).

    The day's rows are noted by identity, the file is copied straight in, then for each identity noted the
    day keeps max(rows before, rows in the file) copies. A unique index that rejects an identical row sends
    the file through a staging table instead (`load_missing`)."""
    keys = [c for c in key_columns if c in names] or names  # identical rows have identical keys: a pre-filter
    target = sql.Identifier(table)
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(_PRESENT))
    conn.execute(sql.SQL(
        "CREATE TEMP TABLE {p} ON COMMIT DROP AS SELECT {k} AS k, {r} AS r, count(*) AS c FROM {t} t WHERE {day} "
        "GROUP BY 1, 2").format(p=_PRESENT, k=identity(keys, "t"), r=identity(names, "t"), t=target, day=day))
    conn.execute(sql.SQL("ANALYZE {}").format(_PRESENT))
    try:
        loaded = copy(table, file_batches(path, names))
    except psycopg.errors.UniqueViolation:  # an identical row is back and a unique index says so
        return load_missing(conn, table, day, path, names)
    present = conn.execute(sql.SQL(
        "WITH candidates AS (SELECT t.tableoid AS rel, t.ctid AS tid, {r} AS r FROM {t} t "
        "WHERE {day} AND {k} IN (SELECT k FROM {p})), "
        "numbered AS (SELECT c.rel, c.tid, p.c AS earlier, row_number() OVER (PARTITION BY c.r) AS n, "
        "count(*) OVER (PARTITION BY c.r) AS total FROM candidates c JOIN {p} p USING (r)), "
        "copies AS (SELECT rel, tid FROM numbered WHERE n <= least(earlier, total - earlier)) "
        "DELETE FROM {t} t USING copies WHERE {day} AND t.tableoid = copies.rel AND t.ctid = copies.tid").format(
            r=identity(names, "t"), k=identity(keys, "t"), t=target, day=day, p=_PRESENT)).rowcount
    return loaded - present, present


def load_missing(conn: psycopg.Connection, table: str, day: sql.Composable, path: Path,
                 names: list[str]) -> tuple[int, int]:
    """Copy a file into a staging table, then insert its rows beyond those the day already holds identically
    (whole row over the loaded columns, as a multiset). Returns (inserted, already present)."""
    target = sql.Identifier(table)
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(_STAGING))
    conn.execute(sql.SQL("CREATE TEMP TABLE {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP").format(_STAGING, target))
    staged = copy_rows(conn, "forge_restore", file_batches(path, names))
    conn.execute(sql.SQL("ANALYZE {}").format(_STAGING))  # a temp table has no statistics until analysed
    column_list = sql.SQL(", ").join(map(sql.Identifier, names))
    inserted = conn.execute(sql.SQL(
        "WITH present AS (SELECT {li} AS k, count(*) AS c FROM {t} t WHERE {day} GROUP BY 1), "
        "staged AS (SELECT s.*, {si} AS forge_k, row_number() OVER (PARTITION BY {si}) AS forge_n FROM {s} s) "
        "INSERT INTO {t} ({cols}) SELECT {cols} FROM staged LEFT JOIN present ON present.k = staged.forge_k "
        "WHERE staged.forge_n > coalesce(present.c, 0)").format(
            li=identity(names, "t"), si=identity(names, "s"), t=target, s=_STAGING, cols=column_list,
            day=day)).rowcount
    return inserted, staged - inserted

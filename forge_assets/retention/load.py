"""Loading archive files back into PostgreSQL (restore): a file's rows stream into one COPY, row group by
row group, whether or not the day already holds rows.

The COPY itself is mostly PostgreSQL's work (heap, WAL and index inserts: with the same bytes, binary COPY
took the server as long as CSV). On the client, files whose columns are all integers, floats, booleans,
timestamps or text travel as binary COPY built from Arrow in C (pyarrow compute): half the client CPU of
writing CSV (0.58 s against 1.24 s for a 200k-row job-event day), which on a shared machine is CPU the
server gets back, and built on a thread while the previous batches are sent; any other type (numeric, jsonb,
arrays, ...) or a column whose type changed travels as CSV, which PostgreSQL parses with each type's input
function. What a restore adds around it is kept small: when
the day already holds rows, only those rows' whole-row identities are noted before the COPY, and afterwards
only rows whose key matches one of them are compared, so a restore next to a few live rows costs about what
a restore into an empty day does. A row is kept out only when an identical row (every loaded column) was
already there, as a multiset.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from psycopg import sql

from forge_assets.pgcopy import copy_rows
from forge_assets.retention.content import as_postgres_input
from forge_assets.retention.stream import ahead, release_freed_memory

_BATCH_ROWS = 8_192
_AHEAD = 2  # encoded batches (~3.5 MB each for job events) waiting for the COPY
_PRESENT = sql.Identifier("forge_present")
_STAGING = sql.Identifier("forge_restore")
# PostgreSQL types whose binary COPY form is built here from the archived Arrow column.
_BINARY_TYPES = {"smallint", "integer", "bigint", "real", "double precision", "boolean", "text",
                 "timestamp with time zone", "timestamp without time zone"}
_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_TRAILER = struct.pack(">h", -1)
_NULL_FIELD = b"\xff\xff\xff\xff"  # a NULL in binary COPY: length -1
_TS_EPOCH_2000 = 946_684_800_000_000  # µs from 1970 to 2000 (PostgreSQL's epoch)
_INT64 = np.iinfo(np.int64)


def copy_file(conn: psycopg.Connection, table: str, path: Path, names: list[str]) -> int:
    """COPY the file's `names` columns into `table`: binary when every column allows it, else CSV."""
    fields = pq.read_schema(path)
    target = dict(conn.execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = "
        "to_regclass(format('%%I', %s::text)) AND attnum > 0 AND NOT attisdropped", (table,)).fetchall())
    if all(_binary_ready(fields.field(n), target.get(n)) for n in names):
        return _copy_binary(conn, table, path, names)
    return copy_rows(conn, table, file_batches(path, names))


def _binary_ready(field: pa.Field, target_type: str | None) -> bool:
    pg_type = (field.metadata or {}).get(b"pg_type", b"").decode()
    base = "text" if pg_type.startswith("character varying") else pg_type
    return target_type == pg_type and base in _BINARY_TYPES


def _copy_binary(conn: psycopg.Connection, table: str, path: Path, names: list[str]) -> int:
    """Binary COPY of the file's rows; a thread decodes and encodes the next batches (Arrow, without the GIL)
    while this one sends: a 200k-row job-event day 1.5-1.6 s -> 1.2-1.3 s."""
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary)").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, names)))
    rows = 0
    try:
        with conn.cursor().copy(statement) as copy, \
                ahead(_encoded_batches(path, names), "forge-restore-encode", _AHEAD) as encoded:
            copy.write(_HEADER)
            for count, data in encoded:
                copy.write(data)
                rows += count
            copy.write(_TRAILER)
    finally:
        release_freed_memory()
    return rows


def _encoded_batches(path: Path, names: list[str]) -> Iterator[tuple[int, memoryview]]:
    """(rows, binary COPY bytes) of the file's batches."""
    for batch in _batches(path, names):
        yield batch.num_rows, _binary_rows(batch)


def _batches(path: Path, names: list[str]) -> Iterator[pa.RecordBatch]:
    """A file's rows in small batches, one row group decoded at a time on one thread. (iter_batches grew by
    about 100 B a row read, 640 MB restoring a 5M-row day; threaded reads decode columns ahead.)"""
    parquet = pq.ParquetFile(path)
    for group in range(parquet.metadata.num_row_groups):
        yield from parquet.read_row_group(group, columns=names, use_threads=False).to_batches(
            max_chunksize=_BATCH_ROWS)


def _binary_rows(batch: pa.RecordBatch) -> memoryview:
    """The batch's rows in binary COPY form: per row the field count, then per field its length (-1: NULL)
    and its bytes, big-endian; assembled by Arrow in C, one buffer for the batch."""
    count = pa.scalar(struct.pack(">h", batch.num_columns), pa.binary())
    joined = pc.binary_join_element_wise(count, *(_binary_field(c) for c in batch.columns), b"")
    offsets = np.frombuffer(joined.buffers()[1], np.int32)[joined.offset:joined.offset + len(joined) + 1]
    return memoryview(joined.buffers()[2])[offsets[0]:offsets[-1]]


def _fixed(values: np.ndarray, width: int) -> pa.Array:
    """Length-prefixed big-endian values of one width."""
    record = np.empty(len(values), dtype=[("length", ">i4"), ("value", values.dtype.newbyteorder(">"))])
    record["length"], record["value"] = width, values
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(4 + width), len(values),
                                                [None, pa.py_buffer(record.tobytes())]).cast(pa.binary())


def _binary_field(column: pa.Array) -> pa.Array:
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        data = column.cast(pa.binary()).fill_null(b"")
        lengths = np.asarray(pc.binary_length(data), dtype=">i4")
        prefix = pa.FixedSizeBinaryArray.from_buffers(pa.binary(4), len(data),
                                                      [None, pa.py_buffer(lengths.tobytes())]).cast(pa.binary())
        out = pc.binary_join_element_wise(prefix, data, b"")
    elif pa.types.is_timestamp(kind):  # µs since 2000; the file's ±INT64_MAX are ±infinity
        raw = np.asarray(column.view(pa.int64()).fill_null(0), dtype=np.int64)
        values = raw - _TS_EPOCH_2000
        values[raw == _INT64.max], values[raw == -_INT64.max] = _INT64.max, _INT64.min
        out = _fixed(values, 8)
    elif pa.types.is_boolean(kind):
        out = _fixed(np.asarray(column.fill_null(False), dtype=np.int8), 1)
    else:  # integers and floats, as wide as PostgreSQL's (the file's type follows the column's)
        out = _fixed(np.asarray(column.fill_null(0)), kind.bit_width // 8)
    return pc.if_else(column.is_null(), pa.scalar(_NULL_FIELD, pa.binary()), out) if column.null_count else out


def file_batches(path: Path, names: list[str]):
    """A file's rows in small batches as PostgreSQL's COPY input (CSV path), one row group at a time."""
    try:
        for batch in _batches(path, names):
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
    already present). `copy(table, path, names)` does the COPY (the engine's, which words its refusals).

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
        loaded = copy(table, path, names)
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

"""Content verification: one order-independent checksum of every archived column, computed by PostgreSQL
over the rows being archived (under the archiving snapshot) and by forge_assets over the rows read back from
the file; a file is ledgered, and its rows deleted, only when the two are equal.

Each value is hashed with the hash function PostgreSQL itself uses for its type's hash index (Bob Jenkins'
lookup3, `hash_bytes_extended`, and the integer/float wrappers around it), seeded by the column's position,
so that Python reproduces it bit for bit from the Arrow values: `hashtextextended` on the text of text and
text-cast columns (jsonb, uuid, numeric, arrays, enums, ...), `hashint{2,4,8}extended` on integers,
`hashfloat8extended` on floats, `timestamp_hash_extended` on timestamps (UTC), and a date's day number. A
row's hash is the XOR of its columns' hashes (NULL is a constant per column); the checksum is the number of
rows and the wrapping 64-bit sum of row hashes. So a value changed anywhere, a value moved to another row or
column, a row lost or repeated all change it, while the order of rows does not. PostgreSQL hashes each row in
the export's own scan (`hashed_query`: one more column, summed and dropped before the file is written); the
Python side runs vectorized over numpy arrays (`_lookup3`) over the file as read back. So the check costs the hash expressions in PostgreSQL and one read of the file, no second scan.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from psycopg import sql

from forge_assets.retention._lookup3 import fold_int64, hash_bytes, hash_float8, hash_uint32
from forge_assets.retention.stream import combine_checksums, key_checksum

TEXT = pa.string()
_NULL = 0x6E756C6C00000000  # "null", shifted; plus the column's seed
_TS_EPOCH_2000 = 946_684_800_000_000  # µs from 1970 to 2000 (PostgreSQL's epoch)
_DATE_EPOCH_2000 = 10_957
_INT64_MAX, _INT32_MAX = np.iinfo(np.int64).max, np.iinfo(np.int32).max


@dataclass(frozen=True)
class Checksum:
    rows: int
    value: int

    def hex(self) -> str:
        return f"{self.rows}:{self.value:016x}"


# --- per column: the SQL that hashes a value in PostgreSQL, and the same over an Arrow column ---

def _kind(pg_type: str) -> str:
    if pg_type == "smallint":
        return "int2"
    if pg_type == "integer":
        return "int4"
    if pg_type == "bigint":
        return "int8"
    if pg_type == "boolean":
        return "bool"
    if pg_type in ("real", "double precision"):
        return "float"
    if pg_type == "timestamp with time zone":
        return "timestamptz"
    if pg_type == "timestamp without time zone":
        return "timestamp"
    if pg_type == "date":
        return "date"
    if pg_type.startswith("character(") or pg_type == "character":
        return "bpchar"
    return "text"


def _sql_hash(kind: str, value: sql.Composable, seed: int) -> sql.Composable:
    s = sql.Literal(seed)
    if kind == "int2":
        body = sql.SQL("hashint2extended({}, {})").format(value, s)
    elif kind == "int4":
        body = sql.SQL("hashint4extended({}, {})").format(value, s)
    elif kind == "int8":
        body = sql.SQL("hashint8extended({}, {})").format(value, s)
    elif kind == "bool":
        body = sql.SQL("hashint4extended({}::int, {})").format(value, s)
    elif kind == "float":
        body = sql.SQL("hashfloat8extended({}::float8, {})").format(value, s)
    elif kind == "timestamptz":
        body = sql.SQL("timestamp_hash_extended({} AT TIME ZONE 'UTC', {})").format(value, s)
    elif kind == "timestamp":
        body = sql.SQL("timestamp_hash_extended({}, {})").format(value, s)
    elif kind == "date":
        body = sql.SQL("hashint4extended(CASE WHEN {v} = 'infinity' THEN 2147483647 WHEN {v} = '-infinity' "
                       "THEN -2147483648 ELSE {v} - DATE '2000-01-01' END, {s})").format(v=value, s=s)
    elif kind == "bpchar":
        body = sql.SQL("hashbpcharextended({}, {})").format(value, s)
    else:
        body = sql.SQL("hashtextextended({}::text, {})").format(value, s)
    return sql.SQL("coalesce({}, {})").format(body, sql.Literal(_signed(_NULL + seed)))


def _signed(value: int) -> int:
    value &= 0xFFFFFFFFFFFFFFFF
    return value - (1 << 64) if value >= 1 << 63 else value


HASH_COLUMN = "forge_content_hash"


def hashed_query(columns, query: sql.Composable) -> sql.Composed:
    """`query` (selecting `columns`) with each row's hash as one more, last column, HASH_COLUMN: computed by
    PostgreSQL in the same scan that exports the row (a second scan of the day cost more than the hashing)."""
    row = sql.SQL(" # ").join(_sql_hash(_kind(c.pg_type), sql.SQL("x.{}").format(sql.Identifier(c.name)), i + 1)
                              for i, c in enumerate(columns))
    return sql.SQL("SELECT x.*, {} AS {} FROM ({}) x").format(row, sql.Identifier(HASH_COLUMN), query)


def _int64(column: pa.Array) -> np.ndarray:
    return np.asarray(column.fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64)


def column_hashes(column: pa.Array, pg_type: str, seed: int) -> np.ndarray:
    """The PostgreSQL hash of each value of an Arrow column as archived (see the module docstring)."""
    kind = _kind(pg_type)
    n = len(column)
    if kind in ("text", "bpchar") or pa.types.is_decimal(column.type) or pa.types.is_string(column.type):
        text = pc.cast(column, pa.large_string())
        offsets = np.frombuffer(text.buffers()[1], dtype=np.int64)[text.offset:text.offset + n + 1]
        data = np.frombuffer(text.buffers()[2] or b"\0", dtype=np.uint8)
        out = hash_bytes(data, offsets, seed, kind == "bpchar")
    elif kind in ("int2", "int4", "bool"):
        out = hash_uint32(_int64(column.cast(pa.int64()) if kind == "bool" else column), seed)
    elif kind in ("int8", "timestamp", "timestamptz", "date"):
        if kind == "int8":
            values = _int64(column)
        elif kind == "date":
            values = _int64(column.view(pa.int32())) - _DATE_EPOCH_2000
            values[values == _INT32_MAX - _DATE_EPOCH_2000] = _INT32_MAX
            values[values == -_INT32_MAX - _DATE_EPOCH_2000] = -_INT32_MAX - 1
        else:
            raw = _int64(column.view(pa.int64()))
            values = raw - _TS_EPOCH_2000
            values[raw == _INT64_MAX] = _INT64_MAX
            values[raw == -_INT64_MAX] = -_INT64_MAX - 1
        out = hash_uint32(values if kind == "date" else fold_int64(values), seed)
    else:  # float
        out = hash_float8(np.asarray(column.cast(pa.float64()).fill_null(0).to_numpy(zero_copy_only=False),
                                     dtype=np.float64), seed)
    if column.null_count:
        out[np.asarray(column.is_null())] = np.uint64(_NULL + seed)
    return out


def row_hashes(batch: pa.RecordBatch | pa.Table, typed: list[tuple[str, str]]) -> np.ndarray:
    """One 64-bit hash per row over the (name, pg_type) columns: the XOR of each value's hash, seeded by the
    column's place (1-based), as PostgreSQL computes it in `hashed_query`."""
    rows = np.zeros(batch.num_rows, dtype=np.uint64)
    for seed, (name, pg_type) in enumerate(typed, 1):
        column = batch.column(name)
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        rows ^= column_hashes(column, pg_type, seed)
    return rows


def batch_checksum(batch: pa.RecordBatch | pa.Table, columns) -> Checksum:
    """The content checksum of rows held in Arrow, columns as archived (`columns`: name and pg_type)."""
    hashes = row_hashes(batch, [(c.name, c.pg_type) for c in columns])
    return Checksum(batch.num_rows, int(hashes.sum(dtype=np.uint64)))


def combine(*checksums: Checksum) -> Checksum:
    return Checksum(sum(c.rows for c in checksums), sum(c.value for c in checksums) % 2**64)


def read_back(path: Path, columns, key_columns: tuple[str, ...]) -> tuple[int, int, Checksum]:
    """Rows, key checksum and content checksum of a Parquet file, in one read, one row group at a time."""
    parquet = pq.ParquetFile(path)
    keys, total = 0, Checksum(0, 0)
    for group in range(parquet.metadata.num_row_groups):
        table = parquet.read_row_group(group, columns=[c.name for c in columns], use_threads=False)
        keys = combine_checksums(keys, key_checksum(table, key_columns))
        total = combine(total, batch_checksum(table, columns))
    return parquet.metadata.num_rows, keys, total


# --- restore: Arrow values PostgreSQL's COPY reads back exactly ---

_YEAR1_US = -62_135_596_800_000_000
_YEAR10000_US = 253_402_300_800_000_000
_YEAR1_DAYS, _YEAR10000_DAYS = -719_162, 2_932_897


def _pg_text(values: np.ndarray, unit: str, tz: bool, positive: int, negative: int) -> list[str | None]:
    """PostgreSQL's input text of temporal values beyond what Arrow's CSV writer formats (BC, years past
    9999, ±infinity)."""
    texts = np.datetime_as_string(values.astype(f"datetime64[{unit}]"), unit=unit)
    out = []
    for raw, text in zip(values, texts, strict=True):
        if raw == positive:
            out.append("infinity")
        elif raw == negative:
            out.append("-infinity")
        else:
            text = str(text)
            year_text, body = text.lstrip("-").split("-", 1)
            year = -int(year_text) if text.startswith("-") else int(year_text)
            era = ""
            if year <= 0:
                year, era = 1 - year, " BC"
            out.append(f"{year:04d}-{body.replace('T', ' ')}{'+00' if tz else ''}{era}")
    return out


def as_postgres_input(column: pa.Array) -> pa.Array:
    """The column as COPY should read it: unchanged, except temporal columns holding values Arrow's CSV
    writer cannot format the way PostgreSQL reads them (±infinity, BC, years past 9999), which become text."""
    if pa.types.is_timestamp(column.type):
        raw = column.view(pa.int64())
        low, high = pc.min_max(raw).values()
        if low.as_py() is None or (low.as_py() >= _YEAR1_US and high.as_py() < _YEAR10000_US):
            return column
        values = _int64(raw)
        texts = _pg_text(values, "us", column.type.tz is not None, _INT64_MAX, -_INT64_MAX)
    elif pa.types.is_date32(column.type):
        raw = column.view(pa.int32())
        low, high = pc.min_max(raw).values()
        if low.as_py() is None or (low.as_py() >= _YEAR1_DAYS and high.as_py() < _YEAR10000_DAYS):
            return column
        values = _int64(raw)
        texts = _pg_text(values, "D", False, _INT32_MAX, -_INT32_MAX)
    else:
        return column
    mask = np.asarray(column.is_null()) if column.null_count else None
    return pa.array(texts, type=pa.string(), mask=mask)

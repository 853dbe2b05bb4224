"""Which columns of a catalog table travel to Parquet, and as which Arrow types."""

from __future__ import annotations

import re
from dataclasses import dataclass

import psycopg
import pyarrow as pa
from psycopg import sql

from forge_assets.retention.catalog import CatalogError, TableEntry

_NUMERIC = re.compile(r"numeric\((\d+),(\d+)\)")
_SIMPLE_TYPES = {
    "smallint": pa.int16(),
    "integer": pa.int32(),
    "bigint": pa.int64(),
    "real": pa.float32(),
    "double precision": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp with time zone": pa.timestamp("us", tz="UTC"),
    "timestamp without time zone": pa.timestamp("us"),
}
# Types the export reads as they are; any other type travels as its text form (json, uuid, enums, arrays, ...)
# and numeric as text cast to decimal in Arrow, so every value is kept exactly.
_TEXT_TYPES = re.compile(r"text|character varying(\(\d+\))?|character(\(\d+\))?")


@dataclass(frozen=True)
class ArchiveColumn:
    """A column as PostgreSQL declares it and as Parquet stores it."""

    name: str
    pg_type: str
    arrow_type: pa.DataType


def arrow_type(pg_type: str) -> pa.DataType:
    """The Arrow type that keeps a PostgreSQL value exactly (text for json, uuid, inet, enums, arrays, ...)."""
    if pg_type in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[pg_type]
    match = _NUMERIC.fullmatch(pg_type.replace(" ", ""))
    if match:
        return pa.decimal128(int(match[1]), int(match[2]))
    return pa.string()


def archive_columns(conn: psycopg.Connection, entry: TableEntry) -> list[ArchiveColumn]:
    """The table's columns in order, less the sensitive ones; a missing table is a CatalogError."""
    rows = conn.execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = to_regclass(format('%%I', %s::text)) AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        (entry.table,),
    ).fetchall()
    if not rows:
        raise CatalogError(f"{entry.key}: table {entry.table!r} does not exist in this database")
    sensitive = set(entry.sensitive_columns)
    return [ArchiveColumn(name, pg_type, arrow_type(pg_type)) for name, pg_type in rows if name not in sensitive]


def schema_of(columns: list[ArchiveColumn]) -> pa.Schema:
    """The Parquet schema of an archive file, with each column's PostgreSQL type kept as field metadata."""
    return pa.schema([pa.field(c.name, c.arrow_type, metadata={"pg_type": c.pg_type}) for c in columns])


def select_list(columns: list[ArchiveColumn]) -> sql.Composed:
    """The SELECT list that reads the columns in types the Arrow schema takes without loss."""
    def read(column: ArchiveColumn) -> sql.Composable:
        name = sql.Identifier(column.name)
        native = column.pg_type in _SIMPLE_TYPES or _TEXT_TYPES.fullmatch(column.pg_type)
        return name if native else sql.SQL("{}::text AS {}").format(name, name)
    return sql.SQL(", ").join(read(c) for c in columns)

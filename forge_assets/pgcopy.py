"""Loading Arrow data into PostgreSQL with COPY ... FROM STDIN (the generator and restore both use it)."""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterable, Mapping

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import sql


def copy_rows(conn: psycopg.Connection, table: str | tuple[str, str], batches: Iterable[Mapping]) -> int:
    """Stream record batches (column name -> array) into `table` with one COPY ... FROM STDIN (FORMAT csv).

    Returns the number of rows written. Nulls travel as unquoted empty fields, empty strings as "".
    """
    iterator = iter(batches)
    first = next(iterator, None)
    if first is None:
        return 0
    ident = sql.Identifier(*table) if isinstance(table, tuple) else sql.Identifier(table)
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
        ident, sql.SQL(", ").join(map(sql.Identifier, first.keys()))
    )
    options = pacsv.WriteOptions(include_header=False, batch_size=65_536)
    rows = 0
    with conn.cursor().copy(statement) as copy:
        for columns in itertools.chain([first], iterator):
            batch = pa.table(dict(columns))
            buffer = io.BytesIO()
            pacsv.write_csv(batch, buffer, options)
            copy.write(buffer.getbuffer())
            rows += batch.num_rows
    return rows

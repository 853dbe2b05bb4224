"""What a rollup is, and how one is computed: one SQL file, run in PostgreSQL over a window of whole UTC
days, returning only aggregated rows, split into one Arrow table per day. No Dagster here."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import date, timedelta

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from psycopg import sql

from forge_assets.days import day_window
from forge_assets.sql_files import sql_root

UTC_TS = pa.timestamp("us", tz="UTC")


class RollupSchemaError(RuntimeError):
    """A rollup query returned columns other than the ones its spec declares."""


@dataclass(frozen=True)
class Column:
    """One column of a rollup's Parquet files."""

    name: str
    type: pa.DataType
    description: str


# Short constructors for column declarations.

def text(name: str, description: str) -> Column:
    return Column(name, pa.string(), description)


def integer(name: str, description: str) -> Column:
    return Column(name, pa.int64(), description)


def real(name: str, description: str) -> Column:
    return Column(name, pa.float64(), description)


def flag(name: str, description: str) -> Column:
    return Column(name, pa.bool_(), description)


def hour(description: str = "start of the UTC hour") -> Column:
    return Column("hour", UTC_TS, description)


def exact_seconds(name: str, description: str) -> Column:
    """A sum of PostgreSQL numeric(12,3) seconds, kept exact (sums over any range of days stay exact)."""
    return Column(name, pa.decimal128(18, 3), description)


def real4(name: str, description: str) -> Column:
    """A PostgreSQL real, kept as the same 32-bit float."""
    return Column(name, pa.float32(), description)


@dataclass(frozen=True)
class Reconciliation:
    """How a rollup's total is checked against its source: the sum of `column` over a day equals what the
    spec's reconciliation query (`sql/rollups/<name>.reconciliation.sql`) counts directly in the source."""

    column: str


@dataclass(frozen=True)
class RollupSpec:
    """A rollup: its source, the tables it reads, its columns (in file order) and the values the UI plots.

    The SQL file `sql/rollups/<name>.sql` takes `%(start)s` and `%(end)s` (timestamptz, a window of whole
    UTC days) and returns a `day` column (date) followed by `columns`, in that order.
    """

    name: str
    source: str
    description: str
    reads: tuple[str, ...]
    columns: tuple[Column, ...]
    reconciliation: Reconciliation
    plots: dict[str, str] = field(default_factory=dict)

    @property
    def schema(self) -> pa.Schema:
        """The Arrow schema of each day's file."""
        return pa.schema([pa.field(c.name, c.type) for c in self.columns])

    @property
    def query(self) -> str:
        """The SQL text of this rollup: `sql/rollups/<name>.sql`."""
        return (sql_root() / "rollups" / f"{self.name}.sql").read_text(encoding="utf-8")

    @property
    def reconciliation_query(self) -> str:
        """The source count its reconciliation column must sum to: `sql/rollups/<name>.reconciliation.sql`."""
        return (sql_root() / "rollups" / f"{self.name}.reconciliation.sql").read_text(encoding="utf-8")


def compute_rollup(conn: psycopg.Connection, spec: RollupSpec, first_day: date, last_day: date) -> dict[date, pa.Table]:
    """Run the rollup for every day in [first_day, last_day] in one query; return one table per day.

    The rows travel as `COPY (query) TO STDOUT (FORMAT csv)` and are parsed by Arrow's CSV reader into the
    declared types (PostgreSQL prints floats in their shortest exact form, so values are unchanged): about
    twice as fast as building Python tuples for the rollups of 100k+ rows. Days without source rows map to
    an empty table with the declared schema, so that BI readers of the lake always find a file with the
    right columns.
    """
    start, end = day_window(first_day, last_day)
    params = {"start": start, "end": end}
    query = sql.SQL(spec.query)
    expected = ["day", *(c.name for c in spec.columns)]
    with conn.transaction(), conn.cursor() as cursor:  # SET LOCAL holds in autocommit connections too
        cursor.execute("SET LOCAL TIME ZONE 'UTC'")
        cursor.execute("SET LOCAL DateStyle = 'ISO'")
        cursor.execute(sql.SQL("SELECT * FROM (\n{}\n) AS rollup LIMIT 0").format(query), params)  # planned only
        names = [d.name for d in cursor.description]
        if names != expected:
            raise RollupSchemaError(f"rollup {spec.name} returned columns {names}, expected {expected}")
        csv = io.BytesIO()
        with cursor.copy(sql.SQL("COPY (\n{}\n) TO STDOUT (FORMAT csv)").format(query), params) as copy:
            for block in copy:
                csv.write(block)
    table = _read_csv(csv.getvalue(), spec)
    days = table["day"]
    table = table.drop_columns(["day"])
    result = {}
    day = first_day
    while day <= last_day:
        result[day] = table.filter(pc.equal(days, pa.scalar(day, pa.date32())))
        day += timedelta(days=1)
    return result


def _read_csv(data: bytes, spec: RollupSpec) -> pa.Table:
    """PostgreSQL's CSV (NULL: an unquoted empty field; '': a quoted one; booleans t/f) in the spec's types."""
    schema = pa.schema([pa.field("day", pa.date32()), *spec.schema])
    if not data:
        return schema.empty_table()
    options = pacsv.ConvertOptions(column_types=schema, true_values=["t"], false_values=["f"], null_values=[""],
                                   strings_can_be_null=True, quoted_strings_can_be_null=False)
    return pacsv.read_csv(io.BytesIO(data), read_options=pacsv.ReadOptions(column_names=schema.names),
                          convert_options=options)

"""What a rollup is, and how one is computed: one SQL file, run in PostgreSQL over a window of whole UTC
days, returning only aggregated rows, split into one Arrow table per day. No Dagster here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import psycopg
import pyarrow as pa
import pyarrow.compute as pc

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

    Days without source rows map to an empty table with the declared schema, so that BI readers of the
    lake always find a file with the right columns.
    """
    start, end = day_window(first_day, last_day)
    with conn.cursor() as cursor:
        cursor.execute("SET LOCAL TIME ZONE 'UTC'")
        cursor.execute(spec.query, {"start": start, "end": end})
        names = [d.name for d in cursor.description]
        rows = cursor.fetchall()
    expected = ["day", *(c.name for c in spec.columns)]
    if names != expected:
        raise RollupSchemaError(f"rollup {spec.name} returned columns {names}, expected {expected}")
    days = pa.array([r[0] for r in rows], pa.date32())
    table = pa.table(
        {c.name: pa.array([r[i] for r in rows], c.type) for i, c in enumerate(spec.columns, start=1)},
        schema=spec.schema,
    )
    result = {}
    day = first_day
    while day <= last_day:
        result[day] = table.filter(pc.equal(days, pa.scalar(day, pa.date32())))
        day += timedelta(days=1)
    return result

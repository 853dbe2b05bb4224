"""Rollup assets: one daily-partitioned asset per rollup spec, computed in PostgreSQL, stored in the lake."""


import time
import warnings
from datetime import date, timedelta

import pyarrow as pa
import pyarrow.compute as pc
from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    BackfillPolicy,
    BetaWarning,
    FreshnessPolicy,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableSchema,
    asset,
)

from forge_assets.assets.names import query_pool, rollup_group, source_table_key
from forge_assets.assets.partitions import DAILY
from forge_assets.resources.parquet_lake import ParquetLake
from forge_assets.resources.postgres import PostgresResource
from forge_assets.rollups.registry import ROLLUPS
from forge_assets.rollups.spec import RollupSpec, compute_rollup

_PREVIEW_ROWS = 5


def column_schema(spec: RollupSpec) -> TableSchema:
    """The rollup's columns for the UI's schema view."""
    return TableSchema(columns=[TableColumn(c.name, str(c.type), description=c.description) for c in spec.columns])


def markdown_preview(table: pa.Table) -> str:
    """The first rows of a table as a small markdown table."""
    head = table.slice(0, _PREVIEW_ROWS).to_pylist()
    if not head:
        return "_no rows_"
    lines = ["| " + " | ".join(table.column_names) + " |", "|" + "---|" * table.num_columns]
    for row in head:
        cells = (f"{v:.3f}" if isinstance(v, float) else "" if v is None else str(v) for v in row.values())
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def build_rollup_asset(spec: RollupSpec) -> AssetsDefinition:
    """A daily-partitioned asset that replaces its window's files; ranges run as one query (single-run backfill)."""

    @asset(
        name=spec.name,
        group_name=rollup_group(spec.source),
        kinds={"postgres", "parquet"},
        description=spec.description,
        partitions_def=DAILY,
        backfill_policy=BackfillPolicy.single_run(),
        deps=[source_table_key(spec.source, table) for table in spec.reads],
        pool=query_pool(spec.source),
        freshness_policy=FreshnessPolicy.time_window(fail_window=timedelta(hours=30), warn_window=timedelta(hours=26)),
        metadata={
            "dagster/column_schema": column_schema(spec),
            "source": spec.source,
            "sql": MetadataValue.path(f"sql/rollups/{spec.name}.sql"),
        },
    )
    def rollup(context: AssetExecutionContext, postgres: PostgresResource, lake: ParquetLake) -> MaterializeResult:
        window = context.partition_key_range
        first, last = date.fromisoformat(window.start), date.fromisoformat(window.end)
        started = time.perf_counter()
        with postgres.read(spec.source) as conn:
            tables = compute_rollup(conn, spec, first, last)
        postgres_seconds = time.perf_counter() - started
        written = {day: lake.write_rollup(spec.name, day, table) for day, table in tables.items()}
        combined = pa.concat_tables(tables.values())
        context.log.info(
            f"{spec.name}: {combined.num_rows} rows over {len(tables)} day(s) in {postgres_seconds:.2f} s of PostgreSQL"
        )
        last_path = written[last][0]
        metadata = {
            "dagster/row_count": combined.num_rows,
            "bytes": sum(size for _, size in written.values()),
            "days": len(tables),
            "postgres_seconds": round(postgres_seconds, 3),
            "path": MetadataValue.path(str(last_path if len(written) == 1 else last_path.parent.parent)),
            "preview": MetadataValue.md(markdown_preview(tables[last])),
        }
        for label, column in spec.plots.items():
            total = pc.sum(combined[column]).as_py()
            metadata[label] = total if total is not None else 0
        return MaterializeResult(metadata=metadata)

    return rollup


with warnings.catch_warnings():
    # BackfillPolicy is marked beta; single-run backfills of date ranges are the point here.
    warnings.filterwarnings("ignore", category=BetaWarning, message=".*backfill_policy.*")
    ROLLUP_ASSETS: list[AssetsDefinition] = [build_rollup_asset(spec) for spec in ROLLUPS]

"""Archive assets: one daily-partitioned asset per catalog entry, a thin layer over the retention engine."""

from datetime import date, datetime, timezone
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from forge_assets.assets.names import (
    RUN_TAG_TABLE,
    archive_entry_key,
    archive_group,
    archive_key,
    purge_pool,
    rollups_reading,
    source_table_key,
)
from forge_assets.assets.partitions import DAILY
from forge_assets.resources.parquet_lake import ParquetLake
from forge_assets.resources.postgres import PostgresResource
from forge_assets.retention.catalog import TableEntry
from forge_assets.retention.engine import NotOverdue, RetentionError, archive_day
from forge_assets.retention.policy import effective_entries
from forge_assets.retention.preflight import PreflightError


def _describe(entry: TableEntry) -> str:
    action = {"archive": "Archives to Parquet, then purges,", "delete": "Purges (no archive: volatile rows)",
              "drop_partition": "Archives whole partitions to Parquet and drops them (other rows row by row),"}
    rules = "".join(f" Rows where {rule.describe()}." for rule in entry.rules)
    last = f" The newest {entry.keep_last} jobs of each template stay." if entry.keep_last else ""
    return (f"{action[entry.strategy]} the rows of {entry.source}.{entry.table} whose {entry.time_column} falls on "
            f"the partition's UTC day, once the day is {entry.keep_days} days old.{rules}{last} Each file is verified "
            "and ledgered in forge_retention.archive_ledger in the purge's own transaction.")


def build_archive_asset(entry: TableEntry) -> AssetsDefinition:
    """The archive asset of one catalog entry."""
    upstream = rollups_reading(entry)

    @asset(
        key=archive_key(entry),
        group_name=archive_group(entry.source),
        kinds={"postgres", "parquet"} if entry.archives else {"postgres"},
        description=_describe(entry),
        partitions_def=DAILY,
        deps=[source_table_key(entry.source, entry.table), *upstream,
              *(archive_entry_key(entry.source, name) for name in entry.after)],
        pool=purge_pool(entry.source),
        op_tags={RUN_TAG_TABLE: entry.key},
        metadata={"keep_days": entry.keep_days, "strategy": entry.strategy, "time_column": entry.time_column,
                  "rules": "; ".join(rule.describe() for rule in entry.rules) or "none",
                  "sensitive_columns_never_archived": ", ".join(entry.sensitive_columns) or "none"},
    )
    def archive(context: AssetExecutionContext, postgres: PostgresResource, lake: ParquetLake) -> MaterializeResult:
        day = date.fromisoformat(context.partition_key)
        if not postgres.purges(entry.source):
            raise Failure(f"{entry.key} {day}: purging is off for {entry.source} (FORGE_PURGE does not name it); "
                          "nothing was archived or deleted")
        missing = [k.to_user_string() for k in upstream
                   if context.partition_key not in context.instance.get_materialized_partitions(k)]
        if missing:
            raise Failure(f"{entry.key} {day}: rollups {', '.join(missing)} are not materialized for this day; "
                          "nothing was purged (materialize them first)")
        try:
            with postgres.write(entry.source) as conn:
                result = archive_day(conn, entry, day, Path(lake.root), datetime.now(timezone.utc),
                                     run_id=context.run.run_id, wait=True)
        except (NotOverdue, RetentionError, PreflightError) as exc:
            raise Failure(str(exc)) from None
        context.log.info(f"{entry.key} {day}: {result.rows} rows, {result.bytes} bytes in {result.seconds:.2f} s")
        return MaterializeResult(metadata={
            "rows": result.rows,
            "bytes": result.bytes,
            "files": len(result.files),
            "partitions_dropped": len(result.partitions_dropped),
            "seconds": round(result.seconds, 3),
            "rows_per_second": round(result.rows_per_second),
            "paths": MetadataValue.json(result.files),
        })

    return archive


ARCHIVE_ASSETS: list[AssetsDefinition] = [build_archive_asset(entry) for entry in effective_entries()]

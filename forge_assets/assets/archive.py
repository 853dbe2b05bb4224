"""Archive assets: one daily-partitioned asset per catalog entry, a thin layer over the retention engine.

A run covers one day or a range of days (a backfill, or the sensor catching up): each day is archived in its
own transaction with its own ledger rows and becomes its own materialized partition with its own metadata.
The first partition also archives the overdue days older than it (there are no partitions for them).
"""

import warnings
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    AssetMaterialization,
    AssetsDefinition,
    BackfillPolicy,
    BetaWarning,
    Failure,
    MaterializeResult,
    asset,
)

from forge_assets.assets.ledger import day_metadata, first_partition
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
from forge_assets.effective import effective_operations
from forge_assets.resources.parquet_lake import ParquetLake
from forge_assets.resources.postgres import PostgresResource
from forge_assets.retention.catalog import TableEntry
from forge_assets.retention.engine import DayResult, NotOverdue, RetentionError, archive_day, days_holding_rows
from forge_assets.retention.policy import effective_entries
from forge_assets.retention.preflight import PreflightError

# Days of one table a backfill run covers (each still its own transaction, ledger entry and partition).
DAYS_PER_RUN = effective_operations().archive_days_per_run


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
        backfill_policy=BackfillPolicy.multi_run(max_partitions_per_run=DAYS_PER_RUN),
        deps=[source_table_key(entry.source, entry.table), *upstream,
              *(archive_entry_key(entry.source, name) for name in entry.after)],
        pool=purge_pool(entry.source),
        op_tags={RUN_TAG_TABLE: entry.key},
        metadata={"keep_days": entry.keep_days, "strategy": entry.strategy, "time_column": entry.time_column,
                  "rules": "; ".join(rule.describe() for rule in entry.rules) or "none",
                  "sensitive_columns_never_archived": ", ".join(entry.sensitive_columns) or "none"},
    )
    def archive(context: AssetExecutionContext, postgres: PostgresResource, lake: ParquetLake) -> MaterializeResult:
        keys = list(context.partition_keys)
        if not postgres.purges(entry.source):
            raise Failure(f"{entry.key} {keys[0]}..{keys[-1]}: purging is off for {entry.source} (FORGE_PURGE, "
                          "else the policy file's purge switch); nothing was archived or deleted")
        done: list[tuple[str, DayResult]] = []
        try:
            with postgres.write(entry.source) as conn:
                for key in keys:
                    result = _archive_partition(context, conn, key, lake.location())
                    done.append((key, result))
                    context.log.info(f"{entry.key} {key}: {result.rows} rows, {result.bytes} bytes "
                                     f"in {result.seconds:.2f} s")
        except (NotOverdue, RetentionError, PreflightError, Failure) as exc:
            for key, result in done:  # what was archived stays archived, and is shown
                context.log_event(AssetMaterialization(asset_key=archive_key(entry), partition=key,
                                                       metadata=day_metadata(result, "run")))
            message = exc.description if isinstance(exc, Failure) else str(exc)
            raise Failure(f"{message} ({len(done)} of {len(keys)} days archived before)") from None
        for key, result in done:
            context.add_asset_metadata(day_metadata(result, "run"), partition_key=key)
        return MaterializeResult()

    def _archive_partition(context: AssetExecutionContext, conn, key: str, lake_root: Path) -> DayResult:
        day = date.fromisoformat(key)
        missing = [k.to_user_string() for k in upstream if key not in context.instance.get_materialized_partitions(k)]
        if missing:
            raise Failure(f"{entry.key} {day}: rollups {', '.join(missing)} are not materialized for this day; "
                          "nothing was purged (materialize them first)")
        now = datetime.now(timezone.utc)
        results = []
        if day == first_partition():  # the days before the first partition have no partition of their own
            older = days_holding_rows(conn, entry, date(1900, 1, 1), day - timedelta(days=1), 100_000, now)
            results = [archive_day(conn, entry, d, lake_root, now, run_id=context.run.run_id, wait=True) for d in older]
        results.append(archive_day(conn, entry, day, lake_root, now, run_id=context.run.run_id, wait=True))
        return _combined(day, results)

    return archive


def _combined(day: date, results: list[DayResult]) -> DayResult:
    """One partition's result from its day and, for the first partition, the older days archived with it."""
    if len(results) == 1:
        return results[0]
    return DayResult(results[-1].entry, day, rows=sum(r.rows for r in results), bytes=sum(r.bytes for r in results),
                     files=[f for r in results for f in r.files],
                     partitions_dropped=[p for r in results for p in r.partitions_dropped],
                     seconds=sum(r.seconds for r in results))


with warnings.catch_warnings():  # backfill_policy is a beta parameter
    warnings.simplefilter("ignore", BetaWarning)
    ARCHIVE_ASSETS: list[AssetsDefinition] = [build_archive_asset(entry) for entry in effective_entries()]

"""Asset checks, next to what they check:

- source constraints (forge_assets.quality.rules) on the source tables, one multi-check per table over the
  run's partition window (the previous complete UTC day when the run has none); windowed rules are blocking;
- reconciliation and sanity on each rollup, blocking;
- retention compliance and archive integrity on each archive asset.

The archive jobs select the blocking checks of the source tables and rollups upstream of their archive
assets, so a failed check stops the purge in the same run (Dagster gates downstream assets on blocking
checks only within a run). Great Expectations is imported inside the checks, never at load time.
"""

from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    AssetSelection,
    Failure,
    MetadataValue,
    multi_asset_check,
)

from forge_assets.assets.names import archive_key, query_pool, rollup_key, rollups_reading, source_table_key
from forge_assets.quality.compliance import GRACE_DAYS, retention_compliance
from forge_assets.quality.evaluate import evaluate, uses_gx
from forge_assets.quality.integrity import archive_integrity
from forge_assets.quality.outcome import Outcome
from forge_assets.quality.queries import Window
from forge_assets.quality.reconciliation import reconciliation, sanity
from forge_assets.quality.rules import rules_for, tables
from forge_assets.resources.parquet_lake import ParquetLake
from forge_assets.resources.postgres import PostgresResource
from forge_assets.retention.catalog import TableEntry
from forge_assets.retention.policy import effective_entries
from forge_assets.rollups.registry import ROLLUPS
from forge_assets.rollups.spec import RollupSpec


def check_window(context: AssetCheckExecutionContext) -> Window:
    """The run's partition (or partition range) as a window of UTC days; the previous UTC day without one."""
    if context.has_partition_key:
        day = date.fromisoformat(context.partition_key)
        return Window.days(day, day)
    if context.has_partition_key_range:
        keys = context.partition_key_range
        return Window.days(date.fromisoformat(keys.start), date.fromisoformat(keys.end))
    yesterday = datetime.now(timezone.utc).date() - timedelta(days=1)
    return Window.days(yesterday, yesterday)


def _result(key: AssetKey, outcome: Outcome, blocking: bool, window: Window | None) -> AssetCheckResult:
    metadata = outcome.metadata()
    metadata["query"] = MetadataValue.md(f"```sql\n{metadata['query']}\n```")
    metadata["sample_values"] = MetadataValue.json(metadata["sample_values"])
    if window is not None:
        metadata["window"] = window.describe()
    stuck = outcome.details.get("state") == "stuck"  # retention compliance: overdue and no progress for a day
    return AssetCheckResult(asset_key=key, check_name=outcome.check, passed=outcome.passed, metadata=metadata,
                            severity=AssetCheckSeverity.ERROR if blocking or stuck else AssetCheckSeverity.WARN,
                            description=_summary(outcome))


def _summary(outcome: Outcome) -> str | None:
    """What a person reads first on a retention compliance result: the backlog and whether it drains."""
    details = outcome.details
    if "state" not in details:
        return None
    text = (f"{details['state']}: backlog {details['backlog_days']} days, {details['backlog_rows']:,} rows, oldest "
            f"{details['backlog_oldest_day']}; {details['archived_rows_last_24h']:,} rows archived in the last 24 h")
    if "expected_hours_to_clear" in details:
        text += f"; expected to clear in about {details['expected_hours_to_clear']} h"
    return text


def _emit(key: AssetKey, outcomes: list[Outcome], blocking: dict[str, bool],
          window: Window | None) -> Iterator[AssetCheckResult]:
    """Results for the checks that ran; a check that broke (query or GX error) fails the step instead, so the
    UI shows it as not executed rather than as failing data."""
    broken = [o for o in outcomes if o.broken]
    for outcome in outcomes:
        if not outcome.broken:
            yield _result(key, outcome, blocking[outcome.check], window)
    if broken:
        raise Failure(description="; ".join(f"{o.check} could not run: {o.error}" for o in broken),
                      metadata={o.check: MetadataValue.md(f"```sql\n{o.query}\n```") for o in broken})


def build_source_checks(source: str, table: str) -> AssetChecksDefinition:
    """One multi-check per source table: its rules evaluated together (one GX query asset per window)."""
    rules = rules_for(source, table)
    key = source_table_key(source, table)
    blocking = {r.name: r.blocking for r in rules}

    @multi_asset_check(
        name=f"{source}_{table.lower()}_constraints",
        specs=[AssetCheckSpec(r.name, asset=key, description=r.description, blocking=blocking[r.name],
                              metadata={"engine": "great_expectations" if uses_gx(r) else "sql",
                                        "scope": f"{r.time_column} in the run's days" if r.windowed else "whole table"})
               for r in rules],
        pool=query_pool(source),
        description=f"Source constraints of {source}.{table}.",
    )
    def source_checks(context: AssetCheckExecutionContext, postgres: PostgresResource) -> Iterator[AssetCheckResult]:
        window = check_window(context)
        outcomes = evaluate(postgres.conninfo(source), rules, window)
        context.log.info(f"{source}.{table}: {sum(not o.passed for o in outcomes)} of {len(outcomes)} checks "
                         f"failed over {window.describe()}")
        yield from _emit(key, outcomes, blocking, window)

    return source_checks


def build_rollup_checks(spec: RollupSpec) -> AssetChecksDefinition:
    """Reconciliation with the source and sanity of the statistics, for the run's days; both blocking."""
    key = rollup_key(spec.name)
    blocking = {"reconciliation": True, "sanity": True}

    @multi_asset_check(
        name=f"{spec.name}_checks",
        specs=[AssetCheckSpec("reconciliation", asset=key, blocking=True,
                              description=f"sum({spec.reconciliation.column}) equals the source count for each day "
                              "(days already archived are skipped)"),
               AssetCheckSpec("sanity", asset=key, blocking=True,
                              description="p50 <= p95 <= max and no negative durations in every row")],
        pool=query_pool(spec.source),
    )
    def rollup_checks(context: AssetCheckExecutionContext, postgres: PostgresResource,
                      lake: ParquetLake) -> Iterator[AssetCheckResult]:
        window = check_window(context)
        with postgres.read(spec.source) as conn:
            outcomes = [reconciliation(conn, spec, lake.location(), window), sanity(spec, lake.location(), window)]
        yield from _emit(key, outcomes, blocking, window)

    return rollup_checks


def build_archive_checks(entry: TableEntry) -> AssetChecksDefinition:
    """Retention compliance of the whole table, and integrity of the files ledgered for the run's days."""
    key = archive_key(entry)
    grace = entry.grace_days if entry.grace_days is not None else GRACE_DAYS
    specs = [AssetCheckSpec("retention_compliance", asset=key,
                            description=f"no row of {entry.table} older than keep_days ({entry.keep_days}"
                            f"{', or its rule' if entry.rules else ''}) + {grace} days of grace")]
    if entry.archives:
        specs.append(AssetCheckSpec("archive_integrity", asset=key,
                                    description="files of the run's days exist, reread to their ledgered row count "
                                    "and key checksum, and no row is in two files of a day"))
    blocking = {s.name: False for s in specs}

    @multi_asset_check(name=f"archive_{entry.source}_{entry.entry_name.lower()}_checks", specs=specs,
                       pool=query_pool(entry.source))
    def archive_checks(context: AssetCheckExecutionContext, postgres: PostgresResource,
                       lake: ParquetLake) -> Iterator[AssetCheckResult]:
        window = check_window(context)
        with postgres.read(entry.source) as conn:
            outcomes = [retention_compliance(conn, entry, datetime.now(timezone.utc))]
            if entry.archives:
                outcomes.append(archive_integrity(conn, entry, lake.location(), window))
        yield from _emit(key, outcomes, blocking, window)

    return archive_checks


SOURCE_CHECKS = [build_source_checks(source, table) for source, table in tables()]
ROLLUP_CHECKS = [build_rollup_checks(spec) for spec in ROLLUPS]
ARCHIVE_CHECKS = [build_archive_checks(entry) for entry in effective_entries()]
QUALITY_CHECKS: list[AssetChecksDefinition] = [*SOURCE_CHECKS, *ROLLUP_CHECKS, *ARCHIVE_CHECKS]


def _guarded(entries: list[TableEntry]) -> list[AssetKey]:
    keys = {source_table_key(e.source, e.table) for e in entries} | {k for e in entries for k in rollups_reading(e)}
    return sorted(keys, key=lambda k: k.to_user_string())


def purge_guards(source: str) -> AssetSelection:
    """The checks an archive job of `source` runs before purging: those of the source tables it archives and
    of the rollups reading them (their blocking checks gate the archive assets downstream)."""
    return AssetSelection.checks_for_assets(*_guarded(effective_entries(source)))


def archive_run_checks(entry: TableEntry) -> list[AssetCheckKey]:
    """The checks of a run archiving only `entry`: the guards of its table and of the rollups reading it, and
    the archive asset's own (retention compliance, archive integrity)."""
    guarded = {*_guarded([entry]), archive_key(entry)}
    return [spec.key for checks in QUALITY_CHECKS for spec in checks.check_specs if spec.asset_key in guarded]


"""The ledger, shown by Dagster: every archive, purge and restore appears on its archive asset's partition,
whichever path did it.

- Runs of the archive jobs materialize their partitions themselves (`day_metadata`).
- The CLI and the demo run the engine outside Dagster: they report runless materializations (restores and
  refusals as observations) to the instance named by DAGSTER_HOME, or the one `forge-assets dev` uses.
- Anything the ledger holds that Dagster does not (a process killed after COMMIT, an archive run with no
  instance reachable, a run that failed after some of its days) is reconciled by the retention sensor on its
  next tick: `reconcile` reports each ledgered day that is not a materialized partition.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date

from dagster import AssetMaterialization, AssetObservation, DagsterInstance, MetadataValue

from forge_assets.assets.names import archive_key
from forge_assets.assets.partitions import DAILY
from forge_assets.config import Settings
from forge_assets.conninfo import redact
from forge_assets.retention.catalog import TableEntry
from forge_assets.retention.engine import DayResult, RestoreResult
from forge_assets.retention.history import LedgerDay, ledgered_days


def first_partition() -> date:
    return DAILY.start.date()


def partition_of(day: date) -> str:
    """The partition a day is shown on: its own, or the first partition for days older than it (which the
    first partition's runs archive too)."""
    return max(day, first_partition()).isoformat()


def day_metadata(result: DayResult, via: str) -> dict:
    """The metadata of one archived (entry, day): the same from a run, the CLI, the demo."""
    return {
        "rows": result.rows,
        "bytes": result.bytes,
        "files": len(result.files),
        "partitions_dropped": len(result.partitions_dropped),
        "seconds": round(result.seconds, 3),
        "rows_per_second": round(result.rows_per_second),
        "day": result.day.isoformat(),
        "via": via,
        "paths": MetadataValue.json(result.files),
        **({"fallback": result.fallback} if result.fallback else {}),
        **({"not_archived": result.skipped} if result.skipped else {}),
    }


def report_archived(instance: DagsterInstance, entry: TableEntry, results: Iterable[DayResult], via: str) -> int:
    """Runless materializations for the days the engine archived rows of (a skipped or empty day reports
    nothing)."""
    reported = 0
    for result in results:
        if result.skipped or result.dry_run or not (result.rows or result.partitions_dropped):
            continue
        instance.report_runless_asset_event(AssetMaterialization(
            asset_key=archive_key(entry), partition=partition_of(result.day), metadata=day_metadata(result, via)))
        reported += 1
    return reported


def report_observation(instance: DagsterInstance, entry: TableEntry, day: date, metadata: dict) -> None:
    """A restore, a hold or a refusal: an observation on the day's partition (it does not change what is
    materialized)."""
    instance.report_runless_asset_event(AssetObservation(
        asset_key=archive_key(entry), partition=partition_of(day), metadata=metadata))


def _ledger_metadata(found: LedgerDay) -> dict:
    return {"rows": found.rows, "bytes": found.bytes, "files": found.files, "runs": found.runs,
            "ledger_run_id": found.last_run_id, "archived_at": found.archived_at.isoformat(),
            "day": found.day.isoformat(), "via": "ledger reconciliation"}


def reconcile(instance: DagsterInstance, conn, entries: Iterable[TableEntry]) -> int:
    """Report every ledgered day that Dagster does not show as materialized; return how many."""
    reported = 0
    for entry in entries:
        key = archive_key(entry)
        shown = instance.get_materialized_partitions(key)
        for found in ledgered_days(conn, entry):
            partition = partition_of(found.day)
            if partition in shown:
                continue
            instance.report_runless_asset_event(AssetMaterialization(
                asset_key=key, partition=partition, metadata=_ledger_metadata(found)))
            shown.add(partition)
            reported += 1
    return reported


@contextmanager
def configured_instance(settings: Settings) -> Iterator[DagsterInstance | None]:
    """The Dagster instance the CLI reports to: DAGSTER_HOME's, else the one `forge-assets dev` and the demo
    keep under FORGE_HOME when it exists; None when there is neither."""
    if not os.environ.get("DAGSTER_HOME"):
        if not (settings.dagster_home / "dagster.yaml").exists():
            yield None
            return
        from forge_assets.instance import dagster_environment

        os.environ.update(dagster_environment(settings))
    with DagsterInstance.get() as instance:
        yield instance


def report_to_dagster(settings: Settings, reports: Iterable, via: str) -> None:
    """Show what the engine archived (`EntryReport`s) on the archive assets' partitions when a Dagster instance
    is configured. A failure to report loses nothing: the retention sensor reconciles the ledger on its next
    tick."""
    try:
        with configured_instance(settings) as instance:
            if instance is None:
                return
            days = sum(report_archived(instance, r.entry, r.results, via) for r in reports)
    except Exception as exc:  # reporting is best effort; the ledger stays the truth
        print(f"forge-assets: warning: not reported to Dagster ({redact(str(exc)).splitlines()[0][:300]}); "
              "the retention sensor reconciles the ledger on its next tick", file=sys.stderr)
        return
    print(f"reported {days} archived days to Dagster")


def report_restore(settings: Settings, entry: TableEntry, day: date, result: RestoreResult) -> None:
    """An observation on the restored day's partition: rows restored and the hold before it is archived again."""
    held = result.held_until.isoformat() if result.held_until else "no hold"
    try:
        with configured_instance(settings) as instance:
            if instance is not None:
                report_observation(instance, entry, day, {"restored_rows": result.rows, "via": "cli",
                                                          "day": day.isoformat(), "held_until": held})
    except Exception as exc:  # reporting is best effort
        print(f"forge-assets: warning: restore not reported to Dagster ({redact(str(exc)).splitlines()[0][:300]})",
              file=sys.stderr)

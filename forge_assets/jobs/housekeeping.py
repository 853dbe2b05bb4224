"""Dagster's own storage kept in check: runs (with their event logs) older than FORGE_DAGSTER_KEEP_DAYS are
deleted by a daily job. The ledger and the lake keep the history that matters; materializations reported
outside runs (CLI, demo, ledger reconciliation) are not run events and stay. Sensor and schedule ticks are
purged by the daemon itself (the `retention` section of dagster.yaml, forge_assets/instance.py)."""

from datetime import datetime, timedelta, timezone

from dagster import (
    Config,
    DagsterRunStatus,
    DefaultScheduleStatus,
    OpExecutionContext,
    RunsFilter,
    ScheduleDefinition,
    job,
    op,
)

from forge_assets.effective import effective_operations

_FINISHED = [DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED]
_BATCH = 500


class PruneConfig(Config):
    keep_days: int = effective_operations().dagster_keep_days


def prune_runs(instance, keep_days: int, now: datetime | None = None, keep_run_id: str | None = None) -> int:
    """Delete finished runs created more than `keep_days` ago, with their event logs; return how many."""
    cutoff = (now or datetime.now(timezone.utc)) - timedelta(days=keep_days)
    deleted = 0
    while True:
        runs = [r for r in instance.get_run_records(RunsFilter(statuses=_FINISHED, created_before=cutoff), limit=_BATCH)
                if r.dagster_run.run_id != keep_run_id]
        for record in runs:
            instance.delete_run(record.dagster_run.run_id)
        deleted += len(runs)
        if len(runs) < _BATCH:
            return deleted


@op(description="Delete finished Dagster runs older than keep_days, and their event logs.")
def prune_dagster_runs(context: OpExecutionContext, config: PruneConfig) -> int:
    deleted = prune_runs(context.instance, config.keep_days, keep_run_id=context.run_id)
    context.log.info(f"deleted {deleted} runs older than {config.keep_days} days")
    return deleted


@job(name="prune_dagster_storage", tags={"forge/housekeeping": "true"},
     description="Prunes Dagster's own run and event-log tables (FORGE_DAGSTER_KEEP_DAYS, default 30 days).")
def prune_job():
    prune_dagster_runs()


prune_schedule = ScheduleDefinition(
    name="prune_dagster_storage_daily", job=prune_job, cron_schedule="30 3 * * *", execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Every day at 03:30 UTC: delete Dagster runs and event logs older than FORGE_DAGSTER_KEEP_DAYS.")

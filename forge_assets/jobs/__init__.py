"""Jobs and schedules."""

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    ScheduleDefinition,
    build_schedule_from_partitioned_job,
    define_asset_job,
    in_process_executor,
)

from forge_assets.assets.archive import archive_key
from forge_assets.assets.checks import purge_guards, quality_job
from forge_assets.assets.rollups import ROLLUP_GROUPS
from forge_assets.catalog import CATALOG
from forge_assets.config import SOURCES

rollup_job = define_asset_job(
    name="rollups",
    selection=AssetSelection.groups(*ROLLUP_GROUPS),
    description="Every rollup for a day (or, as a backfill, a range of days in one run).",
    # One process per run: the steps are PostgreSQL queries limited to one per source by their pools, so a
    # process per step (the multiprocess default, ~4 s of imports each) buys nothing.
    executor_def=in_process_executor,
)

rollup_schedule = build_schedule_from_partitioned_job(
    rollup_job,
    name="rollups_daily",
    hour_of_day=0,
    minute_of_hour=30,
    default_status=DefaultScheduleStatus.RUNNING,
    description="Rollups of the previous UTC day, 30 minutes after midnight.",
)

checks_schedule = ScheduleDefinition(
    name="checks_daily",
    job=quality_job,
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Every data-quality check on the previous UTC day at 02:00, after its rollups.",
)

archive_jobs = [
    define_asset_job(
        name=f"archive_{source}",
        selection=AssetSelection.assets(*(archive_key(e) for e in CATALOG if e.source == source)) | purge_guards(source),
        description=f"Archive and purge overdue days (one, or a range) of {source}'s tables in the retention catalog.",
        executor_def=in_process_executor,
    )
    for source in SOURCES
]

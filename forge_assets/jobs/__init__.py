"""Jobs and schedules."""

from dagster import AssetSelection, build_schedule_from_partitioned_job, define_asset_job

from forge_assets.assets.rollups import ROLLUP_GROUPS

rollup_job = define_asset_job(
    name="rollups",
    selection=AssetSelection.groups(*ROLLUP_GROUPS),
    description="Every rollup for a day (or, as a backfill, a range of days in one run).",
)

rollup_schedule = build_schedule_from_partitioned_job(
    rollup_job,
    name="rollups_daily",
    hour_of_day=0,
    minute_of_hour=30,
    description="Rollups of the previous UTC day, 30 minutes after midnight.",
)

"""The daily schedules: rollups of the previous UTC day, then every data-quality check on it."""

from dagster import DefaultScheduleStatus, ScheduleDefinition, build_schedule_from_partitioned_job

from forge_assets.jobs.asset_jobs import quality_job, rollup_job

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

"""The daily schedules: rollups of the previous UTC day, then every data-quality check on it."""

from dagster import DefaultScheduleStatus, ScheduleDefinition, build_schedule_from_partitioned_job

from forge_assets.effective import effective_operations
from forge_assets.jobs.asset_jobs import quality_job, rollup_job

ROLLUP_TIME, CHECKS_TIME = effective_operations().rollup_schedule, effective_operations().checks_schedule  # UTC

rollup_schedule = build_schedule_from_partitioned_job(
    rollup_job,
    name="rollups_daily",
    hour_of_day=ROLLUP_TIME.hour,
    minute_of_hour=ROLLUP_TIME.minute,
    default_status=DefaultScheduleStatus.RUNNING,
    description=f"Rollups of the previous UTC day, at {ROLLUP_TIME:%H:%M} UTC.",
)

checks_schedule = ScheduleDefinition(
    name="checks_daily",
    job=quality_job,
    cron_schedule=f"{CHECKS_TIME.minute} {CHECKS_TIME.hour} * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description=f"Every data-quality check on the previous UTC day at {CHECKS_TIME:%H:%M} UTC, after its rollups.",
)

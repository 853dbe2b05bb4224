"""The one Definitions object: assets, checks, jobs, schedules, sensors and resources."""

from collections.abc import Mapping

from dagster import Definitions

from forge_assets.assets.archive import ARCHIVE_ASSETS
from forge_assets.assets.checks import QUALITY_CHECKS, quality_job
from forge_assets.assets.rollups import ROLLUP_ASSETS
from forge_assets.assets.sources import SOURCE_TABLES
from forge_assets.jobs import archive_jobs, checks_schedule, rollup_job, rollup_schedule
from forge_assets.jobs.housekeeping import prune_job, prune_schedule
from forge_assets.resources.alerts import FailureAlerts
from forge_assets.resources.lake import ParquetLake
from forge_assets.resources.postgres import PostgresResource
from forge_assets.sensors.failures import cleanup_failure_sensor
from forge_assets.sensors.retention import retention_sensor


def build_definitions(resources: Mapping[str, object]) -> Definitions:
    """Everything the project defines, bound to `resources` (postgres, lake, alerts)."""
    return Definitions(
        assets=[*SOURCE_TABLES, *ROLLUP_ASSETS, *ARCHIVE_ASSETS],
        asset_checks=QUALITY_CHECKS,
        jobs=[rollup_job, *archive_jobs, quality_job, prune_job],
        schedules=[rollup_schedule, checks_schedule, prune_schedule],
        sensors=[retention_sensor, cleanup_failure_sensor],
        resources=resources,
    )


defs = build_definitions({
    "postgres": PostgresResource.from_environment(),
    "lake": ParquetLake.from_environment(),
    "alerts": FailureAlerts.from_environment(),
})

"""The one Definitions object: assets, checks, jobs, schedules, sensors and resources."""

from collections.abc import Iterable, Mapping

from dagster import Definitions

from forge_assets.assets.archive import ARCHIVE_ASSETS
from forge_assets.assets.checks import QUALITY_CHECKS
from forge_assets.assets.names import source_of
from forge_assets.assets.rollups import ROLLUP_ASSETS
from forge_assets.assets.sources import SOURCE_TABLES
from forge_assets.config import SOURCES, load_settings
from forge_assets.jobs.asset_jobs import archive_jobs, quality_job, rollup_job
from forge_assets.jobs.housekeeping import prune_job, prune_schedule
from forge_assets.jobs.schedules import checks_schedule, rollup_schedule
from forge_assets.resources.alerts import FailureAlerts
from forge_assets.resources.parquet_lake import ParquetLake
from forge_assets.resources.postgres import PostgresResource
from forge_assets.retention.policy import current_policy
from forge_assets.sensors.failure_sensor import cleanup_failure_sensor
from forge_assets.sensors.retention_sensor import retention_sensor


def build_definitions(resources: Mapping[str, object], sources: Iterable[str] = SOURCES) -> Definitions:
    """Everything the project defines for `sources` (the configured ones: FORGE_SOURCES, or those with a login
    URL, or all five on a shared or the embedded server), bound to `resources` (postgres, lake, alerts)."""
    wanted = set(sources)
    return Definitions(
        assets=[a for a in (*SOURCE_TABLES, *ROLLUP_ASSETS, *ARCHIVE_ASSETS) if source_of(a.key) in wanted],
        asset_checks=[c for c in QUALITY_CHECKS if {source_of(s.asset_key) for s in c.check_specs} <= wanted],
        jobs=[rollup_job, *(j for s, j in zip(SOURCES, archive_jobs, strict=True) if s in wanted), quality_job,
              prune_job],
        schedules=[rollup_schedule, checks_schedule, prune_schedule],
        sensors=[retention_sensor, cleanup_failure_sensor],
        resources=resources,
    )


defs = build_definitions({
    "postgres": PostgresResource.from_environment(),
    "lake": ParquetLake.from_environment(),
    "alerts": FailureAlerts.from_environment(),
}, [s for s in load_settings().sources if s in current_policy().enabled_sources])  # FORGE_POLICY may switch one off

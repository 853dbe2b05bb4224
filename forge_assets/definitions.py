"""The one Definitions object: assets, checks, jobs, schedules, sensors and resources."""

from dagster import Definitions

from forge_assets.assets.archive import ARCHIVE_ASSETS
from forge_assets.assets.checks import QUALITY_CHECKS, quality_job
from forge_assets.assets.rollups import ROLLUP_ASSETS
from forge_assets.assets.sources import SOURCE_TABLES
from forge_assets.jobs import archive_jobs, rollup_job, rollup_schedule
from forge_assets.resources.lake import ParquetLake
from forge_assets.resources.postgres import PostgresResource

defs = Definitions(
    assets=[*SOURCE_TABLES, *ROLLUP_ASSETS, *ARCHIVE_ASSETS],
    asset_checks=QUALITY_CHECKS,
    jobs=[rollup_job, *archive_jobs, quality_job],
    schedules=[rollup_schedule],
    resources={
        "postgres": PostgresResource.from_environment(),
        "lake": ParquetLake.from_environment(),
    },
)

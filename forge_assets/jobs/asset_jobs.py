"""The asset jobs: every rollup, the archive job of each source, every data-quality check."""

from dagster import AssetSelection, define_asset_job

from forge_assets.assets.checks import purge_guards
from forge_assets.assets.names import archive_group, archive_job_name, rollup_group
from forge_assets.config import SOURCES
from forge_assets.rollups.registry import ROLLUPS

rollup_job = define_asset_job(
    name="rollups",
    selection=AssetSelection.groups(*dict.fromkeys(rollup_group(spec.source) for spec in ROLLUPS)),
    description="Every rollup for a day (or, as a backfill, a range of days in one run).",
)

archive_jobs = [
    define_asset_job(
        name=archive_job_name(source),
        selection=AssetSelection.groups(archive_group(source)) | purge_guards(source),
        description=f"Archive and purge one overdue day of every {source} table in the retention catalog.",
    )
    for source in SOURCES
]

quality_job = define_asset_job(
    name="quality_checks",
    selection=AssetSelection.all_asset_checks(),
    description="Every data-quality check for a day (or a range of days): source constraints, rollup "
    "reconciliation and sanity, retention compliance, archive integrity. Materializes nothing.",
)

"""Every name the Dagster layer gives things, in one place: asset keys, groups, pools, jobs and run tags."""

from dagster import AssetKey

from forge_assets.retention.catalog import TableEntry
from forge_assets.rollups.registry import ROLLUPS

RUN_TAG_TABLE = "forge/table"
"""Run tag naming the catalog entry an archive run is for (the instance admits one run per value)."""


def source_table_key(source: str, table: str) -> AssetKey:
    """An operational source table (an external asset: the application owns it)."""
    return AssetKey([source, table])


def rollup_key(rollup: str) -> AssetKey:
    return AssetKey(rollup)


def archive_key(entry: TableEntry) -> AssetKey:
    return archive_entry_key(entry.source, entry.entry_name)


def archive_entry_key(source: str, entry_name: str) -> AssetKey:
    """The archive asset of a source's catalog entry named `entry_name` (e.g. an `after` dependency)."""
    return AssetKey(["archive", source, entry_name])


def rollups_reading(entry: TableEntry) -> list[AssetKey]:
    """The rollups computed from the entry's table: a day is purged only after they exist for it."""
    return [rollup_key(spec.name) for spec in ROLLUPS if spec.source == entry.source and entry.table in spec.reads]


def source_of(key: AssetKey) -> str:
    """The source system an asset key belongs to (source table, rollup or archive)."""
    if key.path[0] == "archive":
        return key.path[1]
    if len(key.path) == 2:
        return key.path[0]
    return next(spec.source for spec in ROLLUPS if spec.name == key.path[0])


def source_group(source: str) -> str:
    return f"{source}_source"


def rollup_group(source: str) -> str:
    return f"{source}_rollups"


def archive_group(source: str) -> str:
    return f"{source}_archive"


def query_pool(source: str) -> str:
    """Concurrency pool of the rollup and check queries on a source database."""
    return f"{source}_postgres"


def purge_pool(source: str) -> str:
    """Concurrency pool of the purges of a source database (one at a time)."""
    return f"{source}_purge"


def archive_job_name(source: str) -> str:
    return f"archive_{source}"

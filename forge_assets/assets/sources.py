"""The operational tables forge_assets reads, as external assets: visible in lineage, never materialized."""

from dagster import AssetSpec

from forge_assets.assets.names import source_group, source_table_key
from forge_assets.quality.rules import tables as checked_tables
from forge_assets.retention.policy import effective_entries
from forge_assets.rollups.registry import ROLLUPS

SOURCE_TABLES: list[AssetSpec] = [
    AssetSpec(
        key=source_table_key(source, table),
        group_name=source_group(source),
        kinds={"postgres"},
        description=f"{table} in the {source} database; the {source} application owns and writes it.",
    )
    for source, table in sorted(
        {(spec.source, table) for spec in ROLLUPS for table in spec.reads} | {(e.source, e.table) for e in effective_entries()}
        | set(checked_tables())
    )
]

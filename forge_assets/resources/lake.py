"""The Parquet lake resource: where rollup partitions and archive files live."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from dagster import ConfigurableResource

from forge_assets.config import load_settings
from forge_assets.lake import lake_path, write_parquet_atomic


class ParquetLake(ConfigurableResource):
    """A local directory laid out with hive partitioning:
    `rollups/<asset>/day=YYYY-MM-DD/part-0.parquet` and `archive/<source>/<table>/day=YYYY-MM-DD/<run>.parquet`."""

    root: str

    @classmethod
    def from_environment(cls) -> ParquetLake:
        """The lake named by FORGE_LAKE_URI, else $FORGE_HOME/lake."""
        return cls(root=str(load_settings().lake_root))

    def rollup_file(self, asset: str, day: str) -> Path:
        """The one Parquet file of a rollup's day partition."""
        return lake_path(Path(self.root), "rollups", asset, f"day={day}", "part-0.parquet")

    def write_rollup(self, asset: str, day: str, table: pa.Table) -> tuple[Path, int]:
        """Replace a rollup's day partition atomically; return its path and size in bytes."""
        path = self.rollup_file(asset, day)
        return path, write_parquet_atomic(table, path)

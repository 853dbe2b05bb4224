"""The Parquet lake resource: where rollup partitions and archive files live."""

from __future__ import annotations

from datetime import date

import pyarrow as pa
from dagster import ConfigurableResource

from forge_assets.config import load_settings
from forge_assets.lake import Location, location, rollup_file, write_parquet_atomic


class ParquetLake(ConfigurableResource):
    """A local directory or an object-store prefix laid out with hive partitioning (forge_assets.lake builds
    every path)."""

    root: str

    @classmethod
    def from_environment(cls) -> ParquetLake:
        """The lake named by FORGE_LAKE_URI, else $FORGE_HOME/lake."""
        return cls(root=str(load_settings().lake_root))

    def location(self) -> Location:
        """The lake root: a local directory or an object-store prefix."""
        return location(self.root)

    def write_rollup(self, rollup: str, day: date, table: pa.Table) -> tuple[Location, int]:
        """Replace a rollup's day partition atomically (a rename, or one PUT); return its path and size in bytes."""
        path = rollup_file(self.location(), rollup, day)
        return path, write_parquet_atomic(table, path)

"""Every rollup the project defines: the SPECS of each source's module, forge_assets/rollups/<source>.py."""

from importlib import import_module

from forge_assets.config import SOURCES
from forge_assets.rollups.spec import RollupSpec

ROLLUPS: tuple[RollupSpec, ...] = tuple(
    spec for source in SOURCES for spec in import_module(f"forge_assets.rollups.{source}").SPECS
)

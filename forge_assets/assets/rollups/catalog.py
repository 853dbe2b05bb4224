"""Every rollup the project defines, by source."""

from forge_assets.assets.rollups import forge, goforge, openorchestrator, orchestry, pulse
from forge_assets.assets.rollups.spec import RollupSpec

ROLLUPS: tuple[RollupSpec, ...] = (*forge.SPECS, *goforge.SPECS, *orchestry.SPECS, *pulse.SPECS, *openorchestrator.SPECS)

"""forge_assets: rollups, archive/purge and data-quality checks for automation-system PostgreSQL databases."""

"""The Dagster assets and checks: source tables (external), rollups, archives, and the checks next to them."""

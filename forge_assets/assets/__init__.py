"""Assets: source tables (external), rollups."""

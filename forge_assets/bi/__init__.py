"""Reading the lake as BI tools do: the seeds' own questions answered from rollups, and a DuckDB file of typed
views over rollups and archives. No Dagster here."""

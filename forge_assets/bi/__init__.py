"""Reading the lake as BI tools do: the seeds' own questions answered from rollups, and a DuckDB file of typed
views over rollups and archives. No Dagster here."""


class LakeDatabaseError(RuntimeError):
    """The lake's DuckDB file could not be written (the message says where and why)."""

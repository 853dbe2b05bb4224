"""Dagster resources: source PostgreSQL connections, the Parquet lake, the alert hook."""

"""Dagster resources: source PostgreSQL connections and the Parquet lake."""

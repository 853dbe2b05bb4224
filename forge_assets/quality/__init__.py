"""Data-quality rules and their evaluation (plain SQL or Great Expectations on PostgreSQL); no Dagster here."""

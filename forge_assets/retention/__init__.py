"""The retention engine: archive -> verify -> purge -> restore, plain psycopg and pyarrow (no Dagster)."""

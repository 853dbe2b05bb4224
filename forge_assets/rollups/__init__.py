"""Rollup specs (no Dagster): spec.py says what a rollup is, <source>.py declares them, registry.py lists them."""

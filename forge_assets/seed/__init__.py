"""The data generator for the stand-in source databases: one module per source, loaded by load.py."""

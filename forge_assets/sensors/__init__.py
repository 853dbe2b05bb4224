"""Sensors: overdue retention (requests archive runs) and failed cleanup runs (records and alerts)."""

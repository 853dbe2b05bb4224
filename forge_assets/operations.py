"""Operational knobs of the unattended path, from environment variables (one clear error line per bad value).

| variable | default | meaning |
|---|---|---|
| FORGE_SENSOR_INTERVAL_SECONDS | 60 | seconds between retention sensor ticks |
| FORGE_SENSOR_MAX_RUNS | 12 | run requests per tick at most |
| FORGE_ARCHIVE_DAYS_PER_RUN | 31 | days of one table one archive run covers at most (each its own transaction) |
| FORGE_RETRY_BACKOFF | 1h,4h,1d | waits before a failed day is requested again (the last one repeats) |
| FORGE_RESTORE_HOLD_DAYS | 7 | days a restored day stays in PostgreSQL before the sensor archives it again |
| FORGE_DAGSTER_KEEP_DAYS | 30 | runs and event logs of Dagster older than this are pruned daily |
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from forge_assets.config import ConfigError

_DURATION = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


@dataclass(frozen=True)
class Operations:
    sensor_interval_seconds: int = 60
    sensor_max_runs: int = 12
    archive_days_per_run: int = 31
    retry_backoff: tuple[timedelta, ...] = (timedelta(hours=1), timedelta(hours=4), timedelta(days=1))
    restore_hold_days: int = 7
    dagster_keep_days: int = 30

    def backoff(self, failures: int) -> timedelta:
        """The wait after the `failures`-th consecutive failure of a day (1-based)."""
        return self.retry_backoff[min(failures, len(self.retry_backoff)) - 1]


def _whole(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = env.get(name)
    if not text:
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        raise ConfigError(f"{name} must be a whole number from {low} to {high} (got {text!r})")
    return int(text)


def _backoff(env: Mapping[str, str]) -> tuple[timedelta, ...] | None:
    text = env.get("FORGE_RETRY_BACKOFF")
    if not text:
        return None
    waits = []
    for part in text.split(","):
        found = _DURATION.fullmatch(part.strip())
        if not found or int(found[1]) == 0:
            raise ConfigError(f"FORGE_RETRY_BACKOFF must be durations like 1h,4h,1d (got {text!r})")
        waits.append(timedelta(**{_UNITS[found[2]]: int(found[1])}))
    return tuple(waits)


def load_operations(environ: Mapping[str, str] | None = None) -> Operations:
    env = os.environ if environ is None else environ
    defaults = Operations()
    return Operations(
        sensor_interval_seconds=_whole(env, "FORGE_SENSOR_INTERVAL_SECONDS", defaults.sensor_interval_seconds, 10, 86_400),
        sensor_max_runs=_whole(env, "FORGE_SENSOR_MAX_RUNS", defaults.sensor_max_runs, 1, 1_000),
        archive_days_per_run=_whole(env, "FORGE_ARCHIVE_DAYS_PER_RUN", defaults.archive_days_per_run, 1, 366),
        retry_backoff=_backoff(env) or defaults.retry_backoff,
        restore_hold_days=_whole(env, "FORGE_RESTORE_HOLD_DAYS", defaults.restore_hold_days, 0, 3_650),
        dagster_keep_days=_whole(env, "FORGE_DAGSTER_KEEP_DAYS", defaults.dagster_keep_days, 1, 36_500),
    )

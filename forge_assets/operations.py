"""Operational knobs of the unattended path: one table of them, each with its built-in default, its key under
the policy file's `operations:` and its environment variable, parsed and checked here for both.

The effective value of each knob (and where it came from) is `forge_assets.effective.effective_operations()`:
the environment variable when set, else the policy file (FORGE_POLICY), else the built-in default. Knobs the
Dagster definitions or the entries read when they load (schedules, grace days, run limit) have no variable.

| knob (policy key) | variable | default | meaning |
|---|---|---|---|
| rollup_schedule | - | 00:30 | UTC time of the daily rollups of the previous day |
| checks_schedule | - | 02:00 | UTC time of the daily data-quality checks |
| sensor_interval_seconds | FORGE_SENSOR_INTERVAL_SECONDS | 60 | seconds between retention sensor ticks |
| sensor_max_runs_per_tick | FORGE_SENSOR_MAX_RUNS | 12 | run requests per tick at most |
| archive_days_per_run | FORGE_ARCHIVE_DAYS_PER_RUN | 31 | days of one table one archive run covers at most (each its own transaction) |
| retry_backoff | FORGE_RETRY_BACKOFF | 1h,4h,1d | waits before a failed day is requested again (the last one repeats) |
| restore_hold_days | FORGE_RESTORE_HOLD_DAYS | 7 | default of `restore --hold-days`: days a restored day stays out of retention |
| grace_days | - | 2 | days past keep_days before the retention check fails (entries may set their own) |
| max_concurrent_runs | - | 4 | Dagster runs at once (dagster.yaml written by `forge-assets dev`) |
| dagster_keep_days | FORGE_DAGSTER_KEEP_DAYS | 30 | runs and event logs of Dagster older than this are pruned daily |
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import time, timedelta
from typing import Literal

from forge_assets.config import ConfigError

_DURATION = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_TIME = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


@dataclass(frozen=True)
class Operations:
    rollup_schedule: time = time(0, 30)
    checks_schedule: time = time(2, 0)
    sensor_interval_seconds: int = 60
    sensor_max_runs: int = 12
    archive_days_per_run: int = 31
    retry_backoff: tuple[timedelta, ...] = (timedelta(hours=1), timedelta(hours=4), timedelta(days=1))
    restore_hold_days: int = 7
    grace_days: int = 2
    max_concurrent_runs: int = 4
    dagster_keep_days: int = 30

    def backoff(self, failures: int) -> timedelta:
        """The wait after the `failures`-th consecutive failure of a day (1-based)."""
        return self.retry_backoff[min(failures, len(self.retry_backoff)) - 1]


@dataclass(frozen=True)
class Knob:
    """One knob: its Operations attribute, its key under the policy file's `operations:`, its environment
    variable (None: set in the policy file only)."""

    name: str
    key: str
    variable: str | None
    kind: Literal["whole", "time", "durations"] = "whole"
    low: int = 0
    high: int = 0


KNOBS: tuple[Knob, ...] = (
    Knob("rollup_schedule", "rollup_schedule", None, "time"),
    Knob("checks_schedule", "checks_schedule", None, "time"),
    Knob("sensor_interval_seconds", "sensor_interval_seconds", "FORGE_SENSOR_INTERVAL_SECONDS", low=10, high=86_400),
    Knob("sensor_max_runs", "sensor_max_runs_per_tick", "FORGE_SENSOR_MAX_RUNS", low=1, high=1_000),
    Knob("archive_days_per_run", "archive_days_per_run", "FORGE_ARCHIVE_DAYS_PER_RUN", low=1, high=366),
    Knob("retry_backoff", "retry_backoff", "FORGE_RETRY_BACKOFF", "durations"),
    Knob("restore_hold_days", "restore_hold_days", "FORGE_RESTORE_HOLD_DAYS", low=0, high=3_650),
    Knob("grace_days", "grace_days", None, low=0, high=3_650),
    Knob("max_concurrent_runs", "max_concurrent_runs", None, low=1, high=1_000),
    Knob("dagster_keep_days", "dagster_keep_days", "FORGE_DAGSTER_KEEP_DAYS", low=1, high=36_500),
)
KNOB_BY_KEY = {k.key: k for k in KNOBS}


def parse_knob(knob: Knob, value) -> object:
    """The knob's value from a variable's text or a policy file's value (its raw text for times and
    durations); raise ValueError with what is expected."""
    if knob.kind == "whole":
        text = str(value) if not isinstance(value, bool) else ""
        if not text.isdigit():
            raise ValueError(f"must be a whole number (got {value!r})")
        if not knob.low <= int(text) <= knob.high:
            raise ValueError(f"must be between {knob.low} and {knob.high} (got {int(text)})")
        return int(text)
    if knob.kind == "time":
        found = _TIME.fullmatch(str(value))
        if not found:
            raise ValueError(f"must be a UTC time of day as HH:MM (got {value!r})")
        return time(int(found[1]), int(found[2]))
    waits = []
    for part in str(value).split(","):
        found = _DURATION.fullmatch(part.strip())
        if not found or int(found[1]) == 0:
            raise ValueError(f"must be durations like 1h,4h,1d (got {value!r})")
        waits.append(timedelta(**{_UNITS[found[2]]: int(found[1])}))
    return tuple(waits)


def show_knob(knob: Knob, value) -> str:
    """A knob's value as the file or the variable would write it."""
    if knob.kind == "time":
        return f"{value:%H:%M} UTC"
    if knob.kind == "durations":
        return ",".join(_short(wait) for wait in value)
    return str(value)


def _short(wait: timedelta) -> str:
    seconds = int(wait.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def environment_operations(environ: Mapping[str, str] | None = None) -> dict[str, object]:
    """The knobs the environment sets: attribute name -> value. Raise ConfigError naming the first bad one."""
    env = os.environ if environ is None else environ
    found = {}
    for knob in KNOBS:
        text = env.get(knob.variable) if knob.variable else None
        if text:
            try:
                found[knob.name] = parse_knob(knob, text.strip())
            except ValueError as exc:
                raise ConfigError(f"{knob.variable} {exc}") from None
    return found


def load_operations(environ: Mapping[str, str] | None = None, base: Operations | None = None) -> Operations:
    """`base` (the built-in defaults unless given) with the knobs the environment sets."""
    return replace(base or Operations(), **environment_operations(environ))

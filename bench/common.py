"""Shared benchmark plumbing: an isolated set of databases, child processes, medians, result files."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from datetime import date, datetime, timezone
from pathlib import Path

from forge_assets.config import SOURCES, Settings, load_settings
from forge_assets.days import day_window
from forge_assets.db import source_connection
from forge_assets.seed.common import SeedPlan
from forge_assets.seed.load import seed_sources, table_counts

RESULTS = Path(__file__).resolve().parent / "results"


def bench_settings() -> Settings:
    """The configured server, with databases prefixed `bench_` so benchmarks never touch demo data."""
    settings = load_settings()
    return replace(settings, database_prefix=f"{settings.database_prefix}bench_")


def run_child(module: str, *args: str) -> dict:
    """Run `python -m module args` in a fresh process; it prints one JSON object as its last line."""
    out = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(args)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def median_of(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def peak_rss_mb() -> float:
    """Peak resident set size of this process, in MB (VmHWM: unlike ru_maxrss, not inherited across fork+exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def machine() -> str:
    return f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"


def write_section(section: Section) -> Path:
    """Write a benchmark run alone: bench/results/<date>-<name>.json and .md."""
    return write_results(section.name, section.payload, section.markdown)


@dataclass(frozen=True)
class Section:
    """One benchmark's figures: what `python -m bench <name>` writes alone and `python -m bench all` gathers."""

    name: str
    payload: dict
    markdown: str


def write_results(name: str, payload: dict, markdown: str) -> Path:
    """Write bench/results/<date>-<name>.json and .md; return the markdown path."""
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    payload = {"machine": machine(), "taken_at": datetime.now(timezone.utc).isoformat(), **payload}
    (RESULTS / f"{stamp}-{name}.json").write_text(json.dumps(payload, indent=2, default=str))
    path = RESULTS / f"{stamp}-{name}.md"
    path.write_text(markdown)
    return path


def prepare(scale: float) -> tuple[date, dict[str, int]]:
    """Seed two days at `scale` into the bench databases (once) and return the complete day."""
    from forge_assets.migrate import run_migrations

    settings = bench_settings()
    anchor = datetime.now(timezone.utc).replace(hour=1, minute=0, second=0, microsecond=0)
    run_migrations(settings, SOURCES)
    with source_connection(settings, "forge") as conn:
        existing = table_counts(conn)
    if existing.get("main_job"):
        print("bench databases already seeded; reusing them (drop the bench_* databases to reseed)")
    else:
        began = time.perf_counter()
        seed_sources(settings, SeedPlan(days=2, scale=scale, seed=1, anchor=anchor))
        print(f"seeded 2 days at scale {scale} in {time.perf_counter() - began:.0f} s")
    with source_connection(settings, "forge") as conn:
        day = conn.execute("SELECT (max(created) AT TIME ZONE 'UTC')::date - 1 FROM main_job").fetchone()[0]
        start, end = day_window(day, day)
        events = conn.execute("SELECT count(*) FROM main_jobevent WHERE job_created >= %s AND job_created < %s",
                              (start, end)).fetchone()[0]
    return day, {"job_events_that_day": events}

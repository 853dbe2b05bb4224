"""`forge-assets demo`: everything the project does, end to end, on the embedded default."""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone

import pyarrow.parquet as pq

from forge_assets.config import SOURCES, START_DATE_FILE, Settings
from forge_assets.conninfo import describe
from forge_assets.db import server_conninfo, source_connection
from forge_assets.instance import dagster_environment
from forge_assets.lake import ObjectPath, file_exists, list_directory, local_copy, rollup_directory
from forge_assets.migrate import run_migrations
from forge_assets.retention.backlog import archive_source, print_archive_reports
from forge_assets.rollups.registry import ROLLUPS
from forge_assets.seed.common import SeedPlan
from forge_assets.seed.load import first_table_with_data, seed_sources


def _step(message: str) -> float:
    print(f"\n==> {message}", flush=True)
    return time.perf_counter()


def run_demo(settings: Settings, plan: SeedPlan) -> None:
    """Start or attach PostgreSQL, migrate, seed (once), materialize every rollup day, archive every overdue
    day (rollups first, so nothing is purged before it is rolled up), print a summary."""
    begun = _step("PostgreSQL")
    where = "embedded server under " + str(settings.pgdata) if settings.embedded else describe(server_conninfo(settings))
    server_conninfo(settings)
    print(f"using {where}")

    _step("migrations")
    run_migrations(settings, SOURCES)

    started = _step(f"seed: {plan.days} days up to {plan.anchor:%Y-%m-%d %H:%M} UTC")
    empty = [s for s in SOURCES if not _holds_data(settings, s)]
    if empty:
        for report in seed_sources(settings, plan, tuple(empty)):
            print(f"{report.source:17s} {sum(report.counts.values()):>11,} rows in {report.seconds:5.1f} s")
    for source in (s for s in SOURCES if s not in empty):
        print(f"{source:17s} already seeded (forge-assets seed --reset regenerates it)")
    print(f"seeded in {time.perf_counter() - started:.1f} s")
    _first_partition(settings, plan, reseeded=bool(empty))

    first_day = plan.first_day.date()
    last_day = plan.anchor.date() - timedelta(days=1)  # daily partitions hold complete UTC days only
    started = _step(f"rollups: every rollup for {first_day} .. {last_day} in one run")
    result = _materialize_rollups(settings, first_day.isoformat(), last_day.isoformat())
    print(f"run {result.run_id}: {'success' if result.success else 'FAILED'} in {time.perf_counter() - started:.1f} s")
    _print_lake_summary(settings)
    if not result.success:
        raise SystemExit(1)

    started = _step("retention: archive to Parquet and purge every overdue day of every catalog table")
    now = datetime.now(timezone.utc)
    from forge_assets.assets.ledger import report_to_dagster  # imports the partitions: after the first day is set

    for source in SOURCES:
        reports = archive_source(settings, source, now)
        print_archive_reports(reports)
        report_to_dagster(settings, reports, "demo")
    print(f"retention done in {time.perf_counter() - started:.1f} s; ledger: forge_retention.archive_ledger")

    started = _step(f"data-quality checks: every check over {first_day} .. {last_day} in one run")
    checks = run_quality_checks(settings, first_day.isoformat(), last_day.isoformat())
    print_check_table(checks)
    print(f"checks done in {time.perf_counter() - started:.1f} s")

    if isinstance(settings.lake_root, ObjectPath):
        print("\n(the lake is in an object store: no DuckDB file of views; README: Lake on object storage "
              "shows DuckDB and pyarrow reading the bucket)")
    else:
        started = _step("lake: the DuckDB file of views (forge-assets lake)")
        _write_lake_database(settings)
        print(f"written in {time.perf_counter() - started:.1f} s")

    print(f"\nDone in {time.perf_counter() - begun:.0f} s. Parquet lake: {settings.lake_root}")
    print("Open the Dagster UI with `make dev` (the runs above are in its history).")


def _write_lake_database(settings: Settings) -> None:
    """Write <lake>/lake.duckdb with history views, and print the rows every view returns."""
    import duckdb

    from forge_assets.bi.lakedb import build_lake_database
    from forge_assets.db import source_conninfo

    report = build_lake_database(settings.lake_root, settings.lake_root / "lake.duckdb",
                                 {source: source_conninfo(settings, source) for source in settings.sources})
    with duckdb.connect(str(report.path), read_only=True) as con:
        for view in report.views:
            print(f"{view:50s} {con.execute(f'SELECT count(*) FROM {view}').fetchone()[0]:>12,} rows")  # noqa: S608
    for note in report.notes:
        print(f"  {note}")
    if report.unread:
        print(report.unread_line())
    print(f"{report.path}: {len(report.views)} views, question macros {', '.join(report.macros)}; "
          f"open it with `duckdb -readonly {report.path}`")


def _first_partition(settings: Settings, plan: SeedPlan, reseeded: bool) -> None:
    """Partitions start on the first seeded day: write it where `load_settings` (and so `make dev`) reads it,
    unless FORGE_START_DATE says otherwise. Data seeded earlier keeps the day written then."""
    path = settings.home / START_DATE_FILE
    if os.environ.get("FORGE_START_DATE"):
        print(f"partitions start on FORGE_START_DATE={os.environ['FORGE_START_DATE']}")
        return
    if reseeded or not path.exists():
        path.write_text(f"{plan.first_day.date().isoformat()}\n")
    os.environ["FORGE_START_DATE"] = path.read_text().strip()
    print(f"partitions start on {os.environ['FORGE_START_DATE']}, the first seeded day ({path})")


def _holds_data(settings: Settings, source: str) -> bool:
    with source_connection(settings, source) as conn:
        return first_table_with_data(conn) is not None


def _execute_job(settings: Settings, name: str, first: str, last: str, log_level: str):
    """Run one job of the project's definitions in this process over the days first .. last, on the Dagster
    instance `make dev` uses (so the UI shows the run); return the job and its result."""
    os.environ.update(dagster_environment(settings))
    from dagster import DagsterInstance

    from forge_assets.definitions import defs

    job = defs.resolve_job_def(name)
    return job, job.execute_in_process(
        instance=DagsterInstance.get(),
        tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
        raise_on_error=False,
    )


def _materialize_rollups(settings: Settings, first: str, last: str):
    return _execute_job(settings, "rollups", first, last, "WARNING")[1]


def run_quality_checks(settings: Settings, first: str, last: str) -> list[tuple[str, str, str, int | None, float | None]]:
    """Run the `quality_checks` job over the days first .. last; return (asset, check, status, failing, percent)
    per check, status being passed, FAILED or BROKEN (the check could not run)."""
    job, result = _execute_job(settings, "quality_checks", first, last, "CRITICAL")
    rows = {}
    for evaluation in result.get_asset_check_evaluations():
        metadata = evaluation.metadata
        rows[(evaluation.asset_key.to_user_string(), evaluation.check_name)] = (
            "passed" if evaluation.passed else "FAILED",
            metadata["failing_count"].value if "failing_count" in metadata else None,
            metadata["failing_percent"].value if "failing_percent" in metadata else None,
        )
    for key in job.asset_layer.asset_graph.asset_check_keys:
        rows.setdefault((key.asset_key.to_user_string(), key.name), ("BROKEN", None, None))
    return [(asset, check, *values) for (asset, check), values in sorted(rows.items())]


def print_check_table(rows) -> None:
    """A pass/fail table of check results, failures last."""
    print(f"{'asset':40s} {'check':42s} {'status':7s} {'failing':>9s} {'%':>9s}")
    for asset, check, status, failing, percent in sorted(rows, key=lambda r: (r[2] != "passed", r[0], r[1])):
        shown = f"{percent:9.4f}" if percent is not None else f"{'':9s}"
        print(f"{asset:40s} {check:42s} {status:7s} {failing if failing is not None else '':>9} {shown}")
    failed = sum(r[2] != "passed" for r in rows)
    print(f"{len(rows)} checks: {len(rows) - failed} passed, {failed} failed or broken")


def _print_lake_summary(settings: Settings) -> None:
    print(f"\n{'rollup':28s} {'source':17s} {'days':>5s} {'rows':>10s} {'bytes':>11s}")
    for spec in ROLLUPS:
        directory = rollup_directory(settings.lake_root, spec.name)
        files = [directory / name / "part-0.parquet" for name, regular in list_directory(directory)
                 if not regular and name.startswith("day=")]
        files = [f for f in files if file_exists(f)]
        rows = size = 0
        for file in files:
            with local_copy(file) as copy:
                rows += pq.ParquetFile(copy).metadata.num_rows
                size += copy.stat().st_size
        print(f"{spec.name:28s} {spec.source:17s} {len(files):>5d} {rows:>10,} {size:>11,}")

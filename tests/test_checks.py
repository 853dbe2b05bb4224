"""Data-quality checks on a real PostgreSQL: clean data passes every check, a failed blocking check stops the
purge in its run, `seed --dirty` fails exactly the check meant for each violation with its count, and
retention compliance and archive integrity report what they find."""

import shutil
import uuid
from dataclasses import replace
from datetime import datetime, time, timedelta, timezone

import pytest
from dagster import DagsterInstance, Definitions

from forge_assets.assets.archive import ARCHIVE_ASSETS
from forge_assets.assets.checks import QUALITY_CHECKS
from forge_assets.assets.rollups import ROLLUP_ASSETS
from forge_assets.assets.sources import SOURCE_TABLES
from forge_assets.config import SOURCES
from forge_assets.db import drop_source_databases, ensure_source_databases, source_connection, source_conninfo
from forge_assets.jobs.asset_jobs import archive_jobs, quality_job, rollup_job
from forge_assets.migrate import run_migrations
from forge_assets.quality.compliance import retention_compliance
from forge_assets.quality.evaluate import evaluate
from forge_assets.quality.integrity import archive_integrity
from forge_assets.quality.queries import Window
from forge_assets.quality.rules import RULES
from forge_assets.resources.parquet_lake import ParquetLake
from forge_assets.resources.postgres import PostgresResource
from forge_assets.retention.backlog import archive_source
from forge_assets.retention.catalog import entries
from forge_assets.seed import dirty
from forge_assets.seed.common import SeedPlan
from forge_assets.seed.load import seed_sources

# History ending just before today's UTC midnight, so every row lies in a complete daily partition.
ANCHOR = datetime.combine(datetime.now(timezone.utc).date(), time(0), tzinfo=timezone.utc) - timedelta(minutes=43)
PLAN = SeedPlan(days=10, scale=0.3, seed=5, anchor=ANCHOR)
FIRST, LAST = PLAN.first_day.date().isoformat(), (ANCHOR.date()).isoformat()


class World:
    """Scratch source databases and lake, a Dagster instance, and Definitions bound to them."""

    def __init__(self, settings, tmp):
        self.settings = replace(settings, database_prefix=f"{settings.database_prefix}q{uuid.uuid4().hex[:6]}_",
                                lake_root=tmp / "lake")
        self.instance = DagsterInstance.ephemeral()
        self.defs = Definitions(
            assets=[*SOURCE_TABLES, *ROLLUP_ASSETS, *ARCHIVE_ASSETS], asset_checks=QUALITY_CHECKS,
            jobs=[rollup_job, *archive_jobs, quality_job],
            resources={"postgres": PostgresResource(home=str(self.settings.home), server_url=self.settings.server_url,
                                                    database_prefix=self.settings.database_prefix),
                       "lake": ParquetLake(root=str(self.settings.lake_root))},
        )

    def run(self, job, first=FIRST, last=LAST):
        tags = {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
        if first == last:
            return self.defs.resolve_job_def(job).execute_in_process(
                instance=self.instance, partition_key=first, raise_on_error=False)
        return self.defs.resolve_job_def(job).execute_in_process(instance=self.instance, tags=tags, raise_on_error=False)

    def checks(self, first=FIRST, last=LAST):
        """{(asset, check): evaluation} of a quality_checks run over the days; every check must have run (a
        broken check has no evaluation; a failed blocking one fails its step, which is expected)."""
        job = self.defs.resolve_job_def("quality_checks")
        result = self.run("quality_checks", first, last)
        found = {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}
        assert set(found) == {(k.asset_key.to_user_string(), k.name) for k in job.asset_layer.asset_graph.asset_check_keys}
        return found


@pytest.fixture(scope="module")
def world(settings, tmp_path_factory):
    current = World(settings, tmp_path_factory.mktemp("quality"))
    ensure_source_databases(current.settings)
    run_migrations(current.settings, SOURCES)
    seed_sources(current.settings, PLAN)
    assert current.run("rollups").success
    yield current
    drop_source_databases(current.settings)
    shutil.rmtree(current.settings.lake_root, ignore_errors=True)


def _failing(evaluations):
    return {key: e.metadata["failing_count"].value for key, e in evaluations.items() if not e.passed}


def test_retention_compliance_reports_count_and_oldest_of_overdue_rows(world):
    entry = entries("forge", "main_webauthnregistrationchallenge")[0]
    with source_connection(world.settings, "forge") as conn:
        outcome = retention_compliance(conn, entry, datetime.now(timezone.utc))
        expected = conn.execute(
            "SELECT count(*), min(created) FROM main_webauthnregistrationchallenge WHERE created < %s",
            (datetime.fromisoformat(outcome.details["cutoff"]),)).fetchone()
    assert expected[0] > 0, "the seed leaves challenges past their day of retention"
    assert (outcome.passed, outcome.failing, outcome.details["oldest"]) == (False, expected[0], expected[1].isoformat())


def test_failed_blocking_check_stops_the_purge_in_its_run(world):
    day = PLAN.first_day.date().isoformat()
    predicate = "timestamp >= %s::date AND timestamp < %s::date + 1"
    with source_connection(world.settings, "goforge") as conn:
        before = conn.execute(f"SELECT count(*) FROM container_metrics WHERE {predicate}", (day, day)).fetchone()[0]
        conn.execute("UPDATE container_metrics SET memory_percent = 101 WHERE id = "
                     f"(SELECT id FROM container_metrics WHERE {predicate} ORDER BY id LIMIT 1)", (day, day))
        conn.commit()
        result = world.run("archive_goforge", day, day)
        after = conn.execute(f"SELECT count(*) FROM container_metrics WHERE {predicate}", (day, day)).fetchone()[0]
        conn.execute("UPDATE container_metrics SET memory_percent = 50 WHERE memory_percent = 101")
        conn.commit()
    assert before == after > 0, "nothing of the day was purged"
    failed = {(e.asset_key.to_user_string(), e.check_name) for e in result.get_asset_check_evaluations() if not e.passed}
    assert failed == {("goforge/container_metrics", "container_metrics_memory_percent_range")}
    assert ARCHIVED not in _materialized(result)
    assert ARCHIVED in _materialized(world.run("archive_goforge", day, day)), "once fixed, the day is archived"


ARCHIVED = "archive/goforge/container_metrics"


def _materialized(result):
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def test_clean_data_passes_every_check_after_every_overdue_day_is_archived(world):
    now = datetime.now(timezone.utc)
    for source in SOURCES:
        archive_source(world.settings, source, now)
    evaluations = world.checks()
    assert _failing(evaluations) == {}
    integrity = [e for (asset, check), e in evaluations.items() if check == "archive_integrity"]
    assert sum(e.metadata["files_checked"].value for e in integrity) > 0, "archived files were verified"


def test_archive_integrity_finds_a_missing_and_a_rewritten_file(world):
    import pyarrow.parquet as pq

    entry = entries("goforge", "container_metrics")[0]
    with source_connection(world.settings, "goforge") as conn:
        paths = [p for (p,) in conn.execute("SELECT path FROM forge_retention.archive_ledger WHERE entry = %s "
                                            "ORDER BY day LIMIT 2", (entry.key,))]
        assert len(paths) == 2
        first, second = (world.settings.lake_root / p for p in paths)
        saved = first.read_bytes(), second.read_bytes()
        first.unlink()
        pq.write_table(pq.read_table(second).slice(1), second)
        try:
            outcome = archive_integrity(conn, entry, world.settings.lake_root)
        finally:
            first.write_bytes(saved[0])
            second.write_bytes(saved[1])
        assert archive_integrity(conn, entry, world.settings.lake_root).passed
    assert (outcome.passed, outcome.failing) == (False, 2)
    assert {s.split(":")[0] for s in outcome.samples} == set(paths)


def test_dirty_data_fails_exactly_the_check_meant_for_each_violation(world):
    for source in SOURCES:
        with source_connection(world.settings, source) as conn:
            dirty.inject(conn, source)
            conn.commit()
    rollups = world.run("rollups")  # its own checks may fail now: a may_also_fail consequence
    assert len(_materialized(rollups)) == len(ROLLUP_ASSETS)
    failing = _failing(world.checks())
    expected = {(f"{v.source}/{RULES_BY_NAME[v.rule].table}", v.rule): v.rows for v in dirty.VIOLATIONS}
    assert {k: v for k, v in failing.items() if k in expected} == expected
    consequences = {tuple(c.rsplit(".", 1)) for v in dirty.VIOLATIONS for c in v.may_also_fail}
    assert set(failing) - set(expected) <= consequences


def test_gx_and_plain_sql_agree_on_dirty_data(world):
    """Same failing counts from both evaluators for every rule GX can take (whole-table rules included)."""
    window = Window.days(PLAN.first_day.date(), ANCHOR.date())
    for source in SOURCES:
        rules = [r for r in RULES if r.source == source and r.kind != "unique"]
        conninfo = source_conninfo(world.settings, source)
        by_gx = {o.check: (o.failing, o.broken) for o in evaluate(conninfo, rules, window, engine="gx")}
        by_sql = {o.check: (o.failing, o.broken) for o in evaluate(conninfo, rules, window, engine="sql")}
        assert by_gx == by_sql, source


def test_gx_counts_every_failing_row_exactly_and_samples_twenty(world):
    """Many failing rows, on both GX paths (a column expectation and an unexpected-rows query over an SQL
    expression): the count is exact and the samples stop at 20."""
    window = Window.days(PLAN.first_day.date(), ANCHOR.date())
    rules = [RULES_BY_NAME["container_metrics_memory_percent_range"],
             RULES_BY_NAME["container_metrics_counters_non_negative"]]
    conninfo = source_conninfo(world.settings, "goforge")
    flip = "UPDATE container_metrics SET memory_percent = -memory_percent, network_rx = -network_rx"  # exact twice
    with source_connection(world.settings, "goforge") as conn:
        conn.execute(flip)
        conn.commit()
        try:
            by_gx = evaluate(conninfo, rules, window, engine="gx")
            by_sql = evaluate(conninfo, rules, window, engine="sql")
        finally:
            conn.execute(flip)
            conn.commit()
    assert [o.failing for o in by_gx] == [o.failing for o in by_sql]
    assert all(o.failing > 20 and len(o.samples) == 20 and not o.passed for o in by_gx)
    assert all(s < 0 for o in by_gx for s in o.samples)


RULES_BY_NAME = {r.name: r for r in RULES}

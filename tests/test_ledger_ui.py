"""One truth: every archive, purge and restore, whichever path ran it, appears on its archive asset's partition
in a real Dagster instance stored in PostgreSQL; partitions start where the data starts; multi-day runs give
per-day partitions; the checks say what they mean; Dagster's own storage is pruned."""

import os
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance, materialize
from helpers import conn_to, history, ledger

from forge_assets.assets.archive import archive_key, build_archive_asset
from forge_assets.assets.ledger import reconcile, report_archived, report_to_dagster
from forge_assets.config import load_settings
from forge_assets.db import drop_source_databases
from forge_assets.instance import instance_config, storage_url
from forge_assets.jobs.housekeeping import prune_job, prune_runs
from forge_assets.quality.compliance import backlog_state, retention_compliance
from forge_assets.quality.integrity import archive_integrity
from forge_assets.resources.parquet_lake import ParquetLake
from forge_assets.resources.postgres import PostgresResource
from forge_assets.retention.backlog import archive_source
from forge_assets.retention.catalog import CATALOG, entries
from forge_assets.retention.engine import archive_day, overdue_days
from forge_assets.seed.common import SeedPlan

CLI = str(Path(sys.executable).with_name("forge-assets"))
RANGE = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")


@pytest.fixture(scope="module")
def target(settings, tmp_path_factory):
    """Scratch sources with 100 small days up to the helpers' anchor, and a lake."""
    made = history(settings, tmp_path_factory, sources=("goforge", "orchestry", "openorchestrator"))
    yield made
    drop_source_databases(made)


@pytest.fixture(scope="module")
def dagster_home(target, tmp_path_factory):
    """A DAGSTER_HOME whose instance lives in the scratch server's own `<prefix>dagster` database."""
    home = tmp_path_factory.mktemp("dagster_home")
    (home / "dagster.yaml").write_text(yaml.safe_dump(instance_config()))
    return home, storage_url(target)


@pytest.fixture
def instance(dagster_home, monkeypatch):
    home, url = dagster_home
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_PG_URL", url)
    with DagsterInstance.get() as opened:
        yield opened


def _resources(target):
    return {"postgres": PostgresResource(home=str(target.home), server_url=target.server_url,
                                         database_prefix=target.database_prefix),
            "lake": ParquetLake(root=str(target.lake_root))}


def _cli(target, home_url, *args):
    home, url = home_url
    env = {**os.environ, "FORGE_DB_PREFIX": target.database_prefix, "FORGE_LAKE_URI": str(target.lake_root),
           "DAGSTER_HOME": str(home), "DAGSTER_PG_URL": url}
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=600, env=env)


def _ledgered_partitions(target, entry) -> set[str]:
    return {day.isoformat() for day, path, rows, restored in ledger(target, entry) if restored is None}


def test_cli_archive_and_restore_report_runless_events(target, dagster_home, instance):
    """`forge-assets archive` materializes each archived day's partition with the run's metadata; `restore`
    records an observation on the day (and the rows are back)."""
    entry = entries("goforge", "deployment_logs")[0]
    with conn_to(target, "goforge") as conn:
        days = overdue_days(conn, entry, datetime.now(timezone.utc))[:3]
    done = _cli(target, dagster_home, "archive", "--source", "goforge", "--table", "deployment_logs",
                "--until", days[-1].isoformat())
    assert done.returncode == 0, done.stderr
    assert "reported 3 archived days to Dagster" in done.stdout
    key = archive_key(entry)
    assert instance.get_materialized_partitions(key) == {d.isoformat() for d in days} == _ledgered_partitions(
        target, entry)
    event = instance.get_latest_materialization_event(key).asset_materialization
    ledger_rows = {d.isoformat(): r for d, _, r, _ in ledger(target, entry)}
    assert event.metadata["rows"].value == ledger_rows[event.partition] > 0
    assert {"rows", "bytes", "files", "seconds", "rows_per_second", "partitions_dropped"} <= set(event.metadata)
    assert event.metadata["via"].value == "cli"

    restored = _cli(target, dagster_home, "restore", "--source", "goforge", "--table", "deployment_logs",
                    "--day", days[0].isoformat())
    assert restored.returncode == 0, restored.stderr
    (observation,) = instance.fetch_observations(key, limit=1).records
    assert observation.asset_observation.partition == days[0].isoformat()
    assert observation.asset_observation.metadata["restored_rows"].value == ledger_rows[days[0].isoformat()]


def test_unreported_archive_is_reported_once_with_the_ledger_totals(target, instance):
    """Three days archived, two reported (the process died before the third): reconciliation reports the third
    alone, with the ledger's rows."""
    entry = entries("goforge", "container_metrics")[0]
    key = archive_key(entry)
    now = datetime.now(timezone.utc)
    with conn_to(target, "goforge") as conn:
        days = overdue_days(conn, entry, now)[:3]
        results = [archive_day(conn, entry, d, target.lake_root, now) for d in days]
        assert report_archived(instance, entry, results[:2], "test") == 2
        assert reconcile(instance, conn, [entry]) == 1
        assert reconcile(instance, conn, [entry]) == 0
    event = instance.get_latest_materialization_event(key).asset_materialization
    assert event.partition == days[2].isoformat() and event.metadata["rows"].value == results[2].rows > 0
    assert instance.get_materialized_partitions(key) == _ledgered_partitions(target, entry)


def test_demo_flow_leaves_every_ledgered_day_a_materialized_partition(target, instance, dagster_home, monkeypatch):
    """What the demo does after its rollups (archive every overdue day of every table, report to Dagster), then
    a day archived by a process that died before reporting: the sensor's reconciliation shows it too."""
    home, url = dagster_home
    monkeypatch.setenv("FORGE_DB_PREFIX", target.database_prefix)
    now = datetime.now(timezone.utc)
    for source in ("goforge", "orchestry", "openorchestrator"):
        report_to_dagster(target, archive_source(target, source, now), "demo")
    for entry in (e for e in CATALOG if e.source in ("goforge", "orchestry", "openorchestrator")):
        ledgered = _ledgered_partitions(target, entry)
        assert ledgered <= instance.get_materialized_partitions(archive_key(entry)), entry.key
    assert sum(len(_ledgered_partitions(target, e)) for e in CATALOG if e.source == "orchestry") > 50

    # Dagster lost what it was told (or was never told): the sensor's reconciliation reports the ledger again
    entry = entries("orchestry", "metrics_instance")[0]
    key = archive_key(entry)
    instance.wipe_assets([key])
    with conn_to(target, "orchestry") as conn:
        assert reconcile(instance, conn, [entry]) == len(_ledgered_partitions(target, entry)) > 0
        assert reconcile(instance, conn, [entry]) == 0  # nothing reported twice
    assert instance.get_materialized_partitions(key) == _ledgered_partitions(target, entry)


def test_multi_day_run_materializes_each_day_with_its_own_metadata(settings, tmp_path_factory):
    """One run over a range of days: each day its own ledger rows and its own materialized partition whose
    rows are that day's."""
    made = history(settings, tmp_path_factory, sources=("forge",), days=20)
    try:
        entry = entries("forge", "main_eventlog")[0]
        with conn_to(made, "forge") as conn:
            days = overdue_days(conn, entry, datetime.now(timezone.utc))[2:9]
        asset = build_archive_asset(entry)
        with DagsterInstance.ephemeral() as instance:
            result = materialize([asset], resources=_resources(made), instance=instance,
                                 tags={RANGE[0]: days[0].isoformat(), RANGE[1]: days[-1].isoformat()})
            assert result.success
            events = result.get_asset_materialization_events()
        by_day = {e.materialization.partition: e.materialization.metadata["rows"].value for e in events}
        per_day = {}
        for day, _, rows, _ in ledger(made, entry):
            per_day[day.isoformat()] = per_day.get(day.isoformat(), 0) + rows
        assert by_day == per_day and len(by_day) == len(days) and len(set(by_day.values())) > 1
    finally:
        drop_source_databases(made)


def test_the_first_partition_archives_the_days_before_it(settings, tmp_path_factory):
    """Days older than the first partition are reachable: its run archives them too (each in its own
    transaction), and their rows show on the first partition."""
    first = date.fromisoformat(load_settings().start_date)
    anchor = datetime.combine(first + timedelta(days=4), datetime.min.time(), tzinfo=timezone.utc)
    made = history(settings, tmp_path_factory, sources=("forge",), days=10, anchor=anchor)
    try:
        entry = entries("forge", "main_eventlog")[0]
        asset = build_archive_asset(entry)
        with DagsterInstance.ephemeral() as instance:
            result = materialize([asset], partition_key=first.isoformat(), resources=_resources(made),
                                 instance=instance)
            (event,) = result.get_asset_materialization_events()
        days = {day for day, *_ in ledger(made, entry)}
        assert min(days) < first and max(days) == first
        assert event.materialization.metadata["rows"].value == sum(r for _, _, r, _ in ledger(made, entry))
        with conn_to(made, "forge") as conn:
            assert overdue_days(conn, entry, datetime.now(timezone.utc), first) == []
    finally:
        drop_source_databases(made)


def test_demo_starts_partitions_on_its_first_seeded_day(tmp_path, monkeypatch):
    from forge_assets.demo import _first_partition

    monkeypatch.delenv("FORGE_START_DATE", raising=False)
    monkeypatch.setenv("FORGE_HOME", str(tmp_path))
    plan = SeedPlan(days=100, scale=1, seed=1, anchor=datetime(2026, 11, 1, 12, tzinfo=timezone.utc))
    current = load_settings()
    _first_partition(current, plan, reseeded=True)
    assert load_settings({"FORGE_HOME": str(tmp_path)}).start_date == plan.first_day.date().isoformat() == "2026-07-25"
    assert os.environ["FORGE_START_DATE"] == "2026-07-25"
    (tmp_path / "start_date").write_text("someday")
    with pytest.raises(Exception, match="start_date must be a past date"):
        load_settings({"FORGE_HOME": str(tmp_path)})


def test_compliance_tells_draining_from_stuck(settings, tmp_path_factory):
    made = history(settings, tmp_path_factory, sources=("goforge",), days=30,
                   anchor=datetime.now(timezone.utc) - timedelta(days=5))
    try:
        entry = entries("goforge", "container_metrics")[0]  # keeps 7 days: about 27 days overdue, 2 within the grace
        now = datetime.now(timezone.utc)
        with conn_to(made, "goforge") as conn:
            stuck = retention_compliance(conn, entry, now)
            assert not stuck.passed and stuck.details["state"] == "stuck"
            assert stuck.details["backlog_days"] >= 15 and stuck.details["backlog_rows"] > stuck.failing > 0
            day = overdue_days(conn, entry, now)[0]
            assert stuck.details["backlog_oldest_day"] == day.isoformat()
            moved = archive_day(conn, entry, day, made.lake_root, now)
            draining = retention_compliance(conn, entry, now)
            assert draining.details["state"] == "draining"
            assert draining.details["archived_rows_last_24h"] == moved.rows
            assert draining.details["backlog_days"] == stuck.details["backlog_days"] - 1
            expected = round(draining.details["backlog_rows"] / moved.rows * 24, 1)
            assert draining.details["expected_hours_to_clear"] == expected
            integrity = archive_integrity(conn, entry, made.lake_root)
            assert integrity.passed and integrity.total == moved.rows > 1
    finally:
        drop_source_databases(made)
    assert [backlog_state(0, 0, 0), backlog_state(0, 5, 0), backlog_state(3, 5, 1), backlog_state(3, 5, 0)] == [
        "clear", "within grace", "draining", "stuck"]


def test_dagster_runs_and_event_logs_older_than_the_limit_are_pruned(instance):
    old = prune_job.execute_in_process(instance=instance, run_config={"ops": {"prune_dagster_runs": {
        "config": {"keep_days": 30}}}})
    assert old.success and instance.get_run_by_id(old.run_id) is not None
    assert instance.all_logs(old.run_id)
    assert prune_runs(instance, keep_days=30) == 0  # young runs stay
    later = datetime.now(timezone.utc) + timedelta(days=31)
    assert prune_runs(instance, keep_days=30, now=later) >= 1
    assert instance.get_run_by_id(old.run_id) is None and not instance.all_logs(old.run_id)

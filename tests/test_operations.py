"""Unattended operation on a real PostgreSQL: the Dagster instance stored in it, the retention sensor's ticks
against seeded data with the runs they request executed, the schedule's partitions, the failure sensor."""

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from conftest import ANCHOR
from dagster import (
    AssetKey,
    DagsterInstance,
    RunRequest,
    SensorResult,
    SkipReason,
    build_run_status_sensor_context,
    build_schedule_context,
    build_sensor_context,
)
from helpers import history

from forge_assets.assets.names import archive_key
from forge_assets.db import connect, drop_source_databases, source_conninfo
from forge_assets.definitions import build_definitions, defs
from forge_assets.instance import instance_config, storage_url
from forge_assets.operations import Operations
from forge_assets.resources.alerts import FailureAlerts
from forge_assets.resources.parquet_lake import ParquetLake
from forge_assets.resources.postgres import PostgresResource
from forge_assets.retention.catalog import CATALOG
from forge_assets.retention.engine import last_overdue_day, oldest_day, overdue_days
from forge_assets.rollups.registry import ROLLUPS
from forge_assets.sensors.failure_sensor import cleanup_failure_sensor
from forge_assets.sensors.retention_sensor import TableState, build_retention_sensor, plan_tick

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime.now(timezone.utc)


@pytest.fixture(scope="module")
def instance(settings, tmp_path_factory):
    """A Dagster instance whose runs, events and sensor state live in the test server's `dagster` database."""
    url = storage_url(settings)
    home = tmp_path_factory.mktemp("dagster_home")
    (home / "dagster.yaml").write_text(yaml.safe_dump(instance_config()))
    previous = os.environ.get("DAGSTER_PG_URL")
    os.environ["DAGSTER_PG_URL"] = url
    with DagsterInstance.from_config(str(home)) as instance:
        yield instance
        instance.wipe()
    if previous is None:
        del os.environ["DAGSTER_PG_URL"]


@pytest.fixture(scope="module")
def recent(settings, tmp_path_factory):
    """Scratch sources with 10 small days up to the suite's anchor: only the 1- and 7-day tables are overdue."""
    target = history(settings, tmp_path_factory, days=10, anchor=ANCHOR)
    yield target
    drop_source_databases(target)


def _resources(target):
    return {"postgres": PostgresResource(home=str(target.home), server_url=target.server_url,
                                         database_prefix=target.database_prefix),
            "lake": ParquetLake(root=str(target.lake_root)), "alerts": FailureAlerts()}


def _tick(sensor, instance, target, cursor):
    with build_sensor_context(instance=instance, cursor=cursor, resources=_resources(target)) as context:
        return sensor(context)


def _execute(instance, target, request: RunRequest):
    job = build_definitions(_resources(target)).resolve_job_def(request.job_name)
    if request.asset_check_keys is not None:
        job = job.get_subset(asset_selection=set(request.asset_selection),
                             asset_check_selection=set(request.asset_check_keys))
    tags = {**request.tags, **({"dagster/run_key": request.run_key} if request.run_key else {})}
    return job.execute_in_process(instance=instance, partition_key=request.partition_key,
                                  asset_selection=request.asset_selection, tags=tags,
                                  raise_on_error=False)


def test_instance_is_stored_in_postgresql_with_the_run_queue(instance):
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    queue = instance.get_concurrency_config().run_queue_config
    assert queue.tag_concurrency_limits == [
        {"key": "forge/table", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}]
    assert instance.run_retries_max_retries == 2


def test_production_instance_matches_local_limits(tmp_path):
    """deploy/dagster.yaml is the local instance, setting for setting (run queue, pools, retries, run monitoring,
    storage from the one variable DAGSTER_PG_URL, password included), and passes Dagster's config schema."""
    from dagster._core.instance.config import dagster_instance_config

    production = yaml.safe_load((ROOT / "deploy" / "dagster.yaml").read_text())
    local = instance_config()
    for section in ("run_coordinator", "concurrency", "run_retries", "retention", "run_monitoring", "storage"):
        assert production[section] == local[section], section
    (tmp_path / "dagster.yaml").write_text((ROOT / "deploy" / "dagster.yaml").read_text())
    config, _ = dagster_instance_config(str(tmp_path))
    assert config["storage"]["postgres"]["postgres_url"] == {"env": "DAGSTER_PG_URL"}
    assert config["run_monitoring"]["enabled"]


def test_rollup_schedule_requests_the_previous_utc_day():
    schedule = defs.resolve_schedule_def("rollups_daily")
    tick = datetime(2026, 11, 21, 0, 30, tzinfo=timezone.utc)
    with build_schedule_context(scheduled_execution_time=tick) as context:
        requests = list(schedule.evaluate_tick(context).run_requests)
    assert [r.partition_key for r in requests] == ["2026-11-20"]


def test_checks_schedule_runs_every_check_on_the_previous_day():
    schedule = defs.resolve_schedule_def("checks_daily")
    with build_schedule_context(scheduled_execution_time=datetime(2026, 11, 21, 2, tzinfo=timezone.utc)) as context:
        (request,) = schedule.evaluate_tick(context).run_requests
    assert request.partition_key is None  # the checks window defaults to the previous UTC day
    assert schedule.job_name == "quality_checks"


def test_retention_sensor_archives_every_overdue_day_and_nothing_younger(recent, instance):
    """Ticks until the sensor has nothing left to do, running what each tick requests: every run key is new,
    every archived day is past its keep_days and holds rows, rollups run before their tables' purge, and afterwards no
    table holds a day older than its keep_days while the 30- to 365-day tables were never touched."""
    sensor = build_retention_sensor(clock=lambda: NOW, ops=Operations(sensor_max_runs=6))
    cursor, seen, archived = None, [], []
    before, due = {}, set()
    for entry in CATALOG:
        with connect(source_conninfo(recent, entry.source)) as conn:
            before[entry.key] = oldest_day(conn, entry)
            if overdue_days(conn, entry, NOW):
                due.add(entry.key)
    for _ in range(12):
        result = _tick(sensor, instance, recent, cursor)
        if isinstance(result, SkipReason):
            break
        assert isinstance(result, SensorResult) and 0 < len(result.run_requests) <= 6
        cursor = result.cursor
        for request in result.run_requests:
            assert request.run_key not in seen
            seen.append(request.run_key)
            if request.job_name.startswith("archive_"):
                entry = next(e for e in CATALOG if request.run_key.startswith(f"{e.key}:"))
                day = datetime.fromisoformat(request.tags["dagster/asset_partition_range_end"]).date()
                assert day <= last_overdue_day(entry, NOW), request.run_key
                assert request.tags["forge/table"] == entry.key
                archived.append(entry.key)
            run = _execute(instance, recent, request)
            assert run.success, request.run_key
            if request.job_name.startswith("archive_"):  # only ranges that hold rows are requested
                events = run.get_asset_materialization_events()
                assert events and sum(e.materialization.metadata["rows"].value for e in events) > 0, request.run_key
    else:
        pytest.fail("the sensor still requested runs after 12 ticks")

    assert "nothing overdue" in result.skip_message
    assert {key.split(":")[0] for key in seen if key.startswith("rollups.")} == {"rollups.goforge", "rollups.orchestry"}
    for entry in CATALOG:
        with connect(source_conninfo(recent, entry.source)) as conn:
            oldest = oldest_day(conn, entry)
        if oldest is not None:
            assert oldest > last_overdue_day(entry, NOW), entry.key
        if before[entry.key] is not None and before[entry.key] > last_overdue_day(entry, NOW):
            assert entry.key not in archived and oldest == before[entry.key], entry.key
    # exactly the tables holding overdue rows were archived (which they are depends on the hour the suite runs:
    # the 1-day sessions table has a handful of rows a day at this scale); the 7-day tables always are
    assert set(archived) == due and {"goforge.container_metrics", "orchestry.metrics_instance"} <= due
    stored = instance.get_runs()
    assert len(stored) >= len(seen) and all(r.is_success for r in stored if r.tags.get("dagster/run_key") in seen)


def test_retention_sensor_waits_while_tables_that_go_first_hold_the_day():
    """main_job is archived only after the tables that reference it have left the day (`after` entries)."""
    job = next(e for e in CATALOG if e.key == "forge.main_job")
    summaries = next(e for e in CATALOG if e.key == "forge.main_jobhostsummary")
    old = (NOW - timedelta(days=200)).date()
    days = tuple(old + timedelta(days=i) for i in range(10))
    states = [TableState(job, old, days), TableState(summaries, days[3], days[3:])]
    materialized = {AssetKey(spec.name): {d.isoformat() for d in days} for spec in ROLLUPS}
    plan = plan_tick(states, materialized, {}, NOW, ops=Operations(sensor_max_runs=50))
    (request,) = [r for r in plan.requests if r.tags.get("forge/table") == job.key]
    assert (request.tags["dagster/asset_partition_range_start"], request.tags["dagster/asset_partition_range_end"]) == (
        days[0].isoformat(), days[2].isoformat())


def test_failure_sensor_records_the_failed_cleanup_run(recent, instance, tmp_path):
    """A refused purge (a day younger than keep_days) fails its run; the sensor logs it without secrets,
    records it on the asset and hands it to the alert command."""
    young = (NOW - timedelta(days=2)).date().isoformat()
    entry = next(e for e in CATALOG if e.key == "goforge.audit_logs")
    request = RunRequest(job_name="archive_goforge", partition_key=young,
                         asset_selection=[archive_key(entry)],
                         tags={"forge/table": entry.key})
    run = _execute(instance, recent, request)
    assert not run.success
    failed_run = instance.get_run_by_id(run.run_id)
    failure_event = next(e for e in instance.all_logs(run.run_id) if e.dagster_event and
                         e.dagster_event.event_type_value == "PIPELINE_FAILURE").dagster_event
    received = tmp_path / "alert.json"
    alerts = FailureAlerts(command=f"sh -c 'cat > {received}'")
    context = build_run_status_sensor_context(
        sensor_name="cleanup_failure_sensor", dagster_instance=instance, dagster_run=failed_run,
        dagster_event=failure_event, resources={"alerts": alerts}).for_run_failure()
    cleanup_failure_sensor(context)
    alert = json.loads(received.read_text())
    assert alert["run_id"] == run.run_id and alert["partition"] == young
    assert "is not overdue" in " ".join(alert["failed_steps"].values())
    observed = instance.fetch_observations(archive_key(entry), limit=1).records
    assert observed and observed[0].asset_observation.partition == young

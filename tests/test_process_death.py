"""Processes of the unattended path that die lose nothing. Under `forge-assets dev` (daemon, sensor, queued
runs): an archive run's worker killed with SIGKILL while it waits for its day is marked FAILURE (it does not
stay STARTED), and a later sensor run archives that day; a killed `dagster-daemon` stops `forge-assets dev`
with a line naming it (no half-alive UI), and a restarted `dev` drains the rest. Afterwards every row of every
day is in PostgreSQL or in a ledgered file, exactly once."""

import os
import signal
import subprocess
import time
from collections import Counter
from datetime import timedelta

import pytest
import yaml
from conftest import ANCHOR
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter
from helpers import conn_to, day_keys_in_ledgered_files, day_keys_in_postgres, free_port, history, start_dev, stop_dev

from forge_assets.assets.names import RUN_TAG_TABLE
from forge_assets.db import drop_source_databases
from forge_assets.instance import instance_config, storage_url
from forge_assets.retention.catalog import entries
from forge_assets.retention.engine import _lock_key

ENTRY = entries("goforge", "audit_logs")[0]  # no rollup reads it: the sensor archives it straight away
KEEP_DAYS = 2
SEED_DAYS = 6


def _wait(what: str, predicate, timeout: float = 240, log=None, instance=None):
    deadline = time.monotonic() + timeout
    while True:
        found = predicate()
        if found:
            return found
        if time.monotonic() > deadline:
            runs = [(r.job_name, r.status.value, r.tags.get(RUN_TAG_TABLE)) for r in instance.get_runs()] if instance else []
            pytest.fail(f"timed out waiting for {what}; runs {runs}" + (f"; dev log:\n{log.read_text()[-3000:]}" if log else ""))
        time.sleep(2)


@pytest.fixture(scope="module")
def world(settings, tmp_path_factory):
    """Scratch GoForge history of six days; a policy keeping audit logs two days; Dagster storage of its own."""
    target = history(settings, tmp_path_factory, sources=("goforge",), days=SEED_DAYS, anchor=ANCHOR)
    home = tmp_path_factory.mktemp("death_dagster_home")
    (home / "dagster.yaml").write_text(yaml.safe_dump(instance_config()))
    policy = home / "policy.yaml"
    policy.write_text(f"goforge:\n  audit_logs: {{keep_days: {KEEP_DAYS}}}\n")
    env = {**os.environ, "DAGSTER_HOME": str(home), "DAGSTER_PG_URL": storage_url(target),
           "FORGE_DB_PREFIX": target.database_prefix, "FORGE_LAKE_URI": str(target.lake_root),
           "FORGE_SOURCES": "goforge", "FORGE_POLICY": str(policy),
           "FORGE_START_DATE": (ANCHOR - timedelta(days=SEED_DAYS)).date().isoformat(),
           "FORGE_SENSOR_INTERVAL_SECONDS": "10", "FORGE_RETRY_BACKOFF": "10s"}
    yield target, env
    drop_source_databases(target)


def _keys(found: Counter) -> Counter:
    """Keys as text (PostgreSQL gives uuid.UUID, the Parquet files the uuid's text)."""
    return Counter({tuple(map(str, key)): n for key, n in found.items()})


def _days(conn) -> list:
    return [d for (d,) in conn.execute(
        "SELECT DISTINCT (created_at AT TIME ZONE 'UTC')::date FROM audit_logs ORDER BY 1").fetchall()]


def _runs(instance, *statuses):
    return instance.get_runs(RunsFilter(tags={RUN_TAG_TABLE: ENTRY.key}, statuses=list(statuses)))


def _worker_pid(instance, run_id: str) -> int | None:
    """The process that executes the run (the in-process executor runs its steps there)."""
    for record in instance.get_records_for_run(run_id, of_type=DagsterEventType.STEP_START).records:
        return record.event_log_entry.dagster_event.pid
    return None


def _daemon_pid(group: int) -> int | None:
    listing = subprocess.run(["ps", "-o", "pid=,args=", "-g", str(group)], capture_output=True, text=True).stdout
    return next((int(line.split()[0]) for line in listing.splitlines() if "dagster._daemon" in line), None)


def test_a_killed_run_and_a_killed_daemon_lose_nothing(world, tmp_path, monkeypatch):
    target, env = world
    with conn_to(target, "goforge") as conn:
        days = _days(conn)
        before = {day: _keys(day_keys_in_postgres(conn, ENTRY, day)) for day in days}
        oldest = days[0]
        due = [d for d in days if d < (ANCHOR - timedelta(days=KEEP_DAYS)).date()]
    assert oldest in due and sum(len(before[d]) for d in due) > 0
    holder = conn_to(target, "goforge", autocommit=True)  # the engine waits for its (entry, day) lock
    lock = _lock_key(ENTRY, oldest)
    holder.execute("SELECT pg_advisory_lock(hashtext(%s), %s)", lock)
    for key in ("DAGSTER_HOME", "DAGSTER_PG_URL"):  # DagsterInstance.get() below: the instance `dev` uses
        monkeypatch.setenv(key, env[key])
    log = tmp_path / "dev.log"
    process = start_dev(env, free_port(), log)
    try:
        with DagsterInstance.get() as instance:
            # 1. The sensor's run for the oldest day blocks on the lock; its worker is killed.
            _wait("the archive run to wait for its day", lambda: _runs(instance, DagsterRunStatus.STARTED) and
                  holder.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
                  .fetchone()[0], log=log, instance=instance)
            (run,) = _runs(instance, DagsterRunStatus.STARTED)
            pid = _wait("the run worker's pid", lambda: _worker_pid(instance, run.run_id), log=log, instance=instance)
            os.kill(pid, signal.SIGKILL)
            failed = _wait("the killed run to be marked failed", lambda: (
                r := instance.get_run_by_id(run.run_id)).status == DagsterRunStatus.FAILURE and r, log=log, instance=instance)
            assert failed.status == DagsterRunStatus.FAILURE
            holder.execute("SELECT pg_advisory_unlock(hashtext(%s), %s)", lock)

            # 2. The daemon dies: `forge-assets dev` stops and says which process went away.
            daemon = _wait("the daemon process", lambda: _daemon_pid(process.pid), log=log, instance=instance)
            os.kill(daemon, signal.SIGKILL)
            _wait("forge-assets dev to exit", lambda: process.poll() is not None, timeout=120, log=log, instance=instance)
            assert "dagster-daemon process shut down unexpectedly" in log.read_text()
            stop_dev(process, signal.SIGTERM, timeout=60)  # whatever it started is gone too (or killed now)

            # 3. Started again, the sensor retries the failed day and drains the rest.
            process = start_dev(env, free_port(), log)

            def drained():
                with conn_to(target, "goforge") as conn:
                    return all(not day_keys_in_postgres(conn, ENTRY, day) for day in due)

            _wait("every due day to be archived", drained, timeout=420, log=log, instance=instance)
            _wait("the archiving run to succeed", lambda: _runs(instance, DagsterRunStatus.SUCCESS), log=log,
                  instance=instance)
            assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.FAILURE
    finally:
        stop_dev(process, signal.SIGTERM)
        holder.close()
    with conn_to(target, "goforge") as conn:
        for day in days:
            where = _keys(day_keys_in_postgres(conn, ENTRY, day)) + _keys(
                day_keys_in_ledgered_files(conn, ENTRY, day, target.lake_root))
            assert where == before[day], day  # every row once: none lost, none twice
        assert sum(sum(before[d].values()) for d in due) == conn.execute(
            "SELECT coalesce(sum(row_count), 0) FROM forge_retention.archive_ledger WHERE entry = %s AND "
            "restored_at IS NULL", (ENTRY.key,)).fetchone()[0]

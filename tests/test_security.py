"""Least privilege and secrets: rollups as forge_reader, the archive as forge_retention, a purge as
forge_reader refused before anything is written; no password in logs, events or errors; no sensitive
column in Parquet."""

import os
import subprocess
import sys
import uuid
from collections import Counter
from dataclasses import replace
from pathlib import Path
from urllib.parse import quote

import psycopg
import pyarrow.parquet as pq
import pytest
from dagster import AssetKey, AssetSelection, DagsterInstance, EnvVar, materialize
from dagster._serdes import serialize_value
from helpers import NOW, conn_to, content, day_keys_in_ledgered_files, day_keys_in_postgres, first_overdue, history

from forge_assets.assets.archive import build_archive_asset
from forge_assets.assets.checks import QUALITY_CHECKS
from forge_assets.assets.rollups import ROLLUP_ASSETS
from forge_assets.assets.sources import SOURCE_TABLES
from forge_assets.db import drop_source_databases, ensure_source_databases, source_conninfo
from forge_assets.migrate import migrate, run_migrations
from forge_assets.resources.parquet_lake import ParquetLake
from forge_assets.resources.postgres import PostgresResource
from forge_assets.retention.catalog import SENSITIVE, entries
from forge_assets.retention.engine import archive_day
from forge_assets.retention.preflight import PreflightError
from forge_assets.roles import apply_grants

SOURCES = ("orchestry", "pulse")
EVENTS = entries("orchestry", "events")[0]
TELEMETRY = entries("pulse", "telemetry")[0]
PASSWORD = f"pw-{uuid.uuid4().hex}"  # the embedded server trusts local connections: it is carried, not checked


@pytest.fixture(scope="module")
def hist(settings, tmp_path_factory):
    target = history(settings, tmp_path_factory, sources=SOURCES, days=45)
    yield target
    drop_source_databases(target)


@pytest.fixture(scope="module")
def logins(hist):
    """Login roles in forge_reader and in forge_retention, with a password; dropped afterwards."""
    names = {group: f"fa_{group.split('_')[1]}_{uuid.uuid4().hex[:6]}" for group in ("forge_reader", "forge_retention")}
    with conn_to(hist, "orchestry", autocommit=True) as conn:
        for group, login in names.items():
            conn.execute(f"CREATE ROLE {login} LOGIN PASSWORD '{PASSWORD}' IN ROLE {group}")
    yield names
    with conn_to(hist, "orchestry", autocommit=True) as conn:
        for login in names.values():
            conn.execute(f"DROP ROLE {login}")


def url_as(target, source, login) -> str:
    """`postgresql://login:password@/db?host=…`: the kind of URL a deployment puts in FORGE_<SOURCE>_URL."""
    params = psycopg.conninfo.conninfo_to_dict(source_conninfo(target, source))
    return f"postgresql://{login}:{PASSWORD}@/{params['dbname']}?host={quote(params['host'], safe='')}"


def connect_as(target, source, login) -> psycopg.Connection:
    return psycopg.connect(url_as(target, source, login))


def test_roles_migration_is_idempotent_when_the_roles_exist(scratch_settings, connect):
    """Roles are cluster-wide: a new database's migration finds them and still grants on its own schema."""
    with connect("orchestry", scratch_settings, autocommit=True) as conn:
        applied = [m.label for m in migrate(conn, ["orchestry", "forge_retention"])]
        assert "forge_retention/002_roles.sql" in applied
        assert apply_grants(conn, "orchestry") == apply_grants(conn, "orchestry") > 0
        assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname IN ('forge_reader', 'forge_retention') "
                            "AND NOT rolcanlogin").fetchone()[0] == 2
        assert conn.execute("SELECT has_table_privilege('forge_retention', 'forge_retention.archive_ledger', "
                            "'INSERT')").fetchone()[0]


def test_forge_reader_reads_but_never_secrets_nor_deletes(hist, logins):
    with connect_as(hist, "pulse", logins["forge_reader"]) as conn:
        assert conn.execute("SELECT count(device_id) FROM device_registry").fetchone()[0] > 0
        conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
            conn.execute("SELECT api_token_hash FROM device_registry")
        conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
            conn.execute("DELETE FROM fleet_alert")


# Everything forge_reader runs in Dagster: the rollups of these sources, and the checks of those rollups
# and of the sources' tables.
READER_ASSETS = [a for a in ROLLUP_ASSETS if a.key in {
    AssetKey("app_metrics_hourly"), AssetKey("app_events_hourly"), AssetKey("device_telemetry_hourly"),
    AssetKey("fleet_alerts_daily")}]
READER_TABLES = [spec for spec in SOURCE_TABLES if spec.key.path[0] in SOURCES]
_CHECKED = {a.key for a in READER_ASSETS} | {spec.key for spec in READER_TABLES}
READER_CHECKS = [c for c in QUALITY_CHECKS if {spec.asset_key for spec in c.check_specs} <= _CHECKED]


def test_rollups_and_checks_run_as_forge_reader(hist, logins, monkeypatch, tmp_path):
    for source in SOURCES:
        monkeypatch.setenv(f"FORGE_{source.upper()}_URL", url_as(hist, source, logins["forge_reader"]))
    resources = {"postgres": PostgresResource(home=str(hist.home), reader_urls={
        "orchestry": EnvVar("FORGE_ORCHESTRY_URL"), "pulse": EnvVar("FORGE_PULSE_URL")}),
                 "lake": ParquetLake(root=str(tmp_path))}
    day = first_overdue(hist, EVENTS).isoformat()
    result = materialize([*READER_TABLES, *READER_ASSETS, *READER_CHECKS], partition_key=day, resources=resources,
                         instance=DagsterInstance.ephemeral(),
                         selection=AssetSelection.assets(*READER_ASSETS) | AssetSelection.checks_for_assets(*_CHECKED))
    assert result.success
    assert len(list(tmp_path.glob(f"rollups/*/day={day}/part-0.parquet"))) == len(READER_ASSETS)
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == sum(len(c.check_specs) for c in READER_CHECKS) > len(READER_ASSETS) * 2
    assert all(e.passed for e in evaluations), [e.check_name for e in evaluations if not e.passed]


def test_archive_runs_as_forge_retention(hist, logins):
    day = first_overdue(hist, EVENTS, 1)
    with conn_to(hist, "orchestry") as admin:
        before = content(admin, EVENTS)
    with connect_as(hist, "orchestry", logins["forge_retention"]) as conn:
        result = archive_day(conn, EVENTS, day, hist.lake_root, NOW)
    assert result.rows > 0
    with conn_to(hist, "orchestry") as admin:
        assert content(admin, EVENTS)[0] == before[0] - result.rows
        assert sum(day_keys_in_ledgered_files(admin, EVENTS, day, hist.lake_root).values()) == result.rows


def test_purge_as_forge_reader_fails_clearly_before_anything_is_written(hist, logins, tmp_path):
    day = first_overdue(hist, EVENTS, 2)
    with conn_to(hist, "orchestry") as admin:
        before = content(admin, EVENTS)
    with connect_as(hist, "orchestry", logins["forge_reader"]) as conn:
        with pytest.raises(PreflightError, match=f"role {logins['forge_reader']} lacks DELETE on events; "
                                                 "INSERT on forge_retention.archive_ledger"):
            archive_day(conn, EVENTS, day, tmp_path, NOW)
    cli = str(Path(sys.executable).with_name("forge-assets"))
    env = {**os.environ, "FORGE_ORCHESTRY_URL": url_as(hist, "orchestry", logins["forge_reader"]),
           "FORGE_LAKE_URI": str(tmp_path), "FORGE_PURGE": "orchestry"}
    run = subprocess.run([cli, "archive", "--source", "orchestry", "--table", "events", "--day", str(day)],
                         capture_output=True, text=True, timeout=120, env=env)
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2 and len(lines) == 1 and "lacks DELETE on events" in lines[0], run.stderr
    assert PASSWORD not in run.stdout + run.stderr
    assert not any(tmp_path.rglob("*")), "nothing was written to the lake"
    with conn_to(hist, "orchestry") as admin:
        assert content(admin, EVENTS) == before


def test_drop_partition_without_ownership_falls_back_to_row_by_row(hist, logins):
    """A login that does not own the partitions archives their rows row by row (DELETE of exactly the archived
    rows), keeps the partitions and says so; once it owns them, a day's partition is dropped whole."""
    day, later = first_overdue(hist, TELEMETRY), first_overdue(hist, TELEMETRY, 1)
    partition = f"telemetry_p{day:%Y%m%d}"
    with conn_to(hist, "pulse") as admin:
        before = content(admin, TELEMETRY)
        in_partition = admin.execute(f"SELECT count(*) FROM {partition}").fetchone()[0]
    with connect_as(hist, "pulse", logins["forge_retention"]) as conn:
        result = archive_day(conn, TELEMETRY, day, hist.lake_root, NOW)
    assert result.rows >= in_partition > 0 and result.partitions_dropped == []
    assert result.fallback.startswith("not owner of telemetry_p") and "row by row" in result.fallback
    with conn_to(hist, "pulse") as admin:
        assert admin.execute(f"SELECT count(*) FROM {partition}").fetchone()[0] == 0, "emptied, kept"
        assert content(admin, TELEMETRY)[0] == before[0] - result.rows
        assert sum(day_keys_in_ledgered_files(admin, TELEMETRY, day, hist.lake_root).values()) == result.rows
        assert day_keys_in_postgres(admin, TELEMETRY, day) == Counter()

    with conn_to(hist, "pulse", autocommit=True) as admin:
        for (table,) in admin.execute("SELECT 'telemetry' UNION ALL SELECT inhrelid::regclass::text "
                                      "FROM pg_inherits WHERE inhparent = 'telemetry'::regclass").fetchall():
            admin.execute(f"ALTER TABLE {table} OWNER TO forge_retention")
    with connect_as(hist, "pulse", logins["forge_retention"]) as conn:
        result = archive_day(conn, TELEMETRY, later, hist.lake_root, NOW)
    assert result.rows > 0 and result.partitions_dropped == [f"telemetry_p{later:%Y%m%d}"] and result.fallback is None


def test_password_never_in_logs_events_or_errors(hist, logins, monkeypatch, capfd, caplog, tmp_path):
    """A rollup that succeeds, an archive refused for privileges and a source that cannot be reached, all with
    a password in their URL: it is in no event record, run record, log line or output."""
    monkeypatch.setenv("FORGE_ORCHESTRY_URL", url_as(hist, "orchestry", logins["forge_reader"]))
    missing = replace(hist, database_prefix=f"{hist.database_prefix}missing_")
    monkeypatch.setenv("FORGE_PULSE_URL", url_as(missing, "pulse", logins["forge_reader"]))
    resources = {"postgres": PostgresResource(home=str(hist.home), reader_urls={
        "orchestry": EnvVar("FORGE_ORCHESTRY_URL"), "pulse": EnvVar("FORGE_PULSE_URL")}, connect_timeout_seconds=3),
                 "lake": ParquetLake(root=str(tmp_path))}
    day = first_overdue(hist, EVENTS).isoformat()
    by_key = {a.key: a for a in ROLLUP_ASSETS}
    with DagsterInstance.ephemeral() as instance:
        runs = [
            materialize([by_key[AssetKey("app_events_hourly")]], partition_key=day, resources=resources,
                        instance=instance),
            materialize([build_archive_asset(EVENTS)], partition_key=day, resources=resources, instance=instance,
                        raise_on_error=False),
            materialize([by_key[AssetKey("fleet_alerts_daily")]], partition_key=day, resources=resources,
                        instance=instance, raise_on_error=False),
        ]
        assert [r.success for r in runs] == [True, False, False]
        records = [serialize_value(instance.all_logs(r.run_id)) for r in runs]
        records += [serialize_value(instance.get_run_by_id(r.run_id)) for r in runs]
    text = "\n".join(records)
    assert "lacks DELETE on events" in text and "no connection to source pulse" in text
    captured = capfd.readouterr()
    for where, value in (("event records", text), ("stdout", captured.out), ("stderr", captured.err),
                         ("logs", caplog.text)):
        assert PASSWORD not in value, f"the password is in the {where}"


def test_sensitive_columns_never_reach_parquet(settings, tmp_path_factory):
    """Event-log rows whose headers hold a token: every archived file's schema lacks every sensitive column
    of its table, and no value in any file holds the token."""
    target = replace(settings, database_prefix=f"{settings.database_prefix}s{uuid.uuid4().hex[:6]}_",
                     lake_root=tmp_path_factory.mktemp("lake"))
    ensure_source_databases(target, ("forge",))
    try:
        run_migrations(target, ("forge",))
        entry = entries("forge", "main_eventlog")[0]
        token = f"Bearer {uuid.uuid4().hex}"
        day = (NOW.date().replace(day=1)).replace(month=1)
        with conn_to(target, "forge") as conn:
            conn.execute("INSERT INTO main_eventlog (created, modified, headers, status) SELECT "
                         "%s::date + g * interval '1 hour', now(), jsonb_build_object('Authorization', %s::text), "
                         "'ok' FROM generate_series(0, 9) g", (day, token))
            conn.commit()
            assert archive_day(conn, entry, day, target.lake_root, NOW).rows == 10
        files = list((target.lake_root / "archive").rglob("*.parquet"))
        assert files
        for path in files:
            source, name = path.parts[-4], path.parts[-3]
            table = next(e.table for e in entries(source) if e.entry_name == name)
            assert not set(SENSITIVE.get((source, table), ())) & set(pq.read_schema(path).names), path
            assert token not in str(pq.read_table(path).to_pylist()), path
    finally:
        drop_source_databases(target)

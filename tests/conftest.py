"""Test session against a real PostgreSQL: the embedded server in a temporary FORGE_HOME, or the server named
by FORGE_TEST_PG_URL (its databases get a unique prefix and are dropped afterwards)."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

_HOME = Path(tempfile.mkdtemp(prefix="forge-test-"))


def pytest_configure(config):
    """Point every FORGE_* setting at throwaway places before forge_assets is imported."""
    for key in [k for k in os.environ if k.startswith("FORGE_") or k in ("DAGSTER_HOME", "DAGSTER_PG_URL")]:
        if key != "FORGE_TEST_PG_URL":
            del os.environ[key]
    os.environ["FORGE_HOME"] = str(_HOME)
    if os.environ.get("FORGE_TEST_PG_URL"):
        os.environ["FORGE_PG_URL"] = os.environ["FORGE_TEST_PG_URL"]
        os.environ["FORGE_DB_PREFIX"] = f"fa_test_{uuid.uuid4().hex[:8]}_"
        os.environ["FORGE_PURGE"] = "all"  # a test server is not production: purging needs no opt-in here
        os.environ["DAGSTER_PG_URL"] = _test_dagster_database(os.environ["FORGE_TEST_PG_URL"],
                                                              f"{os.environ['FORGE_DB_PREFIX']}dagster")


def _test_dagster_database(server: str, name: str) -> str:
    """A Dagster storage database on the test server (forge_assets itself creates none on a server not its own)."""
    from forge_assets.conninfo import normalized, sqlalchemy_url

    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return sqlalchemy_url(normalized(server, dbname=name), driver="psycopg2")


def pytest_unconfigure(config):
    from forge_assets.config import load_settings
    from forge_assets.db import drop_source_databases
    from forge_assets.embedded import stop_embedded_server

    settings = load_settings()
    if settings.server_url:
        drop_source_databases(settings)
        with psycopg.connect(settings.server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(f"{settings.database_prefix}dagster")))
    else:
        stop_embedded_server(settings.pgdata)
    shutil.rmtree(_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def settings():
    """Settings of the test session, with every source database migrated."""
    from forge_assets.config import SOURCES, load_settings
    from forge_assets.migrate import run_migrations

    current = load_settings()
    run_migrations(current, SOURCES)
    return current


# A fixed end of history: reruns of the suite see the same data.
ANCHOR = (datetime.now(timezone.utc) - timedelta(hours=3)).replace(minute=17, second=0, microsecond=0)
SEED_DAYS = 8


@pytest.fixture(scope="session")
def seeded(settings):
    """The session's source databases seeded with a small, deterministic history (clean data)."""
    from forge_assets.seed.common import SeedPlan
    from forge_assets.seed.load import seed_sources

    plan = SeedPlan(days=SEED_DAYS, scale=0.5, seed=7, anchor=ANCHOR)
    reports = seed_sources(settings, plan, reset=True)
    return plan, {r.source: r.counts for r in reports}


@pytest.fixture
def scratch_settings(settings):
    """Settings whose source databases are new, empty and dropped after the test."""
    from forge_assets.db import drop_source_databases, ensure_source_databases

    scratch = replace(settings, database_prefix=f"{settings.database_prefix}s{uuid.uuid4().hex[:6]}_")
    ensure_source_databases(scratch)
    yield scratch
    drop_source_databases(scratch)


@pytest.fixture
def connect(settings):
    """Open a connection to a source database of the session (closed after the test)."""
    from forge_assets.db import source_conninfo

    opened = []

    def _connect(source: str, target=None, **kwargs) -> psycopg.Connection:
        conn = psycopg.connect(source_conninfo(target or settings, source), **kwargs)
        opened.append(conn)
        return conn

    yield _connect
    for conn in opened:
        conn.close()


def table_checksum(conn: psycopg.Connection, table: str) -> tuple[int, str]:
    """Row count and an order-independent digest of every row of `table`."""
    query = sql.SQL("SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {} t")
    return conn.execute(query.format(sql.Identifier(table))).fetchone()

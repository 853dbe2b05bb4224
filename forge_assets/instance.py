"""The Dagster instance that `forge-assets dev` and `demo` use: storage in PostgreSQL, queued runs with limits.

Runs, event logs and schedule/sensor state live in a `dagster` database on the shared server (the embedded one
by default, so dagster-postgres is what runs locally too), or wherever DAGSTER_PG_URL points. The run queue and
concurrency limits here are the same as in `deploy/dagster.yaml`, the production template (a test keeps the two
in step).
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from psycopg import sql

from forge_assets.assets.names import RUN_TAG_TABLE
from forge_assets.config import ConfigError, Settings
from forge_assets.conninfo import normalized, sqlalchemy_url
from forge_assets.db import connect, server_conninfo
from forge_assets.effective import effective_operations

# One archive run per table at a time (runs are tagged with their table), a few runs at once on a small box.
RUN_QUEUE = {
    "max_concurrent_runs": 4,
    "tag_concurrency_limits": [{"key": RUN_TAG_TABLE, "value": {"applyLimitPerUniqueValue": True}, "limit": 1}],
}
# Every pool (`<source>_purge`, `<source>_postgres`) admits one step at a time: one purge per source database.
POOLS = {"default_limit": 1}
RUN_RETRIES = {"enabled": True, "max_retries": 2}
# Sensor and schedule ticks, purged by the daemon (runs and event logs: the prune_dagster_storage job).
TICK_RETENTION = {"schedule": {"purge_after_days": 30},
                  "sensor": {"purge_after_days": {"skipped": 1, "failure": 30, "success": 30}}}
# A run whose worker died (kill -9, a lost pod) is marked failed instead of staying STARTED: by its code server
# when only the worker died, by the runtime cap when the code server went with it (the default run launcher cannot
# probe a worker), so that no dead run holds its table's run slot for long. A killed run's worker never gives
# back its concurrency pool slot (one per source): without `free_slots_after_run_end_seconds` every later archive
# run of that source would stay QUEUED for ever (tests/test_process_death.py).
RUN_MONITORING = {"enabled": True, "start_timeout_seconds": 300, "cancel_timeout_seconds": 300,
                  "max_runtime_seconds": 6 * 3600, "free_slots_after_run_end_seconds": 30,
                  "max_resume_run_attempts": 0}


def instance_config(storage_env: str = "DAGSTER_PG_URL") -> dict:
    """The dagster.yaml content: PostgreSQL storage from `storage_env`, QueuedRunCoordinator, pools, retries."""
    return {
        "storage": {"postgres": {"postgres_url": {"env": storage_env}}},
        "run_coordinator": {"module": "dagster.core.run_coordinator", "class": "QueuedRunCoordinator"},
        "concurrency": {"runs": {**RUN_QUEUE, "max_concurrent_runs": effective_operations().max_concurrent_runs},
                        "pools": POOLS},
        "run_retries": RUN_RETRIES,
        "retention": TICK_RETENTION,
        "run_monitoring": RUN_MONITORING,
        "telemetry": {"enabled": False},
    }


def storage_url(settings: Settings) -> str:
    """DAGSTER_PG_URL, else the `dagster` database of the embedded server, created when missing. forge_assets
    creates no database on a server of the operator's (FORGE_PG_URL): there DAGSTER_PG_URL is required."""
    if os.environ.get("DAGSTER_PG_URL"):
        return os.environ["DAGSTER_PG_URL"]
    if settings.server_url is not None or not settings.embedded:
        raise ConfigError("DAGSTER_PG_URL must name Dagster's storage database (postgresql+psycopg2://user:password@"
                          "host:5432/dagster): forge-assets creates no database on a server it does not run")
    name = f"{settings.database_prefix}dagster"
    server = server_conninfo(settings)
    with connect(server, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return sqlalchemy_url(normalized(server, dbname=name), driver="psycopg2")


def dagster_environment(settings: Settings) -> dict[str, str]:
    """The process environment for Dagster: DAGSTER_HOME under FORGE_HOME with this module's dagster.yaml and
    DAGSTER_PG_URL naming its storage. A DAGSTER_HOME set by the user keeps its own dagster.yaml."""
    own_home = not os.environ.get("DAGSTER_HOME")
    home = settings.dagster_home if own_home else Path(os.environ["DAGSTER_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if own_home or not config.exists():
        header = "# Written by forge-assets (forge_assets/instance.py); rewritten by every `forge-assets dev`.\n"
        config.write_text(header + yaml.safe_dump(instance_config(), sort_keys=False))
    return {**os.environ, "DAGSTER_HOME": str(home), "FORGE_HOME": str(settings.home),
            "DAGSTER_PG_URL": storage_url(settings)}

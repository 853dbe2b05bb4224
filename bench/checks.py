"""The job-event check suite on one big day of main_jobevent: GX and plain SQL, against the same checks
computed in pandas over the day's rows loaded with `read_sql`; clean and all-failing.

    python -m bench checks [--rows 2000000 [10000000 ...]] [--repeat 3]

Each size is the archive benchmark's main_jobevent table built with that many rows on one day
(bench.jobevents), in databases of its own (prefix `c<rows>_`), so that a second size does not rebuild the
first. Two cases per size: **all failing**, main_job empty, so every event is orphaned; **clean**, main_job
holding every job of the day. Each measurement is a fresh process (GX's import, 4-5 s and ~280 MB, is
reported apart; peak RSS includes it); all three methods must find the same counts. Sizes measured earlier
the same day stay in that day's results file, each with its run count and time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import date, datetime, timezone

import psycopg

from bench import jobevents
from bench.common import RESULTS, Section, median_of, peak_rss_mb, run_child, write_section
from forge_assets.quality.queries import Window
from forge_assets.quality.rules import rules_for

RULES = rules_for("forge", "main_jobevent")
METHODS = ("gx", "sql", "pandas")
PANDAS_MAX_ROWS = 2_000_000  # pandas holds the whole day: ~1.5 GB at 2M rows, so larger days leave it out
CASES = ("all failing", "clean")
_BASE_PREFIX = os.environ.get("FORGE_DB_PREFIX", "")


def _pandas(conninfo: str, window: Window) -> dict[str, int]:
    """The same rules over the window's rows in pandas (what a non-pushdown check costs)."""
    import pandas as pd

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


def _set_jobs(day: date, clean: bool) -> None:
    """main_job empty (every event orphaned) or holding every job of `day` (no event orphaned)."""
    base = (day - jobevents.BASE_DAY).days * 1000
    ids = [base + j for j in range(jobevents.JOBS_PER_DAY)]
    with jobevents.connect() as conn:
        conn.execute("DELETE FROM main_job WHERE id = ANY(%s)", (ids,))
        if clean:
            conn.execute("INSERT INTO main_job (id, created, modified, name, launch_type, status) "
                         "SELECT j, %s::date + (j - %s) * interval '30 min', %s::date + (j - %s) * interval '30 min', "
                         "'bench job ' || j, 'manual', 'successful' FROM unnest(%s::int[]) AS j",
                         (day, base, day, base, ids))
        conn.execute("ANALYZE main_job")


def _ready(rows: int) -> bool:
    """Whether the size's databases hold its day from a previous run (building resets it: minutes at 10M rows)."""
    window = Window.days(jobevents.BASE_DAY, jobevents.BASE_DAY)
    try:
        with jobevents.connect() as conn:
            shape = conn.execute("SELECT obj_description(to_regclass('bench_template'), 'pg_class')").fetchone()[0]
            held = conn.execute("SELECT count(*) FROM main_jobevent WHERE job_created >= %s AND job_created < %s",
                                (window.start, window.end)).fetchone()[0]
    except psycopg.Error:
        return False
    return shape == f"{rows} rows over 1 days" and held == rows


def _measure(rows: int, repeat: int, methods: list[str]) -> dict:
    """The methods on both cases of one size, in the size's own databases."""
    os.environ["FORGE_DB_PREFIX"] = f"{_BASE_PREFIX}c{rows}_"  # the children inherit it
    if not _ready(rows):
        jobevents.build(rows, 1)
    day = jobevents.BASE_DAY
    methods = [m for m in methods if m != "pandas" or rows <= PANDAS_MAX_ROWS]
    found = {}
    for case in CASES:
        _set_jobs(day, clean=case == "clean")
        print(f"checking {rows:,} job events of {day} ({case}) with {len(RULES)} rules")
        runs = {m: [run_child("bench.checks", "--child", m, day.isoformat()) for _ in range(repeat)]
                for m in methods}
        counts = {m: runs[m][0]["counts"] for m in methods}
        if any(c != counts[methods[0]] for c in counts.values()):
            raise SystemExit(f"methods disagree at {rows} rows ({case}): {counts}")
        orphans = counts[methods[0]]["main_jobevent_job_exists"]
        if orphans != (0 if case == "clean" else rows):
            raise SystemExit(f"{case} at {rows} rows: {orphans} orphaned events")
        summary = {m: {"seconds": median_of(runs[m], "seconds"), "peak_rss_mb": max(r["peak_rss_mb"] for r in runs[m]),
                       "import_seconds": median_of(runs[m], "import_seconds")} for m in methods}
        found[case] = {"counts": counts[methods[0]], "summary": summary, "runs": runs}
    _set_jobs(day, clean=False)
    return found


def _markdown(results: dict[int, dict]) -> str:
    lines = ["# Check suite on one day of job events: clean and all failing", "",
             "Seconds are medians of the runs (GX's import excluded); peak RSS is the largest VmHWM of a run's "
             "child process, GX's import included.", "",
             "| rows | runs | case | method | seconds | pandas / method | peak RSS MB |",
             "|---:|---:|---|---|---:|---:|---:|"]
    for rows, size in results.items():
        for case, found in size["cases"].items():
            summary = found["summary"]
            for m in summary:
                ratio = (f"{summary['pandas']['seconds'] / summary[m]['seconds']:.1f}x" if "pandas" in summary
                         else "–")
                lines.append(f"| {rows:,} | {size['repeat']} | {case} | {m} | {summary[m]['seconds']:.2f} | "
                             f"{ratio} | {summary[m]['peak_rss_mb']:.0f} |")
    imports = [f["summary"]["gx"]["import_seconds"] for size in results.values() for f in size["cases"].values()
               if "gx" in f["summary"]] or [0.0]
    lines += ["", f"GX import (not included above): {min(imports):.1f}-{max(imports):.1f} s (median per case). "
              f"Rules: {', '.join(r.name for r in RULES)}. Failing counts (all methods agree):", ""]
    for rows, size in results.items():
        for case, found in size["cases"].items():
            lines.append(f"- {rows:,} rows, {case} (measured {size['taken_at'][:16]} UTC): {found['counts']}")
    return "\n".join(lines) + "\n"


def _earlier() -> dict[int, dict]:
    """Sizes measured earlier today (kept in today's file unless measured again)."""
    path = RESULTS / f"{datetime.now(timezone.utc):%Y-%m-%d}-checks.json"
    if not path.exists():
        return {}
    found = json.loads(path.read_text()).get("results", {})
    return {int(rows): size for rows, size in found.items() if "cases" in size}


def main(argv: list[str]) -> None:
    path = write_section(run(argv, keep_earlier=True))
    print(f"results: {path}")


def run(argv: list[str], keep_earlier: bool = False) -> Section:
    """Measure the methods at every size, both cases; `keep_earlier` adds the sizes measured earlier today."""
    parser = argparse.ArgumentParser(prog="python -m bench checks")
    parser.add_argument("--rows", type=int, nargs="+", default=[2_000_000], help="job events in the checked day "
                        "(several sizes: one results file; sizes measured earlier the same day are kept)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per method and case (median reported)")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS), help="methods to run")
    args = parser.parse_args(argv)
    if min(args.rows) < 1 or args.repeat < 1:
        parser.error("--rows and --repeat must be positive")
    results = _earlier() if keep_earlier else {}
    try:
        for rows in args.rows:
            results[rows] = {"repeat": args.repeat, "taken_at": datetime.now(timezone.utc).isoformat(),
                             "cases": _measure(rows, args.repeat, args.methods)}
    finally:  # the next benchmark of a `python -m bench all` run uses the usual databases again
        os.environ["FORGE_DB_PREFIX"] = _BASE_PREFIX
    results = dict(sorted(results.items()))
    markdown = _markdown(results)
    print(markdown)
    return Section("checks", {"day": jobevents.BASE_DAY, "rules": [r.name for r in RULES], "results": results},
                   markdown)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(child(sys.argv[2], date.fromisoformat(sys.argv[3]))))
    else:
        main(sys.argv[1:])

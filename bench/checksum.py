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
import os
import resource
import statistics
import time
from datetime import date
from pathlib import Path

from bench import jobevents
from bench.archive import FAR_FUTURE, _warm_up, insert_impact
from bench.common import Section, machine, peak_rss_mb, run_child, write_section

_TICKS = os.sysconf("SC_CLK_TCK")


def _server_cpu() -> float:
    """CPU seconds the benchmark's PostgreSQL has used: its postmaster's ended children (backends that
    exited, e.g. the export's connections) plus its live processes. Wall time on a shared machine swings
    with other work; CPU time is what the checksum adds."""
    pgdata = jobevents.events_settings().pgdata
    postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
    total = 0
    for pid in [postmaster, *(int(p) for p in os.listdir("/proc") if p.isdigit())]:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if pid == postmaster:
            total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])  # utime stime cutime cstime
        elif int(fields[1]) == postmaster:  # ppid
            total += int(fields[11]) + int(fields[12])
    return total / _TICKS


def child(mode: str, day: str) -> dict:
    from forge_assets.retention import engine
    from forge_assets.retention.catalog import entries

    engine.CONTENT_CHECK = mode == "with"
    entry = entries("forge", "main_jobevent")[0]
    _warm_up()
    before = resource.getrusage(resource.RUSAGE_SELF)
    server = _server_cpu()
    began = time.perf_counter()
    with jobevents.connect() as conn:
        rows = engine.archive_day(conn, entry, date.fromisoformat(day), jobevents.events_settings().lake_root,
                                  FAR_FUTURE).rows
    seconds = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_SELF)
    client = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {"seconds": seconds, "rows": rows, "peak_rss_mb": peak_rss_mb(), "cpu_client": client,
            "cpu_server": _server_cpu() - server}


def purge_impact(day: date) -> dict:
    """Single-row inserts into the table on an idle server, then while the day is archived (the purge gives up
    after its lock_timeout when the inserts hold the parent table; it is then run again, as a later run
    would: every attempt is recorded)."""
    attempts: list[str] = []

    def archive() -> None:
        for _ in range(5):
            try:
                run_child("bench", "checksum", "--child", "with", day.isoformat())
                attempts.append("archived")
                return
            except RuntimeError as exc:
                if "LockTimeout" not in str(exc):
                    raise
                attempts.append("gave up after lock_timeout")

    return {**insert_impact(day, archive), "attempts": attempts}


def main(argv: list[str]) -> None:
    if argv[:1] == ["--child"]:
        print(json.dumps(child(*argv[1:3])))
        return
    path = write_section(run(argv))
    print(f"wrote {path}")


def run(argv: list[str]) -> Section:
    """Archive one day with and without the content checksum, alternately; then the purge's lock impact."""
    parser = argparse.ArgumentParser(prog="python -m bench checksum")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    jobevents.build(args.rows, args.days)
    day = jobevents.days_of(args.days)[0]
    runs: dict[str, list[dict]] = {"with": [], "without": []}
    for i in range(args.repeat):
        for mode in (("without", "with") if i % 2 else ("with", "without")):
            runs[mode].append(run_child("bench", "checksum", "--child", mode, day.isoformat()))
            jobevents.reset([day])
            print(f"  {mode:8s} {runs[mode][-1]['seconds']:6.2f} s, {runs[mode][-1]['rows']:,} rows")
    medians = {m: statistics.median(r["seconds"] for r in v) for m, v in runs.items()}
    cpu = {m: statistics.median(r["cpu_client"] + r["cpu_server"] for r in v) for m, v in runs.items()}
    rows = runs["with"][0]["rows"]
    cost = medians["with"] / medians["without"] - 1
    cpu_cost = cpu["with"] / cpu["without"] - 1
    impact = purge_impact(day)
    lines = [
        f"# Content checksum cost: main_jobevent, one day of {rows:,} rows",
        "",
        f"{machine()}; median of {args.repeat}, alternating, each a fresh process (imports excluded).",
        "",
        "| archive + verify + purge | wall s | rows/s | CPU s (client + PostgreSQL) | peak RSS MB |",
        "|---|---:|---:|---:|---:|",
        *(f"| {label} | {medians[m]:.2f} | {rows / medians[m]:,.0f} | {cpu[m]:.2f} | "
          f"{statistics.median(r['peak_rss_mb'] for r in runs[m]):.0f} |"
          for m, label in (("without", "key checksum and row count only"),
                           ("with", "**plus the content checksum against PostgreSQL**"))),
        "",
        f"Cost of the content checksum: **{cpu_cost * 100:+.1f}% CPU**, {cost * 100:+.1f}% wall time (median; wall "
        "time on a shared machine swings with other work).",
        f"Runs (wall s): with {[round(r['seconds'], 2) for r in runs['with']]}, "
        f"without {[round(r['seconds'], 2) for r in runs['without']]}.",
        "",
        "| single-row inserts into main_jobevent | inserts | p50 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|",
        *(f"| {label} | {impact[k]['inserts']:,} | {impact[k]['p50_ms']:.2f} | {impact[k]['p99_ms']:.2f} | "
          f"{impact[k]['max_ms']:.1f} |" for k, label in (("idle", "idle server"),
                                                          ("during_archive", "while a day is archived"))),
        "",
        f"The purge while inserts ran: {', then '.join(impact['attempts'])} (lock_timeout "
        "bounds how long the application waits behind it).",
    ]
    print("\n".join(lines))
    return Section(f"checksum-{rows}rows", {"runs": runs, "medians": medians, "cost": cost, "cpu": cpu,
                                            "cpu_cost": cpu_cost, "impact": impact}, "\n".join(lines) + "\n")

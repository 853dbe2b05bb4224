"""Catch-up: the demo's full backlog drained by the Dagster daemon alone.

A fresh FORGE_HOME (its own embedded PostgreSQL and Dagster instance), seeded like the demo but with the demo
skipped (no rollups, nothing archived), partitions starting on the first seeded day; then `forge-assets dev`
runs until every catalog table holds no overdue row. Reports the backlog (table-days, rows), the wall time,
the runs by job and status, and the machine's load average while it ran.

python -m bench catchup [--days 100] [--scale 1] [--timeout 2400] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bench.common import write_results

CLI = str(Path(sys.executable).with_name("forge-assets"))


def _backlog(env: dict) -> tuple[int, int]:
    """(table-days, rows) overdue now over every catalog table, in a child process with the bench's env."""
    code = ("import json; from datetime import datetime, timezone\n"
            "from forge_assets.retention.catalog import CATALOG\nfrom forge_assets.config import load_settings\n"
            "from forge_assets.db import source_connection\nfrom forge_assets.retention.history import backlog\n"
            "s = load_settings(); now = datetime.now(timezone.utc); days = rows = 0\n"
            "for e in CATALOG:\n    with source_connection(s, e.source) as c:\n        b = backlog(c, e, now)\n"
            "        days += b.days; rows += b.rows\nprint(json.dumps([days, rows]))\n")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    days, rows = out.stdout.strip().splitlines()[-1].strip("[]").split(",")
    return int(days), int(rows)


def _runs(env: dict) -> dict:
    code = ("import json, collections\nfrom dagster import DagsterInstance\n"
            "with DagsterInstance.get() as i:\n    runs = i.get_runs()\n"
            "    c = collections.Counter(f'{r.job_name} {r.status.value}' for r in runs)\n"
            "print(json.dumps(dict(c)))\n")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    import json

    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench catchup")
    parser.add_argument("--days", type=int, default=100)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--timeout", type=int, default=2400)
    parser.add_argument("--keep", action="store_true", help="keep the FORGE_HOME afterwards")
    args = parser.parse_args(argv)

    home = Path(tempfile.mkdtemp(prefix="forge-catchup-"))
    anchor = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    first = (anchor - timedelta(days=args.days)).date()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FORGE_", "DAGSTER_"))}
    env.update(FORGE_HOME=str(home), FORGE_START_DATE=first.isoformat())
    print(f"FORGE_HOME {home}; partitions from {first}", flush=True)
    subprocess.run([CLI, "migrate"], env=env, check=True, capture_output=True)
    began = time.perf_counter()
    subprocess.run([CLI, "seed", "--days", str(args.days), "--scale", str(args.scale),
                    "--anchor", anchor.isoformat()], env=env, check=True, capture_output=True)
    print(f"seeded in {time.perf_counter() - began:.0f} s", flush=True)
    backlog_days, backlog_rows = _backlog(env)
    print(f"backlog: {backlog_days} table-days, {backlog_rows:,} rows", flush=True)

    log = (home / "dev.log").open("w")
    dev = subprocess.Popen([CLI, "dev", "-p", "3999"], env=env, stdout=log, stderr=subprocess.STDOUT,
                           start_new_session=True)
    started, loads, left = time.perf_counter(), [], (backlog_days, backlog_rows)
    try:
        while left[1] > 0 and time.perf_counter() - started < args.timeout:
            time.sleep(20)
            loads.append(os.getloadavg()[0])
            left = _backlog(env)
            print(f"{time.perf_counter() - started:6.0f} s: {left[0]} table-days, {left[1]:,} rows left; "
                  f"load {loads[-1]:.1f}", flush=True)
        wall = time.perf_counter() - started
    finally:
        os.killpg(dev.pid, signal.SIGTERM)
        try:
            dev.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(dev.pid, signal.SIGKILL)
        log.close()
    env["DAGSTER_HOME"] = str(home / "dagster")
    env["DAGSTER_PG_URL"] = subprocess.run(
        [sys.executable, "-c", "from forge_assets.config import load_settings; from forge_assets.instance import "
         "storage_url; print(storage_url(load_settings()))"], env=env, capture_output=True, text=True,
        check=True).stdout.strip()
    runs = _runs(env)
    subprocess.run([CLI, "server", "stop"], env=env, capture_output=True)
    result = {"days": args.days, "scale": args.scale, "backlog_table_days": backlog_days,
              "backlog_rows": backlog_rows, "drained": left[1] == 0, "left_rows": left[1], "wall_seconds": round(wall),
              "runs": runs, "total_runs": sum(runs.values()),
              "load_average_1m": {"min": min(loads, default=0), "max": max(loads, default=0),
                                  "mean": round(sum(loads) / max(len(loads), 1), 2)}}
    lines = [f"# Catch-up: {args.days} days at scale {args.scale}, daemon alone", "",
             f"backlog {backlog_days} table-days, {backlog_rows:,} rows; "
             f"{'drained' if left[1] == 0 else f'NOT drained ({left[1]:,} rows left)'} in {wall:.0f} s "
             f"({wall / 60:.1f} min) with {sum(runs.values())} runs; 1-min load average "
             f"{result['load_average_1m']['min']:.1f}-{result['load_average_1m']['max']:.1f}", "",
             "| job | status | runs |", "|---|---|---:|"]
    lines += [f"| {k.split()[0]} | {k.split()[1]} | {v} |" for k, v in sorted(runs.items())]
    print("\n".join(lines))
    print(write_results("catchup", result, "\n".join(lines) + "\n"))
    if not args.keep:
        shutil.rmtree(home, ignore_errors=True)

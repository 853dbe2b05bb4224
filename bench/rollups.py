"""One day's rollups at ~500K job events a day: SQL pushdown (forge_assets) against pandas over raw rows.

    python -m bench rollups [--scale 50] [--repeat 3]

Each measurement is a fresh process (so peak RSS is its own); medians of `--repeat` runs. The pandas
peer computes the same aggregates from the day's raw rows read with `pandas.read_sql`, and the run
checks that both give the same totals before it reports a ratio. Besides the wall time of
`compute_rollup` (query, transfer, Arrow tables), each SQL run reports the PostgreSQL time of the same
query: the execution time of `EXPLAIN (ANALYZE, TIMING OFF)`, run after it in the same process.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from datetime import date

import pandas as pd

from bench.common import Section, bench_settings, median_of, peak_rss_mb, prepare, run_child, write_section
from forge_assets.days import day_window
from forge_assets.db import source_connection
from forge_assets.rollups.registry import ROLLUPS
from forge_assets.rollups.spec import compute_rollup

SPECS = {spec.name: spec for spec in ROLLUPS}
TARGET_RATIO = 2.0  # every rollup at least twice as fast as pandas over the raw rows (issue 18)
TARGET_PG_SECONDS = 5.0  # one day of all rollups at ~500K job events a day, PostgreSQL time


def _read(conn, query: str, start, end) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pandas prefers SQLAlchemy; a DBAPI connection works
        return pd.read_sql(query, conn, params={"start": start, "end": end})


def _stats(frame: pd.DataFrame, keys: list[str], value: str, count_name: str) -> pd.DataFrame:
    grouped = frame.groupby(keys, dropna=False)[value]
    return pd.DataFrame({
        count_name: grouped.size(), "avg": grouped.mean(), "min": grouped.min(), "max": grouped.max(),
        "p50": grouped.quantile(0.5), "p95": grouped.quantile(0.95),
    }).reset_index()


def pandas_job_status_counts(conn, start, end) -> pd.DataFrame:
    jobs = _read(conn, "SELECT status, launch_type, finished FROM main_job "
                       "WHERE created >= %(start)s AND created < %(end)s", start, end)
    return jobs.groupby(["status", "launch_type"]).agg(jobs=("status", "size"),
                                                       finished_jobs=("finished", "count")).reset_index()


def pandas_job_duration_by_template(conn, start, end) -> pd.DataFrame:
    jobs = _read(conn, "SELECT organization_id, job_template_id, status, finished, elapsed FROM main_job "
                       "WHERE created >= %(start)s AND created < %(end)s", start, end)
    templates = _read(conn, "SELECT id AS job_template_id, name AS job_template_name FROM main_jobtemplate", start, end)
    jobs["elapsed"] = jobs["elapsed"].astype(float)
    counts = pd.crosstab([jobs.organization_id, jobs.job_template_id], jobs.status)
    finished = jobs[jobs.finished.notna()]
    stats = _stats(finished, ["organization_id", "job_template_id"], "elapsed", "finished_runs")
    out = counts.reset_index().merge(stats, how="left").merge(templates, how="left")
    out["runs"] = counts.sum(axis=1).to_numpy()
    return out


def pandas_failing_hosts(conn, start, end) -> pd.DataFrame:
    rows = _read(conn, "SELECT s.host_id, s.failures, s.dark FROM main_jobhostsummary s JOIN main_job j "
                       "ON j.id = s.job_id WHERE j.created >= %(start)s AND j.created < %(end)s "
                       "AND s.host_id IS NOT NULL", start, end)
    rows["failed"] = rows.failures > 0
    rows["unreachable"] = rows.dark > 0
    per_host = rows.groupby("host_id").agg(runs=("failed", "size"), failed_runs=("failed", "sum"),
                                           unreachable_runs=("unreachable", "sum")).reset_index()
    return per_host[(per_host.failed_runs > 0) | (per_host.unreachable_runs > 0)]


def pandas_app_metrics_hourly(conn, start, end) -> pd.DataFrame:
    rows = _read(conn, "SELECT app_name, metric_type, aggregation_level, timestamp, value FROM metrics "
                       "WHERE timestamp >= %(start)s AND timestamp < %(end)s", start, end)
    rows["hour"] = rows["timestamp"].dt.floor("h")
    return _stats(rows, ["hour", "app_name", "metric_type", "aggregation_level"], "value", "data_points")


def pandas_container_metrics_hourly(conn, start, end) -> pd.DataFrame:
    rows = _read(conn, "SELECT container_id, timestamp, cpu_percent, network_rx FROM container_metrics "
                       "WHERE timestamp >= %(start)s - interval '1 hour' AND timestamp < %(end)s", start, end)
    rows = rows.sort_values(["container_id", "timestamp"])
    previous = rows.groupby("container_id")["network_rx"].shift()
    delta = rows["network_rx"] - previous
    rows["rx_delta"] = delta.where(delta >= 0, rows["network_rx"]).fillna(0)
    rows = rows[rows["timestamp"] >= pd.Timestamp(start)]
    rows["hour"] = rows["timestamp"].dt.floor("h")
    rows["cpu_percent"] = rows["cpu_percent"].astype(float)
    out = _stats(rows, ["hour", "container_id"], "cpu_percent", "samples")
    out["network_rx_bytes"] = rows.groupby(["hour", "container_id"])["rx_delta"].sum().to_numpy()
    return out


def pandas_device_telemetry_hourly(conn, start, end) -> pd.DataFrame:
    rows = _read(conn, "SELECT time, tenant_id, device_id, metrics::text AS metrics FROM telemetry "
                       "WHERE time >= %(start)s AND time < %(end)s", start, end)
    values = pd.DataFrame.from_records(rows.pop("metrics").map(json.loads))
    long = pd.concat([rows, values], axis=1).melt(id_vars=["time", "tenant_id", "device_id"], var_name="metric")
    long["hour"] = long["time"].dt.floor("h")
    return _stats(long, ["hour", "tenant_id", "device_id", "metric"], "value", "samples")


def pandas_metric_value_counts(conn, start, end) -> pd.DataFrame:
    rows = _read(conn, "SELECT app_name, metric_type, aggregation_level, value FROM metrics "
                       "WHERE timestamp >= %(start)s AND timestamp < %(end)s", start, end)
    keys = ["app_name", "metric_type", "aggregation_level", "value"]
    return rows.groupby(keys, dropna=False).size().rename("samples").reset_index()


PANDAS = {
    "job_status_counts": (pandas_job_status_counts, "jobs", "jobs"),
    "job_duration_by_template": (pandas_job_duration_by_template, "runs", "runs"),
    "failing_hosts": (pandas_failing_hosts, "failed_runs", "failed_runs"),
    "container_metrics_hourly": (pandas_container_metrics_hourly, "samples", "samples"),
    "app_metrics_hourly": (pandas_app_metrics_hourly, "data_points", "data_points"),
    "metric_value_counts": (pandas_metric_value_counts, "samples", "samples"),
    "device_telemetry_hourly": (pandas_device_telemetry_hourly, "samples", "samples"),
}


def measure(method: str, name: str, day: date) -> dict:
    """Child process: compute one rollup for one day; print seconds, the reconciling total and peak RSS."""
    settings = bench_settings()
    spec = SPECS[name]
    start, end = day_window(day, day)
    with source_connection(settings, spec.source) as conn:
        began = time.perf_counter()
        if method == "sql":
            table = compute_rollup(conn, spec, day, day)[day]
            rows, total = table.num_rows, int(sum(table[spec.reconciliation.column].to_pylist()))
        else:
            function, column, _ = PANDAS[name]
            frame = function(conn, start, end)
            rows, total = len(frame), int(frame[column].sum())
        seconds = time.perf_counter() - began
        measured = {"seconds": seconds, "rows": rows, "total": total, "peak_rss_mb": peak_rss_mb()}
        if method == "sql":
            measured["pg_seconds"] = _postgres_seconds(conn, spec, start, end)
    return measured


def _postgres_seconds(conn, spec, start, end) -> float:
    """PostgreSQL's own execution time of the rollup's query (no transfer to the client, no Arrow)."""
    with conn.transaction():
        conn.execute("SET LOCAL TIME ZONE 'UTC'")
        plan = conn.execute("EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) " + spec.query,
                            {"start": start, "end": end}).fetchone()[0]
    return plan[0]["Execution Time"] / 1000


def main(argv: list[str]) -> None:
    if argv[:1] == ["--child"]:
        method, name, day = argv[1:4]
        print(json.dumps(measure(method, name, date.fromisoformat(day))))
        return
    path = write_section(run(argv))
    print(f"written: {path}")


def run(argv: list[str]) -> Section:
    """Measure every rollup of one day, SQL and (where there is one) its pandas peer; return the figures."""
    parser = argparse.ArgumentParser(prog="python -m bench rollups")
    parser.add_argument("--scale", type=float, default=50.0, help="seed scale (50: ~500K job events a day)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    day, volume = prepare(args.scale)
    print(f"day {day}: {volume['job_events_that_day']:,} Forge job events; median of {args.repeat}, fresh processes")
    baseline = [run_child("bench", "rollups", "--child", "sql", "job_status_counts", "2001-01-01")
                for _ in range(args.repeat)]
    results = []
    for spec in ROLLUPS:
        sql_runs = [run_child("bench", "rollups", "--child", "sql", spec.name, day.isoformat())
                    for _ in range(args.repeat)]
        row = {"rollup": spec.name, "source": spec.source, "rows": sql_runs[0]["rows"],
               "sql_seconds": median_of(sql_runs, "seconds"), "pg_seconds": median_of(sql_runs, "pg_seconds"),
               "sql_rss_mb": median_of(sql_runs, "peak_rss_mb")}
        if spec.name in PANDAS:
            pandas_runs = [run_child("bench", "rollups", "--child", "pandas", spec.name, day.isoformat())
                           for _ in range(args.repeat)]
            if pandas_runs[0]["total"] != sql_runs[0]["total"]:
                raise RuntimeError(f"{spec.name}: pandas total {pandas_runs[0]['total']} != SQL {sql_runs[0]['total']}")
            row.update(pandas_seconds=median_of(pandas_runs, "seconds"),
                       pandas_rss_mb=median_of(pandas_runs, "peak_rss_mb"))
            row["ratio"] = row["pandas_seconds"] / row["sql_seconds"]
        results.append(row)
        print(f"  {spec.name:26s} sql {row['sql_seconds']:7.3f} s (PostgreSQL {row['pg_seconds']:6.3f} s)"
              + (f"  pandas {row['pandas_seconds']:7.3f} s  x{row['ratio']:.1f}" if "ratio" in row else ""))

    compared = [r for r in results if "ratio" in r]
    total_sql = sum(r["sql_seconds"] for r in compared)
    total_pandas = sum(r["pandas_seconds"] for r in compared)
    total_pg = sum(r["pg_seconds"] for r in results)
    below = [r["rollup"] for r in compared if r["ratio"] < TARGET_RATIO]
    lines = [
        f"# Rollups of one day ({day}, {volume['job_events_that_day']:,} Forge job events, scale {args.scale})",
        "",
        f"Median of {args.repeat} fresh processes each. SQL s: `compute_rollup` wall time (query, transfer, Arrow "
        "tables); PostgreSQL s: the query's execution time in PostgreSQL (`EXPLAIN (ANALYZE, TIMING OFF)`). "
        f"Peak RSS includes the interpreter and imports (baseline {median_of(baseline, 'peak_rss_mb'):.0f} MB). "
        "Totals of both methods agree.",
        "",
        "| rollup | source | rows out | forge_assets SQL s | PostgreSQL s | pandas s | pandas / SQL | RSS SQL MB "
        "| RSS pandas MB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        peer = (f"{r['pandas_seconds']:.3f} | {r['ratio']:.1f}x | {r['sql_rss_mb']:.0f} | {r['pandas_rss_mb']:.0f}"
                if "ratio" in r else f"– | – | {r['sql_rss_mb']:.0f} | –")
        lines.append(f"| {r['rollup']} | {r['source']} | {r['rows']:,} | {r['sql_seconds']:.3f} | "
                     f"{r['pg_seconds']:.3f} | {peer} |")
    lines.append(f"| **the {len(compared)} compared** | | | **{total_sql:.2f}** | "
                 f"{sum(r['pg_seconds'] for r in compared):.2f} | **{total_pandas:.2f}** | "
                 f"**{total_pandas / total_sql:.1f}x** | | |")
    lines.append(f"| **all {len(results)} rollups** | | | {sum(r['sql_seconds'] for r in results):.2f} | "
                 f"**{total_pg:.2f}** | | | | |")
    lines += ["", f"Targets: every rollup ≥ {TARGET_RATIO:.0f}x pandas — "
              + ("met" if not below else f"**missed by {', '.join(below)}**")
              + f"; all rollups of the day < {TARGET_PG_SECONDS:.0f} s of PostgreSQL time — "
              + ("met" if total_pg < TARGET_PG_SECONDS else f"**missed ({total_pg:.2f} s)**") + "."]
    markdown = "\n".join(lines) + "\n"
    print("\n" + markdown)
    return Section("rollups", {"day": day, "scale": args.scale, "repeat": args.repeat, **volume,
                               "results": results, "postgres_seconds_all": total_pg}, markdown)

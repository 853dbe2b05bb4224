"""Rollup checks over the lake: totals reconcile with the source for each day, and statistics are sane
(p50 <= p95 <= max, no negative durations)."""

from __future__ import annotations

import time
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from forge_assets.days import day_window
from forge_assets.lake import file_exists, local_copy, location, rollup_file
from forge_assets.quality.outcome import MAX_SAMPLES, Outcome, broken
from forge_assets.quality.queries import Window
from forge_assets.retention.catalog import CATALOG
from forge_assets.rollups.spec import RollupSpec

ENGINE = "sql+parquet"
_TOLERANCE = 1e-9


def window_days(window: Window) -> list[date]:
    """The UTC days a window covers."""
    first, last = window.start.date(), (window.end - timedelta(microseconds=1)).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def archived_days(conn: psycopg.Connection, spec: RollupSpec, days: list[date]) -> set[date]:
    """Days of which a table the rollup reads has been archived: their source counts are gone from PostgreSQL."""
    entries = [e.key for e in CATALOG if e.source == spec.source and e.table in spec.reads]
    if not entries or not days:
        return set()
    rows = conn.execute("SELECT DISTINCT day FROM forge_retention.archive_ledger WHERE entry = ANY(%s) "
                        "AND day = ANY(%s)", (entries, days)).fetchall()
    return {day for (day,) in rows}


def reconciliation(conn: psycopg.Connection, spec: RollupSpec, lake_root: Path, window: Window) -> Outcome:
    """For each day of the window with a rollup file and its source rows still in PostgreSQL: the sum of the
    spec's reconciliation column equals the source count. Failing count: days that differ."""
    check, column = "reconciliation", spec.reconciliation.column
    text = spec.reconciliation_query
    started = time.perf_counter()
    days = window_days(window)
    try:
        with conn.transaction():
            skipped = archived_days(conn, spec, days)
            mismatches, missing, checked = [], [], 0
            for day in days:
                path = rollup_file(location(lake_root), spec.name, day)
                if day in skipped:
                    continue
                if not file_exists(path):
                    missing.append(day.isoformat())
                    continue
                start, end = day_window(day, day)
                expected = conn.execute(text, {"start": start, "end": end}).fetchone()[0]
                with local_copy(path) as copy:
                    total = pc.sum(pq.read_table(copy, columns=[column])[column]).as_py() or 0
                checked += 1
                if total != expected:
                    mismatches.append(f"{day}: rollup {column} {total} != source {expected}")
    except psycopg.Error as exc:
        return broken(check, text, ENGINE, exc, time.perf_counter() - started)
    return Outcome(check=check, passed=not mismatches, failing=len(mismatches), total=checked, query=text,
                   engine=ENGINE, samples=tuple(mismatches[:MAX_SAMPLES]), seconds=time.perf_counter() - started,
                   details={"days_checked": checked, "days_archived_skipped": len(skipped),
                            "days_without_rollup": len(missing)})


def ordered_triples(schema: pa.Schema) -> list[list[str]]:
    """(p50, p95, max) column groups present in a rollup, by name: p50_x/p95_x/max_x or x_p50/x_p95/x_max."""
    names = set(schema.names)
    triples = []
    for name in schema.names:
        if "p95" in name:
            triple = [n for n in (name.replace("p95", tag) for tag in ("p50", "p95", "max")) if n in names]
            if len(triple) > 1:
                triples.append(triple)
    return triples


def duration_columns(schema: pa.Schema) -> list[str]:
    """Columns holding durations (seconds): they must not be negative."""
    return [n for n in schema.names if n.endswith("_s") or n.endswith("_seconds")]


def sanity(spec: RollupSpec, lake_root: Path, window: Window) -> Outcome:
    """p50 <= p95 <= max in every row and no negative duration. Failing count: rows breaking either."""
    check = "sanity"
    triples, durations = ordered_triples(spec.schema), duration_columns(spec.schema)
    text = (f"every row of rollups/{spec.name}/day=*: " + "; ".join(" <= ".join(t) for t in triples)
            + ("; " if triples and durations else "") + "; ".join(f"{c} >= 0" for c in durations))
    started = time.perf_counter()
    try:
        failing, rows, samples = _insane_rows(spec, lake_root, window, triples, durations)
    except (OSError, pa.ArrowException) as exc:
        return broken(check, text, "parquet", exc, time.perf_counter() - started)
    return Outcome(check=check, passed=failing == 0, failing=failing, total=rows, query=text, engine="parquet",
                   samples=tuple(samples[:MAX_SAMPLES]), seconds=time.perf_counter() - started)


def _insane_rows(spec: RollupSpec, lake_root: Path, window: Window, triples: list[list[str]],
                 durations: list[str]) -> tuple[int, int, list[str]]:
    failing = rows = 0
    samples: list[str] = []
    for day in window_days(window):
        path = rollup_file(location(lake_root), spec.name, day)
        if not file_exists(path):
            continue
        with local_copy(path) as copy:
            table = pq.read_table(copy)
        rows += table.num_rows
        bad = pa.array([False] * table.num_rows, pa.bool_())
        for triple in triples:
            for lower, upper in zip(triple, triple[1:], strict=False):
                worse = pc.fill_null(pc.greater(table[lower], pc.add(table[upper], _TOLERANCE)), False)
                bad = pc.or_(bad, worse)
                samples += [f"{day}: {lower} {a} > {upper} {b}" for a, b, w in
                            zip(table[lower].to_pylist(), table[upper].to_pylist(), worse.to_pylist(), strict=True) if w]
        for column in durations:
            negative = pc.fill_null(pc.less(table[column], 0), False)
            bad = pc.or_(bad, negative)
            samples += [f"{day}: {column} {v}" for v, n in zip(table[column].to_pylist(), negative.to_pylist(),
                                                                 strict=True) if n]
        failing += pc.sum(pc.cast(bad, pa.int64())).as_py() or 0
    return failing, rows, samples

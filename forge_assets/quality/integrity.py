"""Archive integrity: every ledgered file exists, rereads to its row count and key checksum and still has the
bytes it was archived with (SHA-256), and no two files of one day hold the same key."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from forge_assets.lake import LakePathError, LakeStoreError, file_exists, ledgered_file, local_copy, location, sha256_of
from forge_assets.quality.outcome import MAX_SAMPLES, Outcome, broken
from forge_assets.quality.queries import Window
from forge_assets.retention.catalog import TableEntry
from forge_assets.retention.stream import reread

ENGINE = "parquet"
LEDGER_QUERY = (
    "SELECT day, path, row_count, key_checksum, sha256 FROM forge_retention.archive_ledger "
    "WHERE entry = %(entry)s AND path IS NOT NULL AND (%(all)s OR (day >= %(first)s AND day < %(last)s) "
    "OR (archived_at >= %(start)s AND archived_at < %(end)s)) ORDER BY day, path"
)


def _file_problem(root: Path, entry: TableEntry, relative: str, rows: int, checksum: str | None,
                  sha256: str | None = None) -> str | None:
    try:
        path = ledgered_file(root, relative)
    except LakePathError as exc:
        return f"{relative}: {exc}"
    try:
        if not file_exists(path):
            return f"{relative}: missing"
        with local_copy(path) as copy:  # an object: its bytes read back from the store
            found_rows, found_checksum = reread(copy, entry.key_columns)
            if found_rows != rows:
                return f"{relative}: {found_rows} rows, ledger says {rows}"
            if checksum is not None and f"{found_checksum:016x}" != checksum:
                return f"{relative}: key checksum {found_checksum:016x}, ledger says {checksum}"
            if sha256 is not None and sha256_of(copy) != sha256:
                return f"{relative}: its bytes changed since it was archived (SHA-256 differs from the ledger's)"
    except LakeStoreError as exc:
        return f"{relative}: unreadable ({exc})"
    return None


def _shared_keys(root: Path, entry: TableEntry, day: date, paths: list[str]) -> tuple[int, list[str]]:
    """Keys held by more than one file of the day: how many rows repeat, and a few of the keys."""
    tables = []
    for relative in paths:
        with local_copy(ledgered_file(root, relative)) as copy:
            tables.append(pq.read_table(copy, columns=list(entry.key_columns)))
    keys = pa.concat_tables(tables, promote_options="permissive")
    counts = keys.group_by(list(entry.key_columns)).aggregate([([], "count_all")])
    repeated = counts.filter(pc.greater(counts["count_all"], 1))
    extra = int(pc.sum(pc.subtract(repeated["count_all"], 1)).as_py() or 0)
    shown = [f"{day}: key {tuple(r[c] for c in entry.key_columns)}" for r in repeated.slice(0, MAX_SAMPLES).to_pylist()]
    return extra, shown


def archive_integrity(conn: psycopg.Connection, entry: TableEntry, lake_root: Path,
                      window: Window | None = None) -> Outcome:
    """Verify the ledgered files of `entry` whose day lies in `window`, or that were archived during it
    (all files when `window` is None). Failing count: bad files plus keys repeated across a day's files."""
    check = "archive_integrity"
    params = {"entry": entry.key, "all": window is None, "first": window and window.start.date(),
              "last": window and window.end.date(), "start": window and window.start, "end": window and window.end}
    text = LEDGER_QUERY.replace("%(entry)s", repr(entry.key))
    started = time.perf_counter()
    try:
        with conn.transaction():
            ledger = conn.execute(LEDGER_QUERY, params).fetchall()
    except psycopg.Error as exc:
        return broken(check, text, ENGINE, exc, time.perf_counter() - started)
    root = location(lake_root)
    problems = [p for day, path, rows, checksum, sha256 in ledger
                if (p := _file_problem(root, entry, path, rows, checksum, sha256)) is not None]
    failing = len(problems)
    by_day: dict[date, list[str]] = {}
    for day, path, *_ in ledger:
        by_day.setdefault(day, []).append(path)
    bad = {p.split(":", 1)[0] for p in problems}
    for day, paths in by_day.items():
        readable = [p for p in paths if p not in bad]
        if len(readable) > 1:
            extra, shown = _shared_keys(root, entry, day, readable)
            failing += extra
            problems.extend(shown)
    rows = sum(count for _, _, count, *_ in ledger)  # rows_checked: the rows reread, not the files
    return Outcome(check=check, passed=failing == 0, failing=failing, total=rows, query=text, engine=ENGINE,
                   samples=tuple(problems[:MAX_SAMPLES]), seconds=time.perf_counter() - started,
                   details={"files_checked": len(ledger), "days_checked": len(by_day)})

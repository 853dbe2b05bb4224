"""Archive integrity: every ledgered file exists, rereads to its row count and key checksum and still has the
bytes it was archived with (SHA-256), and no two files of one day hold the same row (identical in every
column the files share: a row archived twice). The same key in two files with other values is legitimate
(a row restored, changed by the application and archived again: whole-row identity)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import date
from pathlib import Path

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from forge_assets.lake import LakePathError, LakeStoreError, file_exists, ledgered_file, local_copy, location, sha256_of
from forge_assets.quality.outcome import MAX_SAMPLES, Outcome, broken
from forge_assets.quality.queries import Window
from forge_assets.retention.catalog import TableEntry
from forge_assets.retention.content import row_hashes
from forge_assets.retention.stream import reread

ENGINE = "parquet"
LEDGER_QUERY = (
    "SELECT day, path, row_count, key_checksum, sha256 FROM forge_retention.archive_ledger "
    "WHERE entry = %(entry)s AND path IS NOT NULL AND (%(all)s OR (day >= %(first)s AND day < %(last)s) "
    "OR (archived_at >= %(start)s AND archived_at < %(end)s)) ORDER BY day, path"
)


def _file_problem(stack: ExitStack, root: Path, entry: TableEntry, relative: str, rows: int, checksum: str | None,
                  sha256: str | None = None) -> tuple[str | None, Path | None]:
    """What is wrong with one ledgered file (None: nothing), and its local copy for the day's other checks (an
    object: its bytes read back from the store once, kept until `stack` closes)."""
    try:
        path = ledgered_file(root, relative)
    except LakePathError as exc:
        return f"{relative}: {exc}", None
    try:
        if not file_exists(path):
            return f"{relative}: missing", None
        copy = stack.enter_context(local_copy(path))
        found_rows, found_checksum = reread(copy, entry.key_columns)
        if found_rows != rows:
            return f"{relative}: {found_rows} rows, ledger says {rows}", None
        if checksum is not None and f"{found_checksum:016x}" != checksum:
            return f"{relative}: key checksum {found_checksum:016x}, ledger says {checksum}", None
        if sha256 is not None and sha256_of(copy) != sha256:
            return f"{relative}: its bytes changed since it was archived (SHA-256 differs from the ledger's)", None
    except LakeStoreError as exc:
        return f"{relative}: unreadable ({exc})", None
    return None, copy


def _row_hashes(path: Path, names: list[str], types: dict[str, str]) -> Iterator[tuple[pa.Table, np.ndarray]]:
    """A file's row groups and a 64-bit hash per row over `names`: the content checksum's row hash (each value
    hashed as PostgreSQL hashes it, seeded by the column's place), one row group at a time."""
    parquet = pq.ParquetFile(path)
    for group in range(parquet.metadata.num_row_groups):
        table = parquet.read_row_group(group, columns=names, use_threads=False)
        yield table, row_hashes(table, [(name, types[name]) for name in names])


def _pg_types(path: Path) -> dict[str, str]:
    return {f.name: (f.metadata or {}).get(b"pg_type", b"text").decode() for f in pq.read_schema(path)}


def _repeated_in(files: list[Path], entry: TableEntry, day: date) -> tuple[int, list[str]]:
    """Rows identical (over the columns the day's files share) in more than one file of the day: how many
    copies are extra, and the keys of a few. Memory: one 64-bit hash and a file number per row of the day."""
    types = [_pg_types(f) for f in files]
    names = [n for n in types[0] if all(n in t for t in types[1:])]
    hashes, owners = [], []
    for number, file in enumerate(files):
        for _, found in _row_hashes(file, names, types[number]):
            hashes.append(found)
            owners.append(np.full(len(found), number, dtype=np.int32))
    rows = pa.table({"h": pa.array(np.concatenate(hashes)), "f": pa.array(np.concatenate(owners))})
    per_file = rows.group_by(["h", "f"]).aggregate([([], "count_all")])
    per_row = per_file.group_by("h").aggregate([("count_all", "sum"), ("count_all", "max"), ("f", "count")])
    repeated = per_row.filter(pc.greater(per_row["f_count"], 1))
    extra = int(pc.sum(pc.subtract(repeated["count_all_sum"], repeated["count_all_max"])).as_py() or 0)
    if not extra:
        return 0, []
    wanted = set(repeated["h"].slice(0, MAX_SAMPLES).to_pylist())
    shown: dict[tuple, None] = {}
    for number, file in enumerate(files):
        for table, found in _row_hashes(file, names, types[number]):
            for i in np.flatnonzero(np.isin(found, list(wanted))):
                shown[tuple(table.column(c)[int(i)].as_py() for c in entry.key_columns)] = None
    return extra, [f"{day}: row with key {key} archived in more than one file" for key in list(shown)[:MAX_SAMPLES]]


def archive_integrity(conn: psycopg.Connection, entry: TableEntry, lake_root: Path,
                      window: Window | None = None) -> Outcome:
    """Verify the ledgered files of `entry` whose day lies in `window`, or that were archived during it
    (all files when `window` is None). Failing count: bad files plus rows repeated across a day's files."""
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
    by_day: dict[date, list[tuple]] = {}
    for day, *file in ledger:
        by_day.setdefault(day, []).append(file)
    problems, repeats, failing = [], [], 0
    for day, files in by_day.items():
        with ExitStack() as stack:  # each object downloaded once, to a spool file (a local file is used in place)
            readable = []
            for file in files:
                problem, copy = _file_problem(stack, root, entry, *file)
                if problem is None:
                    readable.append(copy)
                else:
                    problems.append(problem)
                    failing += 1
            if len(readable) > 1:
                extra, shown = _repeated_in(readable, entry, day)
                failing += extra
                repeats.extend(shown)
    problems.extend(repeats)
    rows = sum(count for _, _, count, *_ in ledger)  # rows_checked: the rows reread, not the files
    return Outcome(check=check, passed=failing == 0, failing=failing, total=rows, query=text, engine=ENGINE,
                   samples=tuple(problems[:MAX_SAMPLES]), seconds=time.perf_counter() - started,
                   details={"files_checked": len(ledger), "days_checked": len(by_day)})

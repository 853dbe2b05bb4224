"""Archive one UTC day of one catalog entry to Parquet and purge exactly those rows, or load it back.

The promise: every row is either in PostgreSQL or in a Parquet file that the ledger references, never
neither. A run holds an advisory lock on (entry, day), then works in one REPEATABLE READ transaction:
partitions that hold only the day's rows are locked against writers first, then the transaction's snapshot
is exported (`pg_export_snapshot()`) and the rows it sees are streamed into Parquet by a second connection
that imports it (stream.py). Each file is fsynced, renamed into place and read back (row count and key
checksum). Only then does the transaction delete the day's remaining rows with the same predicate under
the same snapshot (so exactly the exported rows: rows committed later are invisible to it, and a row
changed meanwhile makes the DELETE fail), check that it deleted as many rows as it exported, detach and
drop the exported partitions, write the ledger and COMMIT. Anything that fails before COMMIT rolls back
and removes the files.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pyarrow.parquet as pq
from psycopg import sql

from forge_assets.days import day_window
from forge_assets.lake import archive_day_directory
from forge_assets.pgcopy import copy_rows
from forge_assets.retention import preflight
from forge_assets.retention.catalog import TableEntry, slice_filter
from forge_assets.retention.columns import archive_columns, schema_of, select_list
from forge_assets.retention.stream import export_conninfo, export_to_parquet, release_freed_memory, reread

# A partition of at least _SPLIT_BLOCKS blocks (8 kB each) is read by EXPORT_READERS connections at once.
EXPORT_READERS = 2
_SPLIT_BLOCKS = 1_024


class RetentionError(RuntimeError):
    """Archiving or restoring was refused or failed; PostgreSQL and the lake are as they were."""


class NotOverdue(RetentionError):
    """The day still has rows younger than the entry's keep_days."""


@dataclass
class DayResult:
    """What one run did to one (entry, day)."""

    entry: str
    day: date
    rows: int = 0
    bytes: int = 0
    files: list[str] = field(default_factory=list)
    partitions_dropped: list[str] = field(default_factory=list)
    seconds: float = 0.0
    skipped: str | None = None
    dry_run: bool = False

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def new_run_id() -> str:
    """A run id that sorts by time and never repeats: it names the files a run writes."""
    return f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def last_overdue_day(entry: TableEntry, now: datetime) -> date:
    """The newest day all of whose rows are older than keep_days at `now`."""
    return (now - timedelta(days=entry.keep_days)).astimezone(timezone.utc).date() - timedelta(days=1)


def _first_day(conn: psycopg.Connection, entry: TableEntry, where: sql.Composable) -> date | None:
    """The UTC day of the entry's oldest row matching `where` (an indexed min()), or None."""
    oldest = conn.execute(sql.SQL("SELECT min({}) FROM {} WHERE {}").format(
        sql.Identifier(entry.time_column), sql.Identifier(entry.table), where)).fetchone()[0]
    if oldest is None:
        return None
    return oldest.date() if entry.naive_utc else oldest.astimezone(timezone.utc).date()


def oldest_day(conn: psycopg.Connection, entry: TableEntry) -> date | None:
    """The UTC day of the entry's oldest row, or None when it holds no rows."""
    found = _first_day(conn, entry, slice_filter(entry))
    conn.rollback()
    return found


def overdue_days(conn: psycopg.Connection, entry: TableEntry, now: datetime, until: date | None = None) -> list[date]:
    """Days from the oldest row to the newest overdue day, or `until` if earlier."""
    first = oldest_day(conn, entry)
    if first is None:
        return []
    last = min(last_overdue_day(entry, now), until or date.max)
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def days_holding_rows(conn: psycopg.Connection, entry: TableEntry, first: date, last: date, limit: int) -> list[date]:
    """Up to `limit` UTC days from `first` through `last` that hold rows of the entry, oldest first: one
    indexed min() per day found, so empty days cost nothing."""
    days: list[date] = []
    while first <= last and len(days) < limit:
        found = _first_day(conn, entry, _day_filter(entry, first, last))
        if found is None:
            break
        days.append(found)
        first = days[-1] + timedelta(days=1)
    conn.rollback()
    return days


def require_overdue(entry: TableEntry, day: date, now: datetime) -> None:
    if day > last_overdue_day(entry, now):
        due = day + timedelta(days=entry.keep_days + 1)
        raise NotOverdue(
            f"{entry.key} keeps {entry.keep_days} days: {day} is not overdue before {due} 00:00 UTC; nothing deleted"
        )


def _day_filter(entry: TableEntry, day: date, last: date | None = None) -> sql.Composed:
    """Rows whose time falls on `day` (through `last`, when given) in UTC, within the entry's slice."""
    start, end = day_window(day, last or day)
    if entry.naive_utc:
        start, end = start.replace(tzinfo=None), end.replace(tzinfo=None)
    column = sql.Identifier(entry.time_column)
    return sql.SQL("{c} >= {s} AND {c} < {e} AND {slice}").format(
        c=column, s=sql.Literal(start), e=sql.Literal(end), slice=slice_filter(entry))


def dry_run_day(conn: psycopg.Connection, entry: TableEntry, day: date, now: datetime) -> DayResult:
    """What archiving the day would move: rows and the bytes of their archived columns in PostgreSQL (the
    sensitive ones are not read: the reader login cannot). Changes nothing."""
    require_overdue(entry, day, now)
    began = time.perf_counter()
    row = sql.SQL(", ").join(sql.Identifier(c.name) for c in archive_columns(conn, entry))
    rows, size = conn.execute(
        sql.SQL("SELECT count(*), coalesce(sum(pg_column_size(ROW({}))), 0) FROM {} WHERE {}").format(
            row, sql.Identifier(entry.table), _day_filter(entry, day))
    ).fetchone()
    conn.rollback()
    return DayResult(entry.key, day, rows=rows, bytes=int(size), seconds=time.perf_counter() - began, dry_run=True)


def archive_day(conn: psycopg.Connection, entry: TableEntry, day: date, lake_root: Path, now: datetime,
                run_id: str | None = None, wait: bool = False) -> DayResult:
    """Archive (or, for strategy 'delete', purge) the rows of `entry` on `day`; see the module docstring.

    Idempotent: a day already archived has no rows left to move. Rows that arrive later go into a new file.
    A second run of the same (entry, day) waits for the first when `wait`, else returns with `skipped` set.
    """
    if conn.autocommit:
        raise ValueError("archive_day needs a connection in transaction mode")
    require_overdue(entry, day, now)
    result = DayResult(entry.key, day)
    began = time.perf_counter()
    preflight.check_archive(conn, entry, _day_directory(entry, day, Path(lake_root).resolve()))
    if not _session_lock(conn, entry, day, wait):
        result.skipped = f"another run is archiving {entry.key} {day}"
        return result
    try:
        _archive_locked(conn, entry, day, Path(lake_root).resolve(), run_id or new_run_id(), result)
    finally:
        _session_unlock(conn, entry, day)
    result.seconds = time.perf_counter() - began
    return result


def _archive_locked(conn, entry: TableEntry, day: date, lake_root: Path, run_id: str, result: DayResult) -> None:
    partitions = _partitions_within(conn, entry, day) if entry.strategy == "drop_partition" else []
    conn.commit()
    written: list[Path] = []
    committing = False
    try:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        if partitions:  # before the snapshot, so that it sees every row a writer committed into them
            conn.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(
                sql.SQL(", ").join(map(sql.Identifier, partitions))))
        snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
        _remove_orphans(conn, entry, day, lake_root)
        superseded = _retire_restored(conn, entry, day, lake_root)
        _refuse_if_referenced(conn, entry, day)
        columns = archive_columns(conn, entry)
        export = _Export(conn, entry, day, columns, lake_root, run_id, snapshot, written)
        for partition in partitions:
            if not _holds_only(conn, entry, partition, day):  # checked again, now that writers are locked out
                raise RetentionError(f"{entry.key}: partition {partition} changed while it was being archived")
            result.files += export.run(_block_ranges(conn, partition, columns), f"{run_id}-{partition}")
        leaves = [leaf for leaf in _leaves(conn, entry) if leaf[1] not in partitions]
        exported = export.rows
        if entry.archives and leaves:
            result.files += export.run(sql.SQL(" UNION ALL ").join(
                sql.SQL("SELECT {} FROM {} WHERE {}").format(select_list(columns), sql.Identifier(*leaf),
                                                             _day_filter(entry, day)) for leaf in leaves), run_id)
        deleted = sum(conn.execute(sql.SQL("DELETE FROM {} WHERE {}").format(
            sql.Identifier(*leaf), _day_filter(entry, day))).rowcount for leaf in leaves)
        if not entry.archives and deleted:
            _ledger(conn, entry, day, run_id, None, deleted, 0, None, [])
        elif deleted != export.rows - exported:
            raise RetentionError(f"{entry.key} {day}: deleted {deleted} rows but exported {export.rows - exported}")
        for partition in partitions:  # last: DETACH locks the parent table until COMMIT
            conn.execute(sql.SQL("ALTER TABLE {} DETACH PARTITION {}").format(
                sql.Identifier(entry.table), sql.Identifier(partition)))
            conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(partition)))
            result.partitions_dropped.append(partition)
        result.rows, result.bytes = _ledger_totals(conn, entry, day, run_id)
        committing = True
        conn.commit()
    except BaseException:
        if not committing:  # nothing references the files: remove them even when the connection is gone
            for path in written:
                path.unlink(missing_ok=True)
            if not conn.broken:
                conn.rollback()
        raise  # a failed COMMIT leaves its file: the ledger decides, and the next run removes orphans
    for path in superseded:
        path.unlink(missing_ok=True)


def _lock_key(entry: TableEntry, day: date) -> tuple[str, int]:
    return entry.key, day.toordinal()


def _session_lock(conn: psycopg.Connection, entry: TableEntry, day: date, wait: bool) -> bool:
    """Take the (entry, day) advisory lock for the session, in a transaction of its own: the archiving
    transaction's snapshot is then taken after the lock, so it sees whatever an earlier run committed."""
    if wait:
        conn.execute("SELECT pg_advisory_lock(hashtext(%s), %s)", _lock_key(entry, day))
        locked = True
    else:
        locked = conn.execute("SELECT pg_try_advisory_lock(hashtext(%s), %s)", _lock_key(entry, day)).fetchone()[0]
    conn.commit()
    return locked


def _session_unlock(conn: psycopg.Connection, entry: TableEntry, day: date) -> None:
    """Release the lock; a connection that was lost released it with its session."""
    if conn.broken or conn.closed:
        return
    conn.rollback()
    conn.execute("SELECT pg_advisory_unlock(hashtext(%s), %s)", _lock_key(entry, day))
    conn.commit()


def _xact_lock(conn: psycopg.Connection, entry: TableEntry, day: date) -> None:
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s), %s)", _lock_key(entry, day))


def _day_directory(entry: TableEntry, day: date, lake_root: Path) -> Path:
    return archive_day_directory(lake_root, entry.source, entry.entry_name, day)


def _ledgered_paths(conn: psycopg.Connection, entry: TableEntry, day: date) -> set[str]:
    rows = conn.execute(
        "SELECT path FROM forge_retention.archive_ledger WHERE entry = %s AND day = %s AND path IS NOT NULL",
        (entry.key, day),
    ).fetchall()
    return {path for (path,) in rows}


def _remove_orphans(conn: psycopg.Connection, entry: TableEntry, day: date, lake_root: Path) -> None:
    """Delete files of the day that no ledger row references (left by a run that died before COMMIT).

    Runs under the (entry, day) lock, so no other run can be between its rename and its COMMIT.
    """
    directory = _day_directory(entry, day, lake_root)
    if not directory.is_dir():
        return
    ledgered = _ledgered_paths(conn, entry, day)
    for path in directory.iterdir():
        if str(path.relative_to(lake_root)) not in ledgered:
            path.unlink(missing_ok=True)


def _retire_restored(conn: psycopg.Connection, entry: TableEntry, day: date, lake_root: Path) -> list[Path]:
    """Files whose rows were restored are superseded by this run's archive of the day: drop their ledger
    rows now (in this transaction) and return the files to delete after COMMIT."""
    rows = conn.execute(
        "DELETE FROM forge_retention.archive_ledger WHERE entry = %s AND day = %s AND restored_at IS NOT NULL "
        "RETURNING path", (entry.key, day)
    ).fetchall()
    return [lake_root / path for (path,) in rows if path]


def _refuse_if_referenced(conn: psycopg.Connection, entry: TableEntry, day: date) -> None:
    """Deleting a row that other rows reference would cascade or null them: archive those tables first."""
    references = conn.execute(
        "SELECT c.conrelid::regclass::text, a.attname, p.attname FROM pg_constraint c "
        "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
        "JOIN pg_attribute p ON p.attrelid = c.confrelid AND p.attnum = c.confkey[1] "
        "WHERE c.contype = 'f' AND c.confrelid = to_regclass(format('%%I', %s::text)) "
        "AND cardinality(c.conkey) = 1", (entry.table,)
    ).fetchall()
    for child, child_column, parent_column in references:
        count = conn.execute(sql.SQL(
            "SELECT count(*) FROM {child} c WHERE c.{fk} IN (SELECT {pk} FROM {parent} WHERE {filter})"
        ).format(child=sql.SQL(child), fk=sql.Identifier(child_column), pk=sql.Identifier(parent_column),
                 parent=sql.Identifier(entry.table), filter=_day_filter(entry, day))).fetchone()[0]
        if count:
            raise RetentionError(
                f"{entry.key} {day}: {count} rows of {child} still reference these rows; "
                f"archive {child} first (nothing deleted)"
            )


def _partitions_within(conn: psycopg.Connection, entry: TableEntry, day: date) -> list[str]:
    """Non-default partitions whose rows all lie within the day (so the whole partition can go)."""
    names = [name for (name,) in conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass(format('%%I', %s::text)) "
        "AND pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT' ORDER BY c.relname", (entry.table,)
    )]
    return [name for name in names if _holds_only(conn, entry, name, day)]


def _holds_only(conn: psycopg.Connection, entry: TableEntry, partition: str, day: date) -> bool:
    """Whether the partition has rows and all of them fall on the day (an indexed min/max)."""
    start, end = day_window(day, day)
    low, high = conn.execute(sql.SQL("SELECT min({t}), max({t}) FROM {p}").format(
        t=sql.Identifier(entry.time_column), p=sql.Identifier(partition))).fetchone()
    return low is not None and low >= start and high < end


def _leaves(conn: psycopg.Connection, entry: TableEntry) -> list[tuple[str, str]]:
    """(schema, table) of every leaf of the entry's table: the table itself when it is not partitioned."""
    return conn.execute(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.oid IN (SELECT relid FROM pg_partition_tree(to_regclass(format('%%I', %s::text))) WHERE isleaf) "
        "OR (c.oid = to_regclass(format('%%I', %s::text)) AND c.relkind <> 'p') ORDER BY c.relname",
        (entry.table, entry.table)).fetchall()


def _block_ranges(conn: psycopg.Connection, partition: str, columns) -> list[sql.Composable]:
    """SELECTs that read the partition in EXPORT_READERS ranges of its blocks (TID range scans), for readers
    that run in parallel; one SELECT for a small partition. The last range is open-ended, so a block added
    after the size was read is still covered."""
    blocks = conn.execute("SELECT pg_relation_size(to_regclass(format('%%I', %s::text))) / "
                          "current_setting('block_size')::bigint", (partition,)).fetchone()[0]
    readers = EXPORT_READERS if blocks >= _SPLIT_BLOCKS else 1
    cuts = [blocks * i // readers for i in range(1, readers)]
    bounds = [sql.SQL("ctid >= {}::tid").format(sql.Literal(f"({cut},0)")) for cut in cuts]
    limits = [sql.SQL("ctid < {}::tid").format(sql.Literal(f"({cut},0)")) for cut in cuts]
    select = sql.SQL("SELECT {} FROM {}").format(select_list(columns), sql.Identifier(partition))
    where = [sql.SQL(" AND ").join(c) for c in zip([sql.SQL("true"), *bounds], [*limits, sql.SQL("true")], strict=True)]
    return [sql.SQL("{} WHERE {}").format(select, w) for w in where]


@dataclass
class _Export:
    """Exports of one run: each query under the run's snapshot into `<day dir>/<stem>.parquet`, verified
    against what was sent and ledgered; `rows` counts what all of them wrote."""

    conn: psycopg.Connection
    entry: TableEntry
    day: date
    columns: list
    lake_root: Path
    run_id: str
    snapshot: str
    written: list[Path]
    rows: int = 0

    def run(self, query: sql.Composable | list[sql.Composable], stem: str) -> list[str]:
        """Export `query` (or several, together, in parallel); return the file's lake-relative path in a list
        (empty when there were no rows)."""
        entry, day = self.entry, self.day
        path = _day_directory(entry, day, self.lake_root) / f"{stem}.parquet"
        if path.exists():
            raise RetentionError(f"{path} already exists; archive files are never overwritten")
        self.written.append(path)
        queries = [q.as_string(self.conn) for q in (query if isinstance(query, list) else [query])]
        exported = export_to_parquet(export_conninfo(self.conn), self.snapshot, queries,
                                     schema_of(self.columns), entry.key_columns, path)
        if exported.rows == 0:
            return []
        rows, checksum = reread(path, entry.key_columns)
        if (rows, checksum) != (exported.rows, exported.checksum):
            raise RetentionError(f"{entry.key} {day}: {path.name} reads back {rows} rows / checksum {checksum:x}, "
                                 f"expected {exported.rows} / {exported.checksum:x}")
        self.rows += rows
        relative = str(path.relative_to(self.lake_root))
        _ledger(self.conn, entry, day, self.run_id, relative, rows, exported.bytes, f"{checksum:016x}",
                [c.name for c in self.columns])
        return [relative]


def _ledger(conn, entry, day, run_id, path, rows, size, checksum, columns) -> None:
    conn.execute(
        "INSERT INTO forge_retention.archive_ledger (entry, day, run_id, strategy, path, row_count, bytes, "
        "key_checksum, columns) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (entry.key, day, run_id, entry.strategy, path, rows, size, checksum, columns),
    )


def _ledger_totals(conn, entry, day, run_id) -> tuple[int, int]:
    rows, size = conn.execute(
        "SELECT coalesce(sum(row_count), 0), coalesce(sum(bytes), 0) FROM forge_retention.archive_ledger "
        "WHERE entry = %s AND day = %s AND run_id = %s", (entry.key, day, run_id)
    ).fetchone()
    return int(rows), int(size)


def restore_day(conn: psycopg.Connection, entry: TableEntry, day: date, lake_root: Path) -> int:
    """Load the day's archived files back into the table, skipping rows whose key is already present;
    mark the files restored in the ledger. Returns the number of rows inserted.

    When the table holds no row of the day (the usual case after a purge) the files are copied straight
    into it: they are disjoint, so there is nothing to skip. Otherwise each file goes through a staging
    table and only rows whose key is absent are inserted. Files stream in row groups (bounded memory).
    """
    if conn.autocommit:
        raise ValueError("restore_day needs a connection in transaction mode")
    lake_root = Path(lake_root).resolve()
    _xact_lock(conn, entry, day)
    files = conn.execute(
        "SELECT id, path, columns FROM forge_retention.archive_ledger WHERE entry = %s AND day = %s "
        "AND path IS NOT NULL AND restored_at IS NULL ORDER BY id", (entry.key, day)
    ).fetchall()
    if not files:
        conn.rollback()
        raise RetentionError(f"{entry.key} {day}: no archived file to restore")
    table = sql.Identifier(entry.table)
    _ensure_range_partition(conn, entry, day)
    straight = not conn.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {} WHERE {})").format(
        table, _day_filter(entry, day))).fetchone()[0]
    inserted = 0
    for ledger_id, path, names in files:
        if straight:
            inserted += copy_rows(conn, entry.table, _file_batches(lake_root / path, names))
        else:
            inserted += _restore_missing(conn, entry, day, f"restore_{ledger_id}", lake_root / path, names)
        conn.execute("UPDATE forge_retention.archive_ledger SET restored_at = now() WHERE id = %s", (ledger_id,))
    conn.commit()
    return inserted


_RESTORE_BATCH_ROWS = 8_192


def _file_batches(path: Path, names: list[str]):
    """A file's rows in small batches, one row group decoded at a time on one thread. (iter_batches grew by
    about 100 B a row read, 640 MB restoring a 5M-row day; threaded reads decode columns ahead.)"""
    parquet = pq.ParquetFile(path)
    try:
        for group in range(parquet.metadata.num_row_groups):
            for batch in parquet.read_row_group(group, columns=names, use_threads=False).to_batches(
                    max_chunksize=_RESTORE_BATCH_ROWS):
                yield {name: batch.column(name) for name in names}
    finally:
        release_freed_memory()


def _restore_missing(conn, entry: TableEntry, day: date, staging_name: str, path: Path, names: list[str]) -> int:
    """Copy a file into a staging table, then insert the rows whose key the day does not hold yet."""
    table, staging = sql.Identifier(entry.table), sql.Identifier(staging_name)
    conn.execute(sql.SQL("CREATE TEMP TABLE {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP").format(staging, table))
    copy_rows(conn, staging_name, _file_batches(path, names))
    conn.execute(sql.SQL("ANALYZE {}").format(staging))  # a temp table has no statistics until analysed
    keys = sql.SQL(" AND ").join(sql.SQL("x.{k} = s.{k}").format(k=sql.Identifier(k)) for k in entry.key_columns)
    column_list = sql.SQL(", ").join(map(sql.Identifier, names))
    return conn.execute(sql.SQL(
        "INSERT INTO {t} ({cols}) SELECT {cols} FROM {s} s WHERE NOT EXISTS (SELECT 1 FROM {t} x WHERE {keys} AND {day})"
    ).format(t=table, cols=column_list, s=staging, keys=keys, day=_day_filter(entry, day))).rowcount


def _ensure_range_partition(conn: psycopg.Connection, entry: TableEntry, day: date) -> None:
    """A table RANGE-partitioned on its time column gets back the day partition a purge dropped."""
    key = conn.execute(
        "SELECT pg_get_partkeydef(to_regclass(format('%%I', %s::text)))", (entry.table,)).fetchone()[0]
    if key is None or key.replace('"', "") != f"RANGE ({entry.time_column})":
        return
    start, end = day_window(day, day)
    try:
        with conn.transaction():  # a savepoint: an existing partition for the day makes this fail harmlessly
            conn.execute(sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})").format(
                sql.Identifier(f"{entry.table}_p{day:%Y%m%d}"), sql.Identifier(entry.table),
                sql.Literal(start), sql.Literal(end)))
    except (psycopg.errors.InvalidObjectDefinition, psycopg.errors.DuplicateTable):
        pass

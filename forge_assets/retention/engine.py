"""Archive one UTC day of one catalog entry to Parquet and purge exactly those rows, or load it back.

The promise: every row is either in PostgreSQL or in a Parquet file that the ledger references, never
neither, and no archive file is ever deleted once ledgered. A run holds an advisory lock on (entry, day)
(and, for `drop_partition`, one on the table, so that runs of two days never lock each other's partitions),
then works in one REPEATABLE READ transaction whose every lock and DDL statement waits at most
`LOCK_TIMEOUT`: partitions that hold only the day's rows are locked against writers first, then the
transaction's snapshot is exported (`pg_export_snapshot()`) and the rows it sees are streamed into Parquet
by connections that import it (stream.py). Each file is read back (row count and key checksum, and the
content checksum of every archived column, which PostgreSQL computes over the same rows under the same
snapshot), then fsynced and renamed into place (on an object store: uploaded while it is read back, then
its SHA-256 in the store must be the verified file's: lake.publish_verified). Only then does the transaction
delete the day's remaining rows with the same predicate under the same snapshot (so exactly the exported rows: rows committed later are
invisible to it, and a row changed meanwhile makes the DELETE fail), check that it deleted as many rows as
it exported, detach and drop the exported partitions, write the ledger and COMMIT. Anything that fails
before COMMIT rolls back and removes the run's own files; nothing is left to do after COMMIT.

A `drop_partition` partition the login does not own (only an owner may DETACH and DROP) goes row by row like
any other rows, and the result says so (`fallback`). A restored day on hold (`restore --hold-days`, the ledger's
`held_until`) is skipped until the hold passes.

Rows the application still needs (the catalog's `unfinished` predicates) are never selected. A day that
was restored keeps its files ledgered: archiving it again deletes the rows identical (whole row, every
archived column) to rows of those files without writing them again, writes the other rows to a new file,
and marks the restored files archived again, so rows the application deleted after the restore stay in
their file.
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
from psycopg.types.json import Jsonb

from forge_assets.days import day_window
from forge_assets.lake import (
    LakeStoreError,
    archive_day_directory,
    file_exists,
    list_directory,
    local_copy,
    location,
    remove_empty_directory,
    remove_file,
)
from forge_assets.pgcopy import copy_rows
from forge_assets.retention import content, preflight
from forge_assets.retention.catalog import TableEntry, due_filter, slice_filter
from forge_assets.retention.columns import ArchiveColumn, archive_columns, schema_of, select_list
from forge_assets.retention.errors import LockTimeout, NotOverdue, RetentionError
from forge_assets.retention.fingerprint import schema_description, schema_fingerprint
from forge_assets.retention.holds import held_days
from forge_assets.retention.load import copy_file, file_batches, identity, load_beside
from forge_assets.retention.ownership import Ledger, check_owner, ledger_of
from forge_assets.retention.stream import (
    Exported,
    Unrepresentable,
    export_conninfo,
    export_to_parquet,
    reread,
)

# A partition of at least _SPLIT_BLOCKS blocks (8 kB each) is read by EXPORT_READERS connections at once.
EXPORT_READERS = 2
_SPLIT_BLOCKS = 1_024
# Every lock and DDL statement of an archive transaction waits at most this long (unless the session set its
# own lock_timeout): the purge gives up and is retried later rather than queue the application behind it.
LOCK_TIMEOUT = "2s"
# Days are Python dates: rows whose time lies outside these (±infinity, before year 1) have no UTC day and
# stay in PostgreSQL, reported, never archived. The last day is one before date.max (its end must exist).
FIRST_DAY = date(1, 1, 1)
LAST_DAY = date(9999, 12, 30)
_TABLE_LOCK_CLASS = 0x466F7267  # "Forg": the first key of the per-table advisory lock
# The content checksum (PostgreSQL's against the file's) before any row is deleted. Only the benchmark turns
# it off, to measure what it costs.
CONTENT_CHECK = True


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
    rearchived: int = 0
    kept_unfinished: int = 0
    fallback: str | None = None

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def new_run_id() -> str:
    """A run id that sorts by time and never repeats: it names the files a run writes."""
    return f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def last_overdue_day(entry: TableEntry, now: datetime) -> date:
    """The newest day all of whose rows are older than keep_days at `now` (the shortest keep_days of the
    entry's rules: older days may hold rows that are due; due_filter says which)."""
    return (now - timedelta(days=entry.shortest_keep_days)).astimezone(timezone.utc).date() - timedelta(days=1)


def _bound(entry: TableEntry, moment: datetime) -> sql.Literal:
    return sql.Literal(moment.replace(tzinfo=None) if entry.naive_utc else moment)


def first_day(conn: psycopg.Connection, entry: TableEntry, first: date, last: date,
               now: datetime | None = None) -> date | None:
    """The UTC day of the entry's oldest row from `first` through `last` (an indexed min()
    over a range, so rows at ±infinity or outside the days Python can name are never read), or None. With
    `now`, an entry with rules counts only the rows due then."""
    first, last = max(first, FIRST_DAY), min(last, LAST_DAY)
    if first > last:
        return None
    start, end = day_window(first, last)
    column = sql.Identifier(entry.time_column)
    due = due_filter(entry, now) if now is not None and entry.selective else sql.SQL("true")
    oldest = conn.execute(sql.SQL("SELECT min({c}) FROM {t} WHERE {c} >= {s} AND {c} < {e} AND {sl} AND {d}").format(
        c=column, t=sql.Identifier(entry.table), s=_bound(entry, start), e=_bound(entry, end),
        sl=slice_filter(entry), d=due)).fetchone()[0]
    if oldest is None:
        return None
    return oldest.date() if entry.naive_utc else oldest.astimezone(timezone.utc).date()


def oldest_day(conn: psycopg.Connection, entry: TableEntry) -> date | None:
    """The UTC day of the entry's oldest row, or None when it holds no rows (with a day)."""
    found = first_day(conn, entry, FIRST_DAY, LAST_DAY)
    conn.rollback()
    return found


def overdue_days(conn: psycopg.Connection, entry: TableEntry, now: datetime, until: date | None = None) -> list[date]:
    """Days from the oldest row to the newest overdue day, or `until` if earlier."""
    first = oldest_day(conn, entry)
    if first is None:
        return []
    last = min(last_overdue_day(entry, now), until or LAST_DAY)
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def days_holding_rows(conn: psycopg.Connection, entry: TableEntry, first: date, last: date,
                      limit: int | None = None, now: datetime | None = None) -> list[date]:
    """Up to `limit` UTC days from `first` through `last` that hold rows of the entry (rows due at `now`, when
    given), oldest first: one indexed min() per day found, so empty days cost nothing (a row in 1900 is one
    more day, not 46,000)."""
    days: list[date] = []
    while first <= last and (limit is None or len(days) < limit):
        found = first_day(conn, entry, first, last, now)
        if found is None:
            break
        days.append(found)
        if found >= LAST_DAY:
            break
        first = found + timedelta(days=1)
    conn.rollback()
    return days


def undated_rows(conn: psycopg.Connection, entry: TableEntry) -> int:
    """Rows of the entry whose time is before the first day Python can name (year 1) or -infinity: overdue
    forever, archived never (there is no day to file them under); they stay in PostgreSQL."""
    start, _ = day_window(FIRST_DAY, FIRST_DAY)
    count = conn.execute(sql.SQL("SELECT count(*) FROM {t} WHERE {c} < {s} AND {sl}").format(
        t=sql.Identifier(entry.table), c=sql.Identifier(entry.time_column), s=_bound(entry, start),
        sl=slice_filter(entry))).fetchone()[0]
    conn.rollback()
    return count


def require_overdue(entry: TableEntry, day: date, now: datetime) -> None:
    if day > last_overdue_day(entry, now):
        try:
            due = f"before {day + timedelta(days=entry.shortest_keep_days + 1)} 00:00 UTC"
        except OverflowError:
            due = "ever"
        raise NotOverdue(f"{entry.key} keeps {entry.shortest_keep_days} days: {day} is not overdue {due}; "
                         "nothing deleted")


def unfinished_filter(entry: TableEntry, alias: str = "t") -> sql.Composable:
    """True for rows the application still needs (the catalog's `unfinished` predicates), on `alias`."""
    terms = []
    for u in entry.unfinished:
        values = sql.Literal(list(u.values))
        if u.parent:
            terms.append(sql.SQL("EXISTS (SELECT 1 FROM {p} p WHERE p.{k} = {a}.{v} AND p.{c}::text = ANY({vals}))").format(
                p=sql.Identifier(u.parent), k=sql.Identifier(u.parent_key), a=sql.Identifier(alias),
                v=sql.Identifier(u.via), c=sql.Identifier(u.column), vals=values))
        else:
            terms.append(sql.SQL("{}.{}::text = ANY({})").format(sql.Identifier(alias), sql.Identifier(u.column), values))
    return sql.SQL(" OR ").join(terms) if terms else sql.SQL("false")


def _day_filter(entry: TableEntry, day: date, last: date | None = None, alias: str = "t",
                finished_only: bool = True, now: datetime | None = None) -> sql.Composed:
    """Rows (of `alias`) whose time falls on `day` (through `last`, when given) in UTC, within the entry's
    slice, less the unfinished ones unless `finished_only` is False, and, with `now`, for an entry with rules
    (policy file), only the rows due then (the others stay for a later run)."""
    start, end = day_window(day, last or day)
    column = sql.SQL("{}.{}").format(sql.Identifier(alias), sql.Identifier(entry.time_column))
    where = sql.SQL("{c} >= {s} AND {c} < {e} AND {slice}").format(
        c=column, s=_bound(entry, start), e=_bound(entry, end), slice=slice_filter(entry))
    if finished_only and entry.unfinished:
        where = sql.SQL("{} AND NOT ({})").format(where, unfinished_filter(entry, alias))
    if now is not None and entry.selective:
        where = sql.SQL("{} AND {}").format(where, due_filter(entry, now, alias))
    return where


def dry_run_day(conn: psycopg.Connection, entry: TableEntry, day: date, now: datetime) -> DayResult:
    """What archiving the day would move: rows and the bytes of their archived columns in PostgreSQL (the
    sensitive ones are not read: the reader login cannot). Changes nothing."""
    require_overdue(entry, day, now)
    began = time.perf_counter()
    row = sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c.name)) for c in archive_columns(conn, entry))
    rows, size = conn.execute(
        sql.SQL("SELECT count(*), coalesce(sum(pg_column_size(ROW({}))), 0) FROM {} t WHERE {}").format(
            row, sql.Identifier(entry.table), _day_filter(entry, day, now=now))
    ).fetchone()
    conn.rollback()
    return DayResult(entry.key, day, rows=rows, bytes=int(size), seconds=time.perf_counter() - began, dry_run=True)


def archive_day(conn: psycopg.Connection, entry: TableEntry, day: date, lake_root: Path, now: datetime,
                run_id: str | None = None, wait: bool = False) -> DayResult:
    """Archive (or, for strategy 'delete', purge) the rows of `entry` on `day`; see the module docstring.

    Idempotent: a day already archived has no rows left to move. Rows that arrive later go into a new file.
    A second run of the same (entry, day) (or, for `drop_partition`, of the same table) waits for the first
    when `wait`, else returns with `skipped` set.
    """
    if conn.autocommit:
        raise ValueError("archive_day needs a connection in transaction mode")
    require_overdue(entry, day, now)
    lake_root = location(lake_root)
    result = DayResult(entry.key, day)
    began = time.perf_counter()
    ledger = preflight.check_archive(conn, entry, _day_directory(entry, day, lake_root), lake_root)
    if not _session_lock(conn, _lock_key(entry, day), wait):
        result.skipped = f"another run is archiving {entry.key} {day}"
        return result
    try:
        held = held_days(conn, entry, now, day)  # under the (entry, day) lock, which a restore takes too
        if held:
            result.skipped = (f"{entry.key} {day}: restored, on hold until {held[day]:%Y-%m-%d %H:%M} UTC "
                              "(restore --hold-days); nothing archived")
            return result
        table_key = (_TABLE_LOCK_CLASS, _hashtext(conn, entry.table)) if entry.strategy == "drop_partition" else None
        if table_key and not _session_lock(conn, table_key, wait):
            result.skipped = f"another run is archiving a day of {entry.table}"
            return result
        try:
            _archive_locked(conn, entry, day, lake_root, run_id or new_run_id(), result, ledger, began, now)
        finally:
            if table_key:
                _session_unlock(conn, table_key)
    finally:
        _session_unlock(conn, _lock_key(entry, day))
    result.seconds = time.perf_counter() - began
    return result


def _hashtext(conn: psycopg.Connection, text: str) -> int:
    value = conn.execute("SELECT hashtext(%s)", (text,)).fetchone()[0]
    conn.rollback()
    return value


def _set_lock_timeout(conn: psycopg.Connection) -> None:
    if conn.execute("SELECT current_setting('lock_timeout')").fetchone()[0] in ("0", "0ms"):
        conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(LOCK_TIMEOUT)))


def _archive_locked(conn, entry: TableEntry, day: date, lake_root: Path, run_id: str, result: DayResult,
                    ledger: Ledger, began: float, now: datetime) -> None:
    partitions, not_owned = _partitions_within(conn, entry, day, now) if entry.strategy == "drop_partition" else ([], [])
    holding = _leaves_holding(conn, entry, day, now)  # here too: each probe's lock ends with this transaction
    size_before = _table_bytes(conn, entry)  # here, not in the archiving transaction: sizing locks every partition
    conn.commit()
    written: list[Path] = []
    committing = False
    try:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        _set_lock_timeout(conn)  # SET is no snapshot: the snapshot is taken below, after the locks
        if partitions:  # before the snapshot, so that it sees every row a writer committed into them
            conn.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(
                sql.SQL(", ").join(map(sql.Identifier, partitions))))
        snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
        preflight.refuse_if_referenced(conn, entry, _day_filter(entry, day, alias="p", now=now), day)
        _remove_orphans(conn, entry, day, lake_root, ledger)
        columns = archive_columns(conn, entry)
        restored = _restored_files(conn, entry, day)
        keep = _RestoredRows(conn, entry, day, columns, lake_root, restored) if restored else None
        export = _Export(conn, entry, day, columns, lake_root, run_id, snapshot, written, ledger)
        for partition in partitions:
            if not _holds_only(conn, entry, partition, day, now):  # checked again, now that writers are locked out
                raise RetentionError(f"{entry.key}: partition {partition} changed while it was being archived")
            if keep is None:
                queries = _block_ranges(conn, partition, columns)
            else:
                queries = keep.select(partition, select_list(columns), sql.SQL("true"))
            before = export.rows
            result.files += export.run(queries, f"{run_id}-{partition}")
            if keep is not None:  # the partition goes whole: its rows are all exported or all in restored files
                held = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(partition))).fetchone()[0]
                if held != export.rows - before + keep.matched_in([partition]):
                    raise RetentionError(f"{entry.key} {day}: partition {partition} holds {held} rows, "
                                         f"{export.rows - before} exported and {keep.matched_in([partition])} in "
                                         "restored files; nothing deleted")
        leaves = [leaf for leaf in _leaves(conn, entry) if leaf[1] not in partitions]
        if keep is None and len(leaves) > 1 and (_range_on_time(conn, entry) or not _may_use_each(conn, leaves)):
            # Through the parent: the planner prunes to the partitions the day can be in, so the purge locks
            # those (and the default) rather than every partition of the table. (Also when the login has its
            # rights on the parent only, as GRANTs give them.)
            leaves = [None]
        elif keep is None and holding is not None:
            # Only the leaves that held rows of the day are read, deleted from and so locked; a row of the day
            # written into another leaf since is neither exported nor deleted: it stays for a later run.
            leaves = [leaf for leaf in leaves if leaf in holding]
        exported = export.rows
        if entry.archives and leaves:
            selects = []
            for leaf in leaves:
                if keep is None:
                    selects.append(sql.SQL("SELECT {} FROM {} t WHERE {}").format(
                        select_list(columns), _relation(entry, leaf), _rest_of_day(entry, day, leaf, partitions, now)))
                else:
                    selects += keep.select(leaf[1], select_list(columns), _day_filter(entry, day, now=now), leaf)
            if selects:
                result.files += export.run(sql.SQL(" UNION ALL ").join(selects), run_id)
        deleted = sum(conn.execute(sql.SQL("DELETE FROM {} t WHERE {}").format(
            _relation(entry, leaf), _rest_of_day(entry, day, leaf, partitions, now))).rowcount for leaf in leaves)
        matched = keep.matched_outside(partitions) if keep else 0
        if not entry.archives and deleted:
            _ledger(conn, entry, day, run_id, None, deleted, 0, None, [], None, None)
        elif deleted != export.rows - exported + matched:
            raise RetentionError(f"{entry.key} {day}: deleted {deleted} rows but exported "
                                 f"{export.rows - exported} and found {matched} in restored files")
        if not_owned and deleted:
            shown = ", ".join(not_owned[:3]) + (f" and {len(not_owned) - 3} more" if len(not_owned) > 3 else "")
            result.fallback = (f"not owner of {shown}: rows archived row by row (DELETE of exactly the archived "
                               "rows), those partitions kept")
        for partition in partitions:  # last: DETACH locks the parent table until COMMIT
            conn.execute(sql.SQL("ALTER TABLE {} DETACH PARTITION {}").format(
                sql.Identifier(entry.table), sql.Identifier(partition)))
            conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(partition)))
            result.partitions_dropped.append(partition)
        if keep:
            result.rearchived = keep.matched
            conn.execute("UPDATE forge_retention.archive_ledger SET restored_at = NULL WHERE id = ANY(%s)",
                         ([ledger_id for ledger_id, *_ in restored],))
        # rows that left PostgreSQL: deleted ones, and those of the dropped partitions
        result.rows = deleted + exported + (keep.matched_in(partitions) if keep else 0)
        result.bytes = export.bytes
        _before_commit(conn)
        committing = True
        conn.commit()
    except psycopg.errors.LockNotAvailable as exc:
        _discard(conn, written)
        raise LockTimeout(f"{entry.key} {day}: gave up waiting for a lock ({' '.join(str(exc).split())}); "
                          "nothing changed, a later run retries") from None
    except BaseException:
        if not committing:  # nothing references the files: remove them even when the connection is gone
            _discard(conn, written)
        raise  # a failed COMMIT leaves its file: the ledger decides, and the next run removes orphans
    finally:
        remove_empty_directory(_day_directory(entry, day, lake_root))  # no empty day= folder is ever left
    if result.rows:  # bookkeeping after COMMIT: the size after is what the dropped partitions gave back
        try:
            _record_run(conn, entry, day, run_id, result, size_before, _table_bytes(conn, entry),
                        time.perf_counter() - began)
            conn.commit()
        except psycopg.Error:
            if not conn.broken:
                conn.rollback()


def _before_commit(conn: psycopg.Connection) -> None:
    """Nothing: a seam where a test looks inside the archiving transaction just before its COMMIT."""


def _relation(entry: TableEntry, leaf: tuple[str, str] | None) -> sql.Composable:
    return sql.Identifier(*leaf) if leaf else sql.Identifier(entry.table)


def _rest_of_day(entry: TableEntry, day: date, leaf: tuple[str, str] | None, partitions: list[str],
                 now: datetime) -> sql.Composable:
    """The day's rows (due at `now`) in a leaf, or (leaf None: through the parent) outside the partitions
    dropped whole."""
    where = _day_filter(entry, day, now=now)
    if leaf is None and partitions:
        oids = sql.SQL(", ").join(sql.SQL("to_regclass(quote_ident({}))").format(sql.Literal(p)) for p in partitions)
        where = sql.SQL("{} AND t.tableoid <> ALL (ARRAY[{}]::oid[])").format(where, oids)
    return where


def _range_on_time(conn: psycopg.Connection, entry: TableEntry) -> bool:
    """Whether the table is RANGE-partitioned on its time column (the planner can prune by the day)."""
    key = conn.execute(
        "SELECT pg_get_partkeydef(to_regclass(format('%%I', %s::text)))", (entry.table,)).fetchone()[0]
    return key is not None and key.replace('"', "") == f"RANGE ({entry.time_column})"


def _discard(conn: psycopg.Connection, written: list[Path]) -> None:
    if not conn.broken and not conn.closed:
        conn.rollback()
    for path in written:
        try:
            remove_file(path)
        except LakeStoreError:  # the store went away: the next run's orphan sweep removes it (ours by name)
            pass


def _table_bytes(conn: psycopg.Connection, entry: TableEntry) -> int:
    """The table's size on disk with its indexes and TOAST, over every partition."""
    return int(conn.execute(
        "SELECT coalesce(sum(pg_total_relation_size(relid)), 0) FROM (SELECT relid FROM pg_partition_tree(to_regclass("
        "format('%%I', %(t)s::text))) UNION SELECT to_regclass(format('%%I', %(t)s::text))) r",
        {"t": entry.table}).fetchone()[0])


def _record_run(conn, entry, day, run_id, result: DayResult, before: int, after: int, seconds: float) -> None:
    conn.execute(
        "INSERT INTO forge_retention.archive_runs (entry, day, run_id, rows_removed, rows_written, rows_rearchived, "
        "rows_kept_unfinished, table_bytes_before, table_bytes_after, seconds) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, "
        "%s, %s)", (entry.key, day, run_id, result.rows, result.rows - result.rearchived, result.rearchived,
                    result.kept_unfinished, before, after, seconds))


def _lock_key(entry: TableEntry, day: date) -> tuple[str, int]:
    return entry.key, day.toordinal()


def _session_lock(conn: psycopg.Connection, key: tuple, wait: bool) -> bool:
    """Take an advisory lock for the session, in a transaction of its own: the archiving transaction's
    snapshot is then taken after the lock, so it sees whatever an earlier run committed. `key` is
    (text, int) for an (entry, day) or (int, int) for a table."""
    function = "pg_advisory_lock" if wait else "pg_try_advisory_lock"
    first = "hashtext(%s)" if isinstance(key[0], str) else "%s"
    locked = conn.execute(f"SELECT {function}({first}, %s)", key).fetchone()[0]  # noqa: S608 (fixed text)
    conn.commit()
    return wait or locked


def _session_unlock(conn: psycopg.Connection, key: tuple) -> None:
    """Release the lock; a connection that was lost released it with its session."""
    if conn.broken or conn.closed:
        return
    conn.rollback()
    first = "hashtext(%s)" if isinstance(key[0], str) else "%s"
    conn.execute(f"SELECT pg_advisory_unlock({first}, %s)", key)  # noqa: S608 (fixed text)
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


def _remove_orphans(conn: psycopg.Connection, entry: TableEntry, day: date, lake_root: Path, ledger: Ledger) -> None:
    """Delete the files of the day that this ledger wrote and never ledgered (left by a run of its own that
    died before COMMIT), temporary ones too. A file of any other name (another deployment's, a README, a
    folder) is never touched. Runs under the (entry, day) lock, so no run of this ledger can be between
    its rename and its COMMIT."""
    directory = _day_directory(entry, day, lake_root)
    ledgered = _ledgered_paths(conn, entry, day)
    for name, regular in list_directory(directory):
        ours, _ = ledger.owns(name)
        if regular and ours and str((directory / name).relative_to(lake_root)) not in ledgered:
            remove_file(directory / name)
    remove_empty_directory(directory)


def _restored_files(conn: psycopg.Connection, entry: TableEntry, day: date) -> list[tuple]:
    return conn.execute(
        "SELECT id, path, columns FROM forge_retention.archive_ledger WHERE entry = %s AND day = %s "
        "AND path IS NOT NULL AND restored_at IS NOT NULL ORDER BY id", (entry.key, day)).fetchall()


def comparable_columns(conn: psycopg.Connection, entry: TableEntry) -> list[str]:
    """The columns whole-row identity compares: archived (not sensitive) and not generated."""
    return [name for (name,) in conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(format('%%I', %s::text)) AND attnum > 0 "
        "AND NOT attisdropped AND attgenerated = '' ORDER BY attnum", (entry.table,)) if name not in entry.sensitive_columns]


class _RestoredRows:
    """The rows of a restored day's files, loaded into a temporary table, and which live rows of the day
    are identical to one of them (a multiset match: a row twice in the files covers two identical live rows).
    Those are deleted without being written again; every other row of the day is exported by ctid."""

    def __init__(self, conn, entry: TableEntry, day: date, columns: list[ArchiveColumn], lake_root: Path,
                 restored: list[tuple]) -> None:
        self.conn, self.entry = conn, entry
        staging = sql.Identifier("forge_rearchive")
        conn.execute(sql.SQL("CREATE TEMP TABLE {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP").format(
            staging, sql.Identifier(entry.table)))
        live = {c.name for c in columns}
        for _, path, names in restored:
            file = lake_root / path
            if not file_exists(file):
                raise RetentionError(f"{entry.key} {day}: the restored file {path} is missing from the lake; "
                                     "nothing deleted")
            with local_copy(file) as local:
                copy_rows(conn, "forge_rearchive", file_batches(local, [n for n in names if n in live]))
        compared = comparable_columns(conn, entry)
        rows = conn.execute(sql.SQL(
            "WITH filed AS (SELECT {si} AS k, count(*) AS c FROM {s} s GROUP BY 1), "
            "live AS (SELECT t.tableoid AS rel, t.ctid AS tid, {ti} AS k, row_number() OVER (PARTITION BY {ti}) AS n "
            "FROM {t} t WHERE {day}) "
            "SELECT rel::regclass::text, array_agg(tid) FILTER (WHERE n > coalesce(c, 0)), "
            "count(*) FILTER (WHERE n <= coalesce(c, 0)) FROM live LEFT JOIN filed USING (k) GROUP BY rel").format(
                si=identity(compared, "s"), s=staging, ti=identity(compared, "t"), t=sql.Identifier(entry.table),
                day=_day_filter(entry, day))).fetchall()
        self.tids = {rel.split(".")[-1].strip('"'): tids or [] for rel, tids, _ in rows}
        self.matches = {rel.split(".")[-1].strip('"'): matched for rel, _, matched in rows}

    @property
    def matched(self) -> int:
        return sum(self.matches.values())

    def matched_in(self, relations: list[str]) -> int:
        return sum(self.matches.get(r, 0) for r in relations)

    def matched_outside(self, relations: list[str]) -> int:
        return self.matched - self.matched_in(relations)

    def select(self, relation: str, select_list: sql.Composable, where: sql.Composable,
               qualified: tuple[str, str] | None = None) -> list[sql.Composable]:
        """The SELECT of the relation's rows of the day that are not in the restored files (none: [])."""
        tids = self.tids.get(relation)
        if not tids:
            return []
        return [sql.SQL("SELECT {} FROM {} t WHERE {} AND t.ctid = ANY({}::tid[])").format(
            select_list, sql.Identifier(*(qualified or (relation,))), where, sql.Literal([str(t) for t in tids]))]


def _partitions_within(conn: psycopg.Connection, entry: TableEntry, day: date, now: datetime,
                       ) -> tuple[list[str], list[str]]:
    """Non-default partitions whose rows all lie within the day and are due (so the whole partition can go), and
    the partitions this login may not drop: only an owner of the table and of the partition may DETACH and DROP
    it, so their rows are archived row by row like any other's (never read here: the login may lack rights on
    them)."""
    found = conn.execute(
        "SELECT c.relname, pg_has_role(current_user, c.relowner, 'USAGE') AND pg_has_role(current_user, p.relowner, "
        "'USAGE') FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent "
        "WHERE i.inhparent = to_regclass(format('%%I', %s::text)) "
        "AND pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT' ORDER BY c.relname", (entry.table,)).fetchall()
    droppable = [name for name, owned in found if owned and _holds_only(conn, entry, name, day, now)]
    return droppable, [name for name, owned in found if not owned]


def _leaves_holding(conn: psycopg.Connection, entry: TableEntry, day: date, now: datetime,
                    ) -> list[tuple[str, str]] | None:
    """For a table partitioned on another column than its time (main_jobevent: LIST by job), the leaves that hold
    rows of the day, found by one indexed probe per leaf before the archiving transaction, so that the purge
    locks those rather than every partition. None: not such a table, or a login without rights on the leaves
    (the purge then goes through the table)."""
    leaves = _leaves(conn, entry)
    if len(leaves) < 2 or _range_on_time(conn, entry) or not _may_use_each(conn, leaves):
        return None
    return [leaf for leaf in leaves if conn.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {} t WHERE {})").format(
        sql.Identifier(*leaf), _day_filter(entry, day, now=now))).fetchone()[0]]


def _may_use_each(conn: psycopg.Connection, leaves: list[tuple[str, str]]) -> bool:
    """Whether the login may SELECT and DELETE each leaf directly (GRANTs on a partitioned table do not reach
    its partitions)."""
    return conn.execute(
        "SELECT bool_and(has_table_privilege(format('%%I.%%I', s, t), 'SELECT') AND "
        "has_table_privilege(format('%%I.%%I', s, t), 'DELETE')) FROM unnest(%s::text[], %s::text[]) AS l(s, t)",
        ([schema for schema, _ in leaves], [name for _, name in leaves])).fetchone()[0]


def _holds_only(conn: psycopg.Connection, entry: TableEntry, partition: str, day: date, now: datetime) -> bool:
    """Whether the partition has rows, all of them fall on the day (an indexed min/max), none is unfinished
    work and, for an entry with rules, all are due (a partition holding rows kept longer goes row by row)."""
    start, end = day_window(day, day)
    within = conn.execute(sql.SQL("SELECT min({t}) >= {s} AND max({t}) < {e} FROM {p}").format(
        t=sql.Identifier(entry.time_column), p=sql.Identifier(partition), s=_bound(entry, start),
        e=_bound(entry, end))).fetchone()[0]
    if not within:
        return False
    if entry.slice_column or entry.unfinished or entry.selective:
        others = conn.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {p} t WHERE ({f}) IS NOT TRUE)").format(
            p=sql.Identifier(partition), f=_day_filter(entry, day, now=now))).fetchone()[0]
        return not others
    return True


def _leaves(conn: psycopg.Connection, entry: TableEntry) -> list[tuple[str, str]]:
    """(schema, table) of every leaf of the entry's table: the table itself when it is not partitioned. Read
    from pg_inherits (pg_partition_tree would lock every partition for the rest of the transaction)."""
    return conn.execute(
        "WITH RECURSIVE tree(oid) AS (SELECT to_regclass(format('%%I', %s::text))::oid UNION ALL "
        "SELECT i.inhrelid FROM pg_inherits i JOIN tree ON i.inhparent = tree.oid) "
        "SELECT n.nspname, c.relname FROM tree JOIN pg_class c ON c.oid = tree.oid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind <> 'p' ORDER BY c.relname",
        (entry.table,)).fetchall()


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
    select = sql.SQL("SELECT {} FROM {} t").format(select_list(columns), sql.Identifier(partition))
    where = [sql.SQL(" AND ").join(c) for c in zip([sql.SQL("true"), *bounds], [*limits, sql.SQL("true")], strict=True)]
    return [sql.SQL("{} WHERE {}").format(select, w) for w in where]


@dataclass
class _Export:
    """Exports of one run: each query under the run's snapshot into `<day dir>/<ledger>-<stem>.parquet`,
    verified against what was sent and against PostgreSQL's content checksum, and ledgered; `rows` and
    `bytes` count what all of them wrote."""

    conn: psycopg.Connection
    entry: TableEntry
    day: date
    columns: list
    lake_root: Path
    run_id: str
    snapshot: str
    written: list[Path]
    ledger: Ledger
    rows: int = 0
    bytes: int = 0

    def run(self, query: sql.Composable | list[sql.Composable], stem: str) -> list[str]:
        """Export `query` (or several, together, in parallel); return the file's lake-relative path in a list
        (empty when there were no rows)."""
        entry, day = self.entry, self.day
        if isinstance(query, list) and not query:
            return []
        path = _day_directory(entry, day, self.lake_root) / self.ledger.file_name(stem)
        if file_exists(path):
            raise RetentionError(f"{path} already exists; archive files are never overwritten")
        self.written.append(path)
        queries = query if isinstance(query, list) else [query]
        hashed = CONTENT_CHECK  # PostgreSQL hashes every row in the export's own scan (content.hashed_query)
        texts = [(content.hashed_query(self.columns, q) if hashed else q).as_string(self.conn) for q in queries]
        conninfo = export_conninfo(self.conn)
        columns = list(self.columns)

        def verify(file: Path, exported: Exported) -> None:
            """The written file holds the rows sent (key checksum) and the values PostgreSQL hashed (content
            checksum); on an object store it is checked while it uploads, and the store's copy must then
            have its SHA-256 (lake.publish_verified)."""
            if hashed:
                rows, checksum, found = content.read_back(file, columns, entry.key_columns)
            else:
                (rows, checksum), found = reread(file, entry.key_columns), None
            if (rows, checksum) != (exported.rows, exported.checksum):
                raise RetentionError(f"{entry.key} {day}: {path.name} reads back {rows} rows / checksum "
                                     f"{checksum:x}, expected {exported.rows} / {exported.checksum:x}")
            in_postgres = content.Checksum(exported.rows, exported.hashes) if hashed else None
            if found != in_postgres:
                raise RetentionError(f"{entry.key} {day}: {path.name} holds other values than PostgreSQL "
                                     f"(content checksum {found.hex()} read back, {in_postgres.hex()} in "
                                     "PostgreSQL); nothing deleted")

        while True:
            try:
                exported = export_to_parquet(conninfo, self.snapshot, texts, schema_of(columns), entry.key_columns,
                                             path, content.HASH_COLUMN if hashed else None, verify)
                break
            except Unrepresentable as exc:  # e.g. numeric NaN in a decimal column: keep that column as text
                columns = [ArchiveColumn(c.name, c.pg_type, content.TEXT) if c.name == exc.column else c
                           for c in columns]
        if exported.rows == 0:
            return []
        self.rows += exported.rows
        self.bytes += exported.bytes
        relative = str(path.relative_to(self.lake_root))
        in_file = content.Checksum(exported.rows, exported.hashes).hex() if hashed else None  # verified equal
        _ledger(self.conn, entry, day, self.run_id, relative, exported.rows, exported.bytes,
                f"{exported.checksum:016x}", [c.name for c in columns], in_file, exported.sha256, schema_of(columns))
        return [relative]


def _ledger(conn, entry, day, run_id, path, rows, size, checksum, columns, content_checksum, sha256,
            schema=None) -> None:
    """One ledger row; an archive file's row records its schema and the schema's fingerprint."""
    fingerprint = schema_fingerprint(schema) if schema is not None else None
    described = Jsonb(schema_description(schema)) if schema is not None else None
    conn.execute(
        "INSERT INTO forge_retention.archive_ledger (entry, day, run_id, strategy, path, row_count, bytes, "
        "key_checksum, columns, content_checksum, sha256, schema_fingerprint, file_schema) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (entry.key, day, run_id, entry.strategy, path, rows, size, checksum, columns, content_checksum, sha256,
         fingerprint, described),
    )


@dataclass
class RestoreResult:
    """What a restore did: rows loaded, rows already present (identical), columns of the files the table no
    longer takes (their values stay in the files), where the rows went and until when the day is on hold."""

    rows: int = 0
    present: int = 0
    files: int = 0
    skipped_columns: list[str] = field(default_factory=list)
    table: str = ""
    held_until: datetime | None = None


def restore_day(conn: psycopg.Connection, entry: TableEntry, day: date, lake_root: Path) -> int:
    """Load the day's archived files back into the table (see `restore`); the number of rows inserted."""
    return restore(conn, entry, day, lake_root).rows


def restore(conn: psycopg.Connection, entry: TableEntry, day: date, lake_root: Path,
            into: str | None = None, hold_days: int = 0, now: datetime | None = None) -> RestoreResult:
    """Load the day's archived files back into the entry's table, or into a new table `into` made from the
    files' schema; mark the files restored (not for `into`: the live table did not get the rows back), held
    `hold_days` days after `now` (default: the current time) when given: no archive run takes the day before.

    Columns map by name: a column of the file the table no longer has (renamed, dropped) or cannot take
    (generated) is left out and reported; its values stay in the file, which stays ledgered. A row is skipped
    only when an identical row (every loaded column) is already in the day, as a multiset. When the table
    holds no row of the day (the usual case after a purge) the files are copied straight into it; otherwise
    each file goes through a staging table. Files stream in row groups (bounded memory).
    """
    if conn.autocommit:
        raise ValueError("restore_day needs a connection in transaction mode")
    lake_root = location(lake_root)
    check_owner(lake_root, entry.source, ledger_of(conn))
    _xact_lock(conn, entry, day)
    files = conn.execute(
        "SELECT id, path, columns FROM forge_retention.archive_ledger WHERE entry = %s AND day = %s "
        "AND path IS NOT NULL AND (restored_at IS NULL OR %s) ORDER BY id", (entry.key, day, into is not None)
    ).fetchall()
    if not files:
        conn.rollback()
        raise RetentionError(f"{entry.key} {day}: no archived file to restore")
    for _, path, _ in files:
        if not file_exists(lake_root / path):
            conn.rollback()
            raise RetentionError(f"{entry.key} {day}: the ledgered file {path} is missing from the lake; "
                                 "nothing restored")
    try:
        if into is not None:
            result = _restore_into(conn, entry, into, [lake_root / p for _, p, _ in files])
        else:
            held_until = (now or datetime.now(timezone.utc)) + timedelta(days=hold_days) if hold_days else None
            result = _restore_live(conn, entry, day, lake_root, files, held_until)
        conn.commit()
    except psycopg.Error as exc:
        if conn.broken:
            raise
        conn.rollback()
        raise RetentionError(f"{entry.key} {day}: {into or entry.table} does not take the archived rows "
                             f"({_first_line(exc)}); nothing restored. `restore --into NEW_TABLE` loads them into "
                             "a table made from the files' schema") from None
    return result


def _first_line(exc: BaseException) -> str:
    return " ".join(str(exc).strip().splitlines()[0].split()) if str(exc).strip() else type(exc).__name__


def _live_columns(conn: psycopg.Connection, table: str) -> dict[str, tuple[bool, bool]]:
    """name -> (generated, NOT NULL without a default) of the table's columns; empty if there is no table."""
    return {name: (generated, required) for name, generated, required in conn.execute(
        "SELECT attname, attgenerated <> '', attnotnull AND NOT atthasdef AND attidentity = '' FROM pg_attribute "
        "WHERE attrelid = to_regclass(format('%%I', %s::text)) AND attnum > 0 AND NOT attisdropped", (table,))}


def _restore_live(conn, entry: TableEntry, day: date, lake_root: Path, files: list[tuple],
                  held_until: datetime | None) -> RestoreResult:
    live = _live_columns(conn, entry.table)
    if not live:
        raise RetentionError(f"{entry.key} {day}: table {entry.table!r} does not exist any more; nothing restored. "
                             "`restore --into NEW_TABLE` loads the rows into a table made from the files' schema")
    result = RestoreResult(table=entry.table, held_until=held_until)
    in_files = {name for _, _, names in files for name in names}
    required = sorted(name for name, (generated, needed) in live.items()
                      if needed and not generated and name not in in_files and name not in entry.sensitive_columns)
    if required:
        raise RetentionError(f"{entry.key} {day}: {entry.table} now requires column(s) {', '.join(required)}, which "
                             "the archived files do not have; nothing restored. `restore --into NEW_TABLE` loads "
                             "them into a table made from the files' schema")
    if entry.strategy == "drop_partition":  # the table lock: never between an archive's partition locks
        conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_TABLE_LOCK_CLASS, entry.table))
    table = sql.Identifier(entry.table)
    _ensure_range_partition(conn, entry, day)
    straight = not conn.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {} t WHERE {})").format(
        table, _day_filter(entry, day, finished_only=False))).fetchone()[0]
    skipped: set[str] = set()
    for ledger_id, path, names in files:
        loadable = [n for n in names if n in live and not live[n][0]]
        skipped |= {n for n in names if n not in loadable}
        with local_copy(lake_root / path) as local:  # an object is streamed to a spool file first
            if straight:
                result.rows += _copy_checked(conn, entry, entry.table, local, loadable)
            else:
                inserted, present = load_beside(
                    conn, entry.table, _day_filter(entry, day, finished_only=False), local, loadable,
                    entry.key_columns, lambda table, file, names: _copy_checked(conn, entry, table, file, names))
                result.rows += inserted
                result.present += present
        result.files += 1
        conn.execute("UPDATE forge_retention.archive_ledger SET restored_at = now(), held_until = %s WHERE id = %s",
                     (held_until, ledger_id))
    result.skipped_columns = sorted(skipped)
    return result


def _copy_checked(conn, entry: TableEntry, table: str, path: Path, names: list[str]) -> int:
    """COPY a file into a table, turning "no partition for the row" into a clear refusal."""
    try:
        with conn.transaction():
            return copy_file(conn, table, path, names)
    except psycopg.errors.CheckViolation as exc:
        if "no partition" not in str(exc):
            raise
        raise RetentionError(f"{entry.key}: no partition of {table} accepts the archived rows ({_first_line(exc)}); "
                             "create the partition (or a DEFAULT partition) and restore again, or use "
                             "`restore --into NEW_TABLE`; nothing restored") from None


def _restore_into(conn, entry: TableEntry, into: str, paths: list[Path]) -> RestoreResult:
    """Create `into` from the first file's schema (each column's PostgreSQL type, kept in the file; text when
    that type is gone) and copy every file into it."""
    if _live_columns(conn, into):
        raise RetentionError(f"{entry.key}: table {into!r} exists; --into creates a new table")
    with local_copy(paths[0]) as first:
        schema = pq.read_schema(first)
    definitions = []
    for field_ in schema:
        pg_type = (field_.metadata or {}).get(b"pg_type", b"text").decode()
        known = conn.execute("SELECT to_regtype(%s) IS NOT NULL", (pg_type,)).fetchone()[0]
        definitions.append(sql.SQL("{} {}").format(sql.Identifier(field_.name), sql.SQL(pg_type if known else "text")))
    conn.execute(sql.SQL("CREATE TABLE {} ({})").format(sql.Identifier(into), sql.SQL(", ").join(definitions)))
    result = RestoreResult(table=into)
    for path in paths:
        with local_copy(path) as local:  # an object is streamed to a spool file first
            names = [n for n in pq.read_schema(local).names if n in schema.names]
            result.rows += copy_rows(conn, into, file_batches(local, names))
        result.files += 1
    return result


def _ensure_range_partition(conn: psycopg.Connection, entry: TableEntry, day: date) -> None:
    """A table RANGE-partitioned on its time column gets back the day partition a purge dropped."""
    if not _range_on_time(conn, entry):
        return
    start, end = day_window(day, day)
    try:
        with conn.transaction():  # a savepoint: an existing partition for the day makes this fail harmlessly
            conn.execute(sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})").format(
                sql.Identifier(f"{entry.table}_p{day:%Y%m%d}"), sql.Identifier(entry.table),
                sql.Literal(start), sql.Literal(end)))
    except (psycopg.errors.InvalidObjectDefinition, psycopg.errors.DuplicateTable):
        pass

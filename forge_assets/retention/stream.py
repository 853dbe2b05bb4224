"""Exporting rows of a PostgreSQL snapshot into a Parquet file fast and in bounded memory, and checksumming
row keys.

The export runs on its own connection through the ADBC PostgreSQL driver, which asks for
`COPY (query) TO STDOUT (FORMAT binary)` and parses it in C into Arrow record batches. That connection
imports the archiving transaction's snapshot (`pg_export_snapshot()`), so it reads exactly the rows the
archiving transaction sees and later deletes; several such connections may read parts of one file's rows
(the engine splits a large partition into block ranges). Decoding and Parquet encoding overlap: reader
threads pull batches from the driver while the calling thread checksums and encodes them (both release the
GIL). Memory is bounded by the queue (one batch per reader) plus one row group in flight, whatever the
row count.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.abc
import queue
import re
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import adbc_driver_manager
import adbc_driver_postgresql
import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from psycopg.conninfo import make_conninfo

from forge_assets.lake import publish, publish_verified, temporary_sibling

# Archive files favour write speed: zstd level 1 without dictionaries is as small as level 3 with them on
# job events (18 vs 20 MB for 180k rows) at half the CPU. Memory is mostly the row group being assembled and
# its encoded column chunks: for job events (~1 kB a row in Arrow) 65,536-row groups peaked ~56 MB above
# 32,768-row ones, and those 20-30 MB above 16,384-row ones (whole 2M-row table: 241-246 vs 216-231 MB) at
# no measurable cost in speed.
ROW_GROUP_ROWS = 16_384
ARCHIVE_PARQUET = {"compression": "zstd", "compression_level": 1, "use_dictionary": False}
_BATCH_BYTES = 4 << 20  # the driver's record batch size hint
_MIX = np.uint64(0x9E3779B97F4A7C15)


def _lean_memory_pool() -> pa.MemoryPool:
    """jemalloc where the wheel has it, else the system allocator: both gave back memory sooner than Arrow's
    default mimalloc here (exporting a 200k-row job-event day: 187-190 MB peak RSS against 214 MB; reading
    an archive file: 227 MB against 288 MB)."""
    try:
        return pa.jemalloc_memory_pool()
    except NotImplementedError:
        return pa.system_memory_pool()


def _glibc_malloc_trim():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to trim
        return None


_MALLOC_TRIM = _glibc_malloc_trim()


def release_freed_memory() -> None:
    """Hand memory freed by the driver's batches (plain malloc, one arena per reader thread) back to the
    system. Without it the resident set crept up by about 5 MB per export (archiving day after day in one
    process: 252 MB peak after five 200k-row days, 215 MB with it)."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def skip_pandas_probe() -> None:
    """Keep pyarrow from importing pandas (~30 MB of peak RSS) in a process that runs only the engine (the
    CLI's archive and restore). pyarrow imports pandas the first time it turns Python objects into Arrow, only
    to ask whether they are pandas objects, and the engine never hands it one: the question is answered once
    with pandas hidden. pyarrow still imports pandas when asked for it (`to_pandas`, `from_pandas`). Not for
    processes that hand pandas objects to `pa.array` (Dagster's, the checks')."""
    if "pandas" in sys.modules:
        return
    sys.meta_path.insert(0, _HIDE_PANDAS)
    try:
        pa.array([0])
    finally:
        sys.meta_path.remove(_HIDE_PANDAS)


class _HidePandas(importlib.abc.MetaPathFinder):
    """An import finder for which pandas is not installed."""

    def find_spec(self, name, path, target=None):
        if name == "pandas":
            raise ModuleNotFoundError("hidden from pyarrow's probe", name=name)
        return None


_HIDE_PANDAS = _HidePandas()


# Process-wide: Arrow frees each buffer into the pool that allocated it, so switching is safe at any time.
pa.set_memory_pool(_lean_memory_pool())
_SNAPSHOT_ID = re.compile(r"[0-9A-F]+-[0-9A-F]+(-[0-9]+)?")


class ExportError(RuntimeError):
    """Reading the snapshot failed; the message names the cause."""


def _mix(values: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads every input bit over the 64-bit result (uint64, wrapping)."""
    with np.errstate(over="ignore"):
        z = values + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def _string_hashes(array: pa.Array) -> np.ndarray:
    """A 64-bit hash per string, vectorised over the UTF-8 bytes (polynomial in the byte values)."""
    array = pc.cast(array, pa.large_string())
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)[array.offset:array.offset + len(array) + 1]
    data = np.frombuffer(array.buffers()[2] or b"", dtype=np.uint8)[offsets[0]:offsets[-1]].astype(np.uint64)
    lengths = np.diff(offsets)
    position = np.arange(len(data)) - np.repeat(offsets[:-1] - offsets[0], lengths)
    with np.errstate(over="ignore"):
        powers = np.cumprod(np.full(max(int(lengths.max(initial=0)), 1), np.uint64(0x100000001B3)))
        weighted = (data + np.uint64(1)) * powers[position]
    sums = np.zeros(len(lengths), dtype=np.uint64)
    nonempty = lengths > 0
    if nonempty.any():
        sums[nonempty] = np.add.reduceat(weighted, (offsets[:-1] - offsets[0])[nonempty])
    return _mix(sums ^ lengths.astype(np.uint64))


def _column_hashes(column: pa.Array) -> np.ndarray:
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        hashed = _string_hashes(column)
    else:
        column = pc.cast(column, pa.int64())  # integer, temporal and boolean keys alike
        values = np.frombuffer(column.buffers()[1], dtype=np.int64)[column.offset:column.offset + len(column)]
        hashed = _mix(values.view(np.uint64))  # null slots hold arbitrary values: overwritten below
    if column.null_count:
        hashed[np.asarray(column.is_null())] = np.uint64(0x6E756C6C)  # "null"
    return hashed


def key_checksum(data: pa.Table | pa.RecordBatch, key_columns: tuple[str, ...]) -> int:
    """An order-independent 64-bit checksum of the rows' keys: the wrapping sum of per-row key hashes."""
    if data.num_rows == 0:
        return 0
    combined = np.zeros(data.num_rows, dtype=np.uint64)
    for name in key_columns:
        column = data.column(name)
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        with np.errstate(over="ignore"):
            combined = _mix(combined * _MIX ^ _column_hashes(column))
    return int(combined.sum(dtype=np.uint64))


def sum_of_hashes(column: pa.Array) -> int:
    """The wrapping 64-bit sum of a column of row hashes (PostgreSQL's signed int8)."""
    values = np.asarray(column.cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)
    return int(values.view(np.uint64).sum(dtype=np.uint64))


def combine_checksums(*checksums: int) -> int:
    """The checksum of the union of disjoint row sets."""
    return sum(checksums) % 2**64


@dataclass(frozen=True)
class Exported:
    """What an export wrote: rows, key checksum and bytes on disk (0 rows: no file)."""

    rows: int
    checksum: int
    bytes: int
    hashes: int = 0
    sha256: str | None = None  # when verified and published by `publish_verified`


def export_conninfo(conn: psycopg.Connection) -> str:
    """Connection parameters (password included) for a second connection to the same database."""
    return make_conninfo(conn.info.dsn, password=conn.info.password) if conn.info.password else conn.info.dsn


class _Done:
    """The reader thread's last word: the end of the stream, or why it stopped."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


_databases: dict[str, adbc_driver_manager.AdbcDatabase] = {}
_databases_lock = threading.Lock()


def _database(conninfo: str) -> adbc_driver_manager.AdbcDatabase:
    """The driver's database handle for `conninfo`, made once per process: making one reads PostgreSQL's
    type catalog (about 0.1-0.2 s), a connection from it takes a few milliseconds."""
    with _databases_lock:
        if conninfo not in _databases:
            _databases[conninfo] = adbc_driver_postgresql.connect(conninfo)
        return _databases[conninfo]


def _execute(statement: adbc_driver_manager.AdbcStatement, query: str) -> None:
    statement.set_sql_query(query)
    statement.execute_update()


class _Reader:
    """One connection that imports the snapshot and streams one query's batches into a shared queue."""

    def __init__(self, conninfo: str, snapshot: str, query: str, offer) -> None:
        self.connection = adbc_driver_manager.AdbcConnection(_database(conninfo))  # autocommit: BEGIN is ours
        self.statement = adbc_driver_manager.AdbcStatement(self.connection)
        self.statement.set_options(
            **{adbc_driver_postgresql.StatementOptions.BATCH_SIZE_HINT_BYTES.value: str(_BATCH_BYTES)})
        self.snapshot, self.query, self.offer = snapshot, query, offer
        self.thread = threading.Thread(target=self.read, name="forge-export-reader", daemon=True)

    def read(self) -> None:
        try:
            _execute(self.statement, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            _execute(self.statement, f"SET TRANSACTION SNAPSHOT '{self.snapshot}'")
            self.statement.set_sql_query(self.query)
            stream, _ = self.statement.execute_query()
            with pa.RecordBatchReader._import_from_c(stream.address) as reader:
                for batch in reader:
                    if not self.offer(batch):
                        return
            self.offer(_Done())
        except BaseException as exc:  # handed to the consumer, which raises it
            self.offer(_Done(exc))

    def cancel(self) -> None:
        try:
            self.statement.cancel()  # interrupts a read in progress; thread-safe by the ADBC spec
        except adbc_driver_manager.Error:
            pass  # nothing to cancel

    def close(self) -> None:
        try:
            self.statement.close()
        finally:
            self.connection.close()  # the read-only transaction ends with the session


def put_unless_stopped(buffer: queue.Queue, item, stop: threading.Event) -> bool:
    """Put `item` into a bounded queue for a consumer thread, waiting while it is full; False (not put) once
    `stop` is set, so a producer never blocks on a consumer that has gone."""
    while not stop.is_set():
        try:
            buffer.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


@contextmanager
def ahead(items: Iterator, name: str, depth: int = 2) -> Iterator[Iterator]:
    """`items`, produced by a thread at most `depth` ahead of the consumer (bounded memory); the producer's
    error is raised in the consumer, and the producer stops when the consumer does."""
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item) -> bool:
        return put_unless_stopped(buffer, item, stop)

    def produce() -> None:
        try:
            for item in items:
                if not offer(item):
                    return
            offer(_END)
        except BaseException as exc:  # handed to the consumer, raised there
            offer(_Failed(exc))

    def consume() -> Iterator:
        while (item := buffer.get()) is not _END:
            if isinstance(item, _Failed):
                raise item.error
            yield item

    producer = threading.Thread(target=produce, name=name, daemon=True)
    producer.start()
    try:
        yield consume()
    finally:
        stop.set()
        producer.join()


@dataclass(frozen=True)
class _Failed:
    error: BaseException


_END = object()


@contextmanager
def snapshot_batches(conninfo: str, snapshot: str, queries: list[str]) -> Iterator[Iterator[pa.RecordBatch]]:
    """Record batches of `queries` as seen by `snapshot`, each query read by its own connection and thread.

    The batches of all queries arrive interleaved through one small queue. Leaving the block early (an
    error in the consumer) or an error in any reader cancels every query and joins every thread, so nothing
    keeps running; the first reader error is raised in the consumer as one ExportError.
    """
    if not _SNAPSHOT_ID.fullmatch(snapshot):
        raise ExportError(f"not a snapshot id: {snapshot!r}")
    batches: queue.Queue = queue.Queue(maxsize=len(queries))
    stop, finished = threading.Event(), threading.Event()

    def offer(item) -> bool:
        return put_unless_stopped(batches, item, stop)

    def consume() -> Iterator[pa.RecordBatch]:
        running = len(readers)
        while running:
            item = batches.get()
            if isinstance(item, _Done):
                running -= 1
                if item.error is not None:
                    raise ExportError(f"reading the snapshot failed: {item.error}") from item.error
                continue
            yield item
        finished.set()

    readers: list[_Reader] = []
    try:
        for query in queries:
            try:
                readers.append(_Reader(conninfo, snapshot, query, offer))
            except adbc_driver_manager.Error as exc:  # refused: connection limit, server gone, ...
                raise ExportError(f"cannot open an export connection: {' '.join(str(exc).split())}") from None
        for reader in readers:
            reader.thread.start()
        yield consume()
    finally:
        if not finished.is_set():
            stop.set()
            for reader in readers:
                reader.cancel()
        for reader in readers:
            if reader.thread.ident is not None:
                reader.thread.join()
            reader.close()


class Unrepresentable(ExportError):
    """A value the file's Arrow type cannot hold (numeric NaN in a decimal column): the export is redone with
    that column in its text form."""

    def __init__(self, column: str, reason: str) -> None:
        super().__init__(f"column {column}: {reason}")
        self.column = column


# The ADBC driver adds the 2000-01-01 epoch offset to PostgreSQL's ±infinity (INT64_MAX / INT64_MIN µs,
# INT32_MAX / INT32_MIN days) and wraps around. Those wrapped values lie far below anything PostgreSQL can
# hold (4714 BC), so they are recognised and stored as the ±infinity Arrow readers use (DuckDB's: ±INT64_MAX
# µs, ±INT32_MAX days).
_TS_WRAPPED = {np.int64(-9222425352054775809): np.iinfo(np.int64).max,
               np.int64(-9222425352054775808): -np.iinfo(np.int64).max}
_DATE_WRAPPED = {np.int32(-2147472692): np.iinfo(np.int32).max, np.int32(-2147472691): -np.iinfo(np.int32).max}
_TS_FLOOR = -211_000_000_000_000_000  # µs since 1970, below PostgreSQL's first timestamp (4714-11-24 BC)
_DATE_FLOOR = -2_450_000                # days since 1970, likewise


def _infinities_restored(column: pa.Array) -> pa.Array:
    """A temporal column with the driver's wrapped ±infinity replaced by canonical ±infinity."""
    if pa.types.is_timestamp(column.type):
        raw, wrapped, floor, width = pa.int64(), _TS_WRAPPED, _TS_FLOOR, np.int64
    elif pa.types.is_date32(column.type):
        raw, wrapped, floor, width = pa.int32(), _DATE_WRAPPED, _DATE_FLOOR, np.int32
    else:
        return column
    values = column.view(raw)
    low = pc.min(values).as_py()
    if low is None or low >= floor:
        return column
    numbers = np.array(values.fill_null(0).to_numpy(zero_copy_only=False), dtype=width)
    for found, canonical in wrapped.items():
        numbers[numbers == found] = canonical
    mask = np.asarray(column.is_null()) if column.null_count else None
    return pa.array(numbers, type=raw, mask=mask).view(column.type)


def _conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """The batch in the file's schema: text numerics cast to decimal, wrapped infinities canonical."""
    columns = []
    for column, field in zip(batch.columns, schema, strict=True):
        if pa.types.is_decimal(field.type) and not pa.types.is_decimal(column.type):
            try:
                column = column.cast(field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise Unrepresentable(field.name, str(exc)) from None
        else:
            column = _infinities_restored(column.cast(field.type))
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def export_to_parquet(conninfo: str, snapshot: str, query: str | list[str], schema: pa.Schema,
                      key_columns: tuple[str, ...], path: Path, hash_column: str | None = None,
                      verify: Callable[[Path, Exported], None] | None = None) -> Exported:
    """Write the rows `query` returns under `snapshot` into a Parquet file at `path` (several queries:
    their rows together, read in parallel).

    Row groups of ROW_GROUP_ROWS rows are encoded as batches arrive. The file is written under a temporary
    name (its directory is made only then: no rows, no directory; a local spool file for an object store)
    and published create-only (rename, or one conditional PUT) by the lake; nothing is left behind when there
    are no rows or anything fails. `hash_column`: the queries' last column, PostgreSQL's hash of each row (the
    content checksum), summed into `hashes`, not written. `verify(file, exported)` checks the written file
    before it is published (on an object store: while it uploads; see `publish_verified`); the returned
    `sha256` is then that of the bytes the lake holds.
    """
    opened: list[Path] = []  # the temporary file, once the first row group is written

    def open_file() -> Path:
        opened.append(temporary_sibling(path))
        return opened[-1]

    try:
        rows, checksum, hashes = _write_rows(conninfo, snapshot, [query] if isinstance(query, str) else query,
                                             schema, key_columns, hash_column, open_file)
        if not rows:
            return Exported(0, 0, 0)
        (temporary,) = opened
        if verify is None:
            return Exported(rows, checksum, publish(temporary, path, create_only=True), hashes)  # never overwrites
        exported = Exported(rows, checksum, temporary.stat().st_size, hashes)
        release_freed_memory()  # the driver's batches, before the file is read back
        size, sha256 = publish_verified(temporary, path, lambda file: verify(file, exported))
        return replace(exported, bytes=size, sha256=sha256)
    finally:
        for temporary in opened:
            temporary.unlink(missing_ok=True)
        release_freed_memory()


def _write_rows(conninfo: str, snapshot: str, queries: list[str], schema: pa.Schema, key_columns: tuple[str, ...],
                hash_column: str | None, open_file: Callable[[], Path]) -> tuple[int, int, int]:
    """Stream the queries' rows into a Parquet file opened (`open_file()`) at the first full row group; return
    rows, key checksum and the sum of PostgreSQL's row hashes."""
    rows = checksum = hashes = 0
    with snapshot_batches(conninfo, snapshot, queries) as batches:
        writer = None
        pending: list[pa.RecordBatch] = []
        pending_rows = 0
        try:
            for batch in batches:
                if not batch.num_rows:
                    continue
                if hash_column is not None:
                    hashes = combine_checksums(hashes, sum_of_hashes(batch.column(hash_column)))
                    batch = batch.drop_columns([hash_column])
                batch = _conform(batch, schema)
                rows += batch.num_rows
                checksum = combine_checksums(checksum, key_checksum(batch, key_columns))
                pending.append(batch)
                pending_rows += batch.num_rows
                if pending_rows >= ROW_GROUP_ROWS:  # one full row group; the rest waits for the next
                    writer = writer or pq.ParquetWriter(open_file(), schema, **ARCHIVE_PARQUET)
                    table = pa.Table.from_batches(pending)
                    writer.write_table(table.slice(0, ROW_GROUP_ROWS), row_group_size=ROW_GROUP_ROWS)
                    pending = table.slice(ROW_GROUP_ROWS).to_batches()
                    pending_rows -= ROW_GROUP_ROWS
            if pending:
                writer = writer or pq.ParquetWriter(open_file(), schema, **ARCHIVE_PARQUET)
                writer.write_table(pa.Table.from_batches(pending), row_group_size=ROW_GROUP_ROWS)
        finally:
            if writer is not None:
                writer.close()
    return rows, checksum, hashes


def reread(path: Path, key_columns: tuple[str, ...]) -> tuple[int, int]:
    """Rows and key checksum of a Parquet file, read back one row group at a time."""
    parquet = pq.ParquetFile(path)
    checksum = 0
    for group in range(parquet.metadata.num_row_groups):  # one row group at a time: iter_batches kept growing
        keys = parquet.read_row_group(group, columns=list(key_columns), use_threads=False)
        checksum = combine_checksums(checksum, key_checksum(keys, key_columns))
    return parquet.metadata.num_rows, checksum

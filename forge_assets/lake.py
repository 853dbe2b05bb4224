"""The lake's layout and writes: every lake path is built here (and cannot escape the root); Parquet files
are written atomically and durably.

    rollups/<rollup>/day=YYYY-MM-DD/part-0.parquet         one file per rollup and day, replaced atomically
    archive/<source>/<entry>/day=YYYY-MM-DD/<run>.parquet   archive files, never overwritten
"""

from __future__ import annotations

import os
import uuid
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

PARQUET_OPTIONS = {"compression": "zstd", "compression_level": 3, "row_group_size": 131_072}


class LakePathError(ValueError):
    """A lake path would leave the lake root."""


def lake_path(root: Path, *parts: str) -> Path:
    """`root/part/...`, refusing parts that are empty, absolute, or climb out of the root."""
    root = Path(root).resolve()
    for part in parts:
        if not part or part in (".", "..") or "/" in part or "\\" in part or "\0" in part:
            raise LakePathError(f"invalid lake path component {part!r}")
    path = root.joinpath(*parts).resolve()
    if not path.is_relative_to(root):
        raise LakePathError(f"{path} is outside the lake root {root}")
    return path


def rollup_directory(root: Path, rollup: str) -> Path:
    """Every day of one rollup (a hive-partitioned dataset)."""
    return lake_path(root, "rollups", rollup)


def rollup_file(root: Path, rollup: str, day: date) -> Path:
    """The one Parquet file of a rollup's day."""
    return lake_path(root, "rollups", rollup, f"day={day.isoformat()}", "part-0.parquet")


def archive_directory(root: Path, source: str, entry_name: str) -> Path:
    """Every archived day of one catalog entry."""
    return lake_path(root, "archive", source, entry_name)


def archive_day_directory(root: Path, source: str, entry_name: str, day: date) -> Path:
    """The archive files of one catalog entry's day."""
    return lake_path(root, "archive", source, entry_name, f"day={day.isoformat()}")


def ledgered_file(root: Path, relative: str) -> Path:
    """A file named by its ledger path (relative to the lake root, `/`-separated)."""
    return lake_path(root, *relative.split("/"))


def fsync_directory(directory: Path) -> None:
    """Make a rename inside `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temporary_sibling(path: Path) -> Path:
    """A hidden, unique name next to `path` for the file while it is being written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")


def publish(temporary: Path, path: Path) -> int:
    """Give a completely written file its final name durably: fsync it, rename it over `path`, fsync the
    directory. Returns the file's size in bytes. Every lake file gets its final name here."""
    with open(temporary, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    fsync_directory(path.parent)
    return path.stat().st_size


def write_parquet_atomic(table: pa.Table, path: Path) -> int:
    """Write `table` to `path` via a temporary file, fsync and rename; return the file's size in bytes.

    Readers see either the previous file or the complete new one, never a partial file.
    """
    temporary = temporary_sibling(path)
    try:
        pq.write_table(table, temporary, **PARQUET_OPTIONS)
        return publish(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)

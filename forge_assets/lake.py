"""The lake's layout and its files: every lake path is built here (and cannot escape the root); atomic and
durable writes, create-only markers.

    rollups/<rollup>/day=YYYY-MM-DD/part-0.parquet                    one file per rollup and day, replaced atomically
    archive/<source>/<entry>/day=YYYY-MM-DD/<ledger id>-<run>.parquet  archive files, never overwritten

Every file operation the archive engine performs on the lake goes through a function here (make a directory,
list one, publish a file, remove a file or an empty directory, claim a marker, hash a file), so that another
backend (object storage) replaces this module and nothing else.
"""

from __future__ import annotations

import hashlib
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


def ensure_directory(directory: Path) -> None:
    """Create `directory` and its missing parents."""
    Path(directory).mkdir(parents=True, exist_ok=True)


def temporary_sibling(path: Path) -> Path:
    """A hidden, unique name next to `path` for the file while it is being written (its directory is
    created here, when the first byte is about to be written, never before)."""
    ensure_directory(path.parent)
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


def list_directory(directory: Path) -> list[tuple[str, bool]]:
    """(name, is a regular file) of each entry of `directory`, sorted; empty when it does not exist.
    Symbolic links are reported as not regular files (they are never followed)."""
    try:
        with os.scandir(directory) as found:
            return sorted((e.name, e.is_file(follow_symlinks=False)) for e in found)
    except FileNotFoundError:
        return []


def file_exists(path: Path) -> bool:
    return Path(path).is_file()


def remove_file(path: Path) -> None:
    """Remove one file (gone already is fine)."""
    Path(path).unlink(missing_ok=True)


def remove_empty_directory(directory: Path) -> bool:
    """Remove `directory` if it is empty; whether it was removed (missing or not empty: left alone)."""
    try:
        os.rmdir(directory)
        return True
    except OSError:
        return False


def claim(path: Path, content: bytes) -> bytes:
    """Create `path` with `content` unless it exists (atomically: one of concurrent claimants wins), and
    return what the file holds afterwards: `content` when this call created it, the winner's otherwise."""
    ensure_directory(path.parent)
    temporary = temporary_sibling(path)
    try:
        with open(temporary, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)  # fails when the name exists: create-only
            fsync_directory(path.parent)
        except FileExistsError:
            pass
    finally:
        temporary.unlink(missing_ok=True)
    return read_bytes(path)


def read_bytes(path: Path) -> bytes:
    return Path(path).read_bytes()


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file's bytes, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()

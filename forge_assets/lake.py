"""The lake's layout and its files: every lake path is built here (and cannot escape the root); atomic and
durable writes, create-only markers. The lake is a local directory (`Path`) or a prefix in an object store
(`ObjectPath`: s3://, gs://, az://); every function here takes either.

    rollups/<rollup>/day=YYYY-MM-DD/part-0.parquet                    one file per rollup and day, replaced atomically
    archive/<source>/<entry>/day=YYYY-MM-DD/<ledger id>-<run>.parquet  archive files, never overwritten

Every file operation the archive engine performs on the lake goes through a function here (make a directory,
list one, publish a file, remove a file or an empty directory, claim a marker, hash a file, read a file back
as a local copy), so callers never care where the lake is.

On an object store (through obstore, whose `put(mode="create")` is a conditional `If-None-Match: *` PUT) a
file is written to a local spool file first and published by ONE PUT: the object appears complete or not at
all (a failed PUT leaves nothing; there is no stream that an exception could close into a truncated object),
and an archive file or marker is never overwritten. An archive file is verified on its spool file while it
uploads, then streamed back from the store, which must hold the same bytes (size and SHA-256). Reads download
to a local temporary file (bounded memory), so every check reads the bytes the store holds. Credentials and
endpoint come only from the provider's environment (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ... / GOOGLE_* /
AZURE_*), never from forge_assets.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import re
import tempfile
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date, timedelta
from functools import cache
from pathlib import Path, PurePosixPath

import pyarrow as pa
import pyarrow.parquet as pq

PARQUET_OPTIONS = {"compression": "zstd", "compression_level": 3, "row_group_size": 131_072}
OBJECT_SCHEMES = ("s3", "gs", "az", "abfs", "abfss")
# Store requests retry with exponential back-off (throttling, 5xx, dropped connections) for at most this long.
RETRIES = {"max_retries": 6, "retry_timeout": timedelta(seconds=60),
           "backoff": {"init_backoff": timedelta(milliseconds=100), "max_backoff": timedelta(seconds=8), "base": 2}}
# Up to SINGLE_PUT_BYTES a file goes in one conditional PUT (held in memory); above, in parts (bounded memory:
# two 8 MB parts in flight; four cost ~20 MB more peak RSS for the same speed to a local server).
SINGLE_PUT_BYTES = 32 << 20
PART_BYTES, PART_CONCURRENCY = 8 << 20, 2
# The endpoint variables obstore reads; an http:// one (a local server) is let through.
_ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT", "AZURE_STORAGE_ENDPOINT", "GOOGLE_BASE_URL")


class LakePathError(ValueError):
    """A lake path would leave the lake root."""


class LakeStoreError(OSError):
    """The object store refused or failed a request (one line; it never holds a credential)."""


class LakeFileExists(LakeStoreError, FileExistsError):
    """An object already has the name a create-only write wanted."""


class ObjectPath(PurePosixPath):
    """A name in an object store, `scheme://bucket/key`: its parts are ("scheme:", bucket, *key). Pure: it
    has no file operations and is no local file (`open()` refuses it); go through this module."""

    def __str__(self) -> str:
        parts = self.parts
        if parts and parts[0].endswith(":"):
            return f"{parts[0]}//{'/'.join(parts[1:])}"
        return super().__str__()

    def __fspath__(self) -> str:
        raise TypeError(f"{self} is an object-store name, not a local file: read it through forge_assets.lake")

    @classmethod
    def from_uri(cls, uri: str) -> ObjectPath:
        scheme, _, rest = uri.partition("://")
        parts = [p for p in rest.split("/") if p]
        if scheme not in OBJECT_SCHEMES or not parts:
            raise LakePathError(f"{uri!r} is not an object-store URI (scheme://bucket/prefix)")
        return cls(f"{scheme}:", *parts)

    @property
    def bucket(self) -> str:
        return f"{self.parts[0]}//{self.parts[1]}"

    @property
    def key(self) -> str:
        return "/".join(self.parts[2:])


Location = Path | ObjectPath


def location(value: str | os.PathLike) -> Location:
    """The lake root named by a local path or an object-store URI."""
    if isinstance(value, ObjectPath):
        return value
    text = str(value)
    if text.partition("://")[0] in OBJECT_SCHEMES:
        return ObjectPath.from_uri(text)
    return Path(text).resolve()


def lake_path(root: Location, *parts: str) -> Location:
    """`root/part/...`, refusing parts that are empty, absolute, or climb out of the root."""
    for part in parts:
        if not part or part in (".", "..") or "/" in part or "\\" in part or "\0" in part:
            raise LakePathError(f"invalid lake path component {part!r}")
    root = location(root)
    if isinstance(root, ObjectPath):
        return root.joinpath(*parts)
    path = root.joinpath(*parts).resolve()
    if not path.is_relative_to(root):
        raise LakePathError(f"{path} is outside the lake root {root}")
    return path


def rollup_directory(root: Location, rollup: str) -> Location:
    """Every day of one rollup (a hive-partitioned dataset)."""
    return lake_path(root, "rollups", rollup)


def rollup_file(root: Location, rollup: str, day: date) -> Location:
    """The one Parquet file of a rollup's day."""
    return lake_path(root, "rollups", rollup, f"day={day.isoformat()}", "part-0.parquet")


def archive_directory(root: Location, source: str, entry_name: str) -> Location:
    """Every archived day of one catalog entry."""
    return lake_path(root, "archive", source, entry_name)


def archive_day_directory(root: Location, source: str, entry_name: str, day: date) -> Location:
    """The archive files of one catalog entry's day."""
    return lake_path(root, "archive", source, entry_name, f"day={day.isoformat()}")


def ledgered_file(root: Location, relative: str) -> Location:
    """A file named by its ledger path (relative to the lake root, `/`-separated)."""
    return lake_path(root, *relative.split("/"))


# --- the object store -------------------------------------------------------------------------------------


def _store(bucket: str):
    """The client of a bucket, configured from the provider's environment only (obstore reads AWS_*, GOOGLE_*,
    AZURE_* itself); one per bucket and environment, so a changed endpoint or key takes effect."""
    environment = frozenset((k, v) for k, v in os.environ.items() if k.startswith(("AWS_", "GOOGLE_", "AZURE_")))
    return _client(bucket, environment)


@cache
def _client(bucket: str, environment: frozenset):
    from obstore.store import from_url

    insecure = any(k in _ENDPOINT_VARIABLES and v.startswith("http://") for k, v in environment)  # a local server
    return from_url(bucket, client_options={"allow_http": insecure}, retry_config=RETRIES)


def _summary(exc: BaseException) -> str:
    """One line about a store failure: the HTTP status and the store's error code, never the request."""
    text = str(exc)
    if "error sending request" in text or ("Connect" in text and "HttpError" in text):
        return "the store is unreachable (no connection after retries)"
    status = re.search(r"status code: (\d{3}[^:<]*)", text)
    code = re.search(r"<Code>([^<]+)</Code>", text)
    found = [m.group(1).strip() for m in (status, code) if m]
    if status and status.group(1).startswith(("401", "403")):
        found.append("check the store credentials in the environment (AWS_ACCESS_KEY_ID, ...) and the bucket's "
                     "permissions")
    return ", ".join(found) if found else " ".join(text.split(":")[0].split())


@contextmanager
def _request(action: str, path: ObjectPath) -> Iterator[None]:
    """Turn a store failure into one LakeStoreError line."""
    from obstore.exceptions import BaseError

    try:
        yield
    except (BaseError, OSError) as exc:
        if isinstance(exc, LakeStoreError) or getattr(exc, "errno", None) is not None:
            raise  # ours already, or the local spool file's (a full disk): as it is
        raise LakeStoreError(f"the object store failed to {action} {path}: {_summary(exc)}") from None


def _spool_directory() -> Path:
    """Local files of an object-store lake while they are written or read (FORGE_SPOOL_DIR, else the temp dir)."""
    directory = Path(os.environ.get("FORGE_SPOOL_DIR") or tempfile.gettempdir())
    directory.mkdir(parents=True, exist_ok=True)
    return directory


# --- file operations --------------------------------------------------------------------------------------


def fsync_directory(directory: Path) -> None:
    """Make a rename inside `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_directory(directory: Location) -> None:
    """Create `directory` and its missing parents (an object store has no directories)."""
    if not isinstance(directory, ObjectPath):
        Path(directory).mkdir(parents=True, exist_ok=True)


def temporary_sibling(path: Location) -> Path:
    """A hidden, unique local name for the file while it is being written: next to `path` on a local lake
    (its directory is created here, when the first byte is about to be written, never before), in the spool
    directory for an object store."""
    if isinstance(path, ObjectPath):
        return _spool_directory() / f".{path.name}.{uuid.uuid4().hex}.tmp"
    ensure_directory(path.parent)
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")


def publish(temporary: Path, path: Location, create_only: bool = False) -> int:
    """Give a completely written file its final name durably and return its size in bytes. Local: fsync
    it, rename it over `path`, fsync the directory (an archive file's name is unique to its ledger and run,
    and the engine refuses a name that exists before it writes). Object store: one PUT of the whole file (`create_only`: `If-None-Match: *`, refused when an object has
    the name). A single PUT holds the file in memory, so a file above SINGLE_PUT_BYTES goes as a multipart
    upload in bounded memory (complete or invisible too); no store takes a condition on completing one
    through obstore, so `create_only` is then a check before the upload: archive file names are unique per
    ledger and run, so only this run ever writes that name. Every lake file gets its final name here."""
    size = Path(temporary).stat().st_size
    if isinstance(path, ObjectPath):
        import obstore
        from obstore.exceptions import AlreadyExistsError, PreconditionError

        with _request("write", path):
            if size <= SINGLE_PUT_BYTES:
                try:
                    with _mapped(Path(temporary), size) as data:
                        obstore.put(_store(path.bucket), path.key, data, mode="create" if create_only else "overwrite")
                except (AlreadyExistsError, PreconditionError):
                    raise LakeFileExists(f"{path} already exists in the object store; it is never overwritten") from None
                return size
            if create_only and file_exists(path):
                raise LakeFileExists(f"{path} already exists in the object store; it is never overwritten")
            with open(temporary, "rb") as handle:  # parts of PART_BYTES, invisible until complete, aborted on error
                obstore.put(_store(path.bucket), path.key, handle, use_multipart=True, chunk_size=PART_BYTES,
                            max_concurrency=PART_CONCURRENCY)
        return size
    with open(temporary, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    fsync_directory(path.parent)
    return size


@contextmanager
def _mapped(path: Path, size: int) -> Iterator[memoryview | bytes]:
    """A file's bytes for a single PUT, memory-mapped: obstore takes a buffer without copying it, where a
    path is read into two copies (a 17 MB archive file: 17 MB more peak RSS against 32 MB)."""
    if not size:
        yield b""
        return
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped, \
            memoryview(mapped) as view:
        yield view


def publish_verified(temporary: Path, path: Location, verify: Callable[[Path], None]) -> tuple[int, str]:
    """Publish a new file create-only once `verify(temporary)` has passed; return its size and the SHA-256 of
    the bytes the lake holds. Local: verify, then rename. Object store: the upload runs while `verify` reads
    the spool, then the object is read back from the store and must have the spool's size and SHA-256, so
    the store holds exactly the bytes that were verified. When `verify` fails, its error is raised once the
    upload has ended (a completed object is the caller's to remove, as after any failed run)."""
    if not isinstance(path, ObjectPath):
        verify(temporary)
        digest = _sha256_of_file(temporary)
        return publish(temporary, path, create_only=True), digest
    with ThreadPoolExecutor(1, thread_name_prefix="forge-upload") as uploads:
        upload = uploads.submit(publish, temporary, path, create_only=True)
        verify(temporary)  # an error here waits for the upload (the executor's exit), then propagates
        digest = _sha256_of_file(temporary)
        size = upload.result()
    stored = stored_digest(path)
    if stored != (size, digest):
        raise LakeStoreError(f"{path}: the store holds {stored[0]} bytes with SHA-256 {stored[1]}, not the "
                             f"{size} bytes verified (SHA-256 {digest})")
    return size, digest


def stored_digest(path: ObjectPath) -> tuple[int, str]:
    """The size and SHA-256 of an object's bytes, streamed from the store (nothing written locally)."""
    import obstore

    digest, size = hashlib.sha256(), 0
    with _request("read", path):
        for chunk in obstore.get(_store(path.bucket), path.key).stream(min_chunk_size=1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _sha256_of_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def write_parquet_atomic(table: pa.Table, path: Location) -> int:
    """Write `table` to `path` via a temporary file, published whole (rename, or one PUT); return the file's
    size in bytes. Readers see either the previous file or the complete new one, never a partial file."""
    temporary = temporary_sibling(path)
    try:
        pq.write_table(table, temporary, **PARQUET_OPTIONS)
        return publish(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def list_directory(directory: Location) -> list[tuple[str, bool]]:
    """(name, is a regular file) of each entry of `directory`, sorted; empty when it does not exist.
    Symbolic links are reported as not regular files (they are never followed); in an object store a
    deeper prefix is reported as not a regular file."""
    if isinstance(directory, ObjectPath):
        import obstore

        with _request("list", directory):
            found = obstore.list_with_delimiter(_store(directory.bucket), directory.key + "/")
        return sorted([(o["path"].rsplit("/", 1)[-1], True) for o in found["objects"]]
                      + [(p.rstrip("/").rsplit("/", 1)[-1], False) for p in found["common_prefixes"]])
    try:
        with os.scandir(directory) as found:
            return sorted((e.name, e.is_file(follow_symlinks=False)) for e in found)
    except FileNotFoundError:
        return []


def file_exists(path: Location) -> bool:
    if isinstance(path, ObjectPath):
        import obstore
        from obstore.exceptions import NotFoundError

        with _request("look up", path):
            try:
                obstore.head(_store(path.bucket), path.key)
            except (NotFoundError, FileNotFoundError):
                return False
        return True
    return Path(path).is_file()


def remove_file(path: Location) -> None:
    """Remove one file (gone already is fine)."""
    if isinstance(path, ObjectPath):
        import obstore
        from obstore.exceptions import NotFoundError

        with _request("delete", path):
            try:
                obstore.delete(_store(path.bucket), path.key)
            except (NotFoundError, FileNotFoundError):  # GCS and Azure answer 404 where S3 answers 204
                pass
        return
    Path(path).unlink(missing_ok=True)


def remove_empty_directory(directory: Location) -> bool:
    """Remove `directory` if it is empty; whether it was removed (missing or not empty: left alone). An
    object store has no directories: a prefix vanishes with its last object, nothing to do."""
    if isinstance(directory, ObjectPath):
        return True
    try:
        os.rmdir(directory)
        return True
    except OSError:
        return False


def claim(path: Location, content: bytes) -> bytes:
    """Create `path` with `content` unless it exists (atomically: one of concurrent claimants wins), and
    return what the file holds afterwards: `content` when this call created it, the winner's otherwise."""
    temporary = temporary_sibling(path)
    try:
        with open(temporary, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            if isinstance(path, ObjectPath):
                publish(temporary, path, create_only=True)
            else:
                os.link(temporary, path)  # fails when the name exists: create-only
                fsync_directory(path.parent)
        except FileExistsError:  # the name was taken: by a concurrent claimant, or long ago
            pass
    finally:
        temporary.unlink(missing_ok=True)
    return read_bytes(path)


def read_bytes(path: Location) -> bytes:
    if isinstance(path, ObjectPath):
        import obstore

        with _request("read", path):
            return bytes(obstore.get(_store(path.bucket), path.key).bytes())
    return Path(path).read_bytes()


@contextmanager
def local_copy(path: Location) -> Iterator[Path]:
    """A local file holding `path`'s bytes: the file itself on a local lake; for an object, its bytes
    streamed from the store into a spool file (bounded memory), removed afterwards."""
    if not isinstance(path, ObjectPath):
        yield Path(path)
        return
    import obstore

    spool = _spool_directory() / f".{path.name}.{uuid.uuid4().hex}.read"
    try:
        with _request("read", path), open(spool, "wb") as handle:
            result = obstore.get(_store(path.bucket), path.key)
            for chunk in result.stream(min_chunk_size=1 << 20):
                handle.write(chunk)
            expected = result.meta["size"]
        if spool.stat().st_size != expected:
            raise LakeStoreError(f"{path}: read {spool.stat().st_size} bytes back, the store says {expected}")
        yield spool
    finally:
        spool.unlink(missing_ok=True)


def sha256_of(path: Location) -> str:
    """The SHA-256 of a file's bytes, hex (an object's: as read from the store)."""
    return stored_digest(path)[1] if isinstance(path, ObjectPath) else _sha256_of_file(Path(path))


"""`forge-assets lake`: a DuckDB database file of views over the Parquet lake, which the DuckDB CLI (or
Metabase's and Superset's DuckDB drivers) opens with no setup.

- one view per rollup (`job_duration_by_template`, ...) and per archived catalog entry
  (`archive_<source>_<entry>`): hive partitioning with `day` as DATE, union_by_name across schema changes,
  columns typed back from the PostgreSQL type each archive file records (jsonb -> JSON, uuid -> UUID,
  inet -> INET, naive UTC timestamps -> TIMESTAMPTZ);
- one `history_<source>_<entry>` view per archived entry when the source databases are reachable: the
  archived days and the live rows, read-only through DuckDB's postgres extension (installed offline from its
  wheel), a row in both (a restored day) counted once, from PostgreSQL;
- one table macro per seed question (forge_assets.bi.questions) over the rollup views;
- `lake_manifest`: what each view reads; `lake_unread`: what could not be read, and why.

Views read `day=*/*.parquet`, so new days appear without rebuilding the file; a dataset holding something
unreadable (a foreign file, a corrupt file, a malformed day folder) is read from its list of good files instead,
and what was left out is reported in one line. DuckDB's DDL takes no parameters: every identifier in the
SQL built here goes through `_ident` and every literal (paths, DSNs) through `_quote`. No Dagster here.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from forge_assets.bi import LakeDatabaseError
from forge_assets.bi.questions import QUESTIONS
from forge_assets.lake import ObjectPath, archive_directory, rollup_directory
from forge_assets.retention.catalog import CATALOG, TableEntry
from forge_assets.retention.columns import archive_columns
from forge_assets.retention.fingerprint import schema_fingerprint
from forge_assets.rollups.registry import ROLLUPS

# DuckDB types of the PostgreSQL types archive files keep as text; numbers, booleans, dates and timestamps
# with time zone are stored natively and need nothing.
_CASTS = {"jsonb": "JSON", "json": "JSON", "uuid": "UUID", "inet": "INET", "cidr": "INET"}
_NAIVE = "timestamp without time zone"
_EXTENSIONS = ("inet", "postgres")


@dataclass
class Dataset:
    """One view's files: the readable Parquet files under `directory`, by day."""

    view: str
    kind: str  # rollup | archive
    directory: Path
    files: list[Path] = field(default_factory=list)
    file_schemas: list[pa.Schema] = field(default_factory=list)  # of `files`, in the same (day) order
    days: set[date] = field(default_factory=set)
    unread: list[tuple[Path, str]] = field(default_factory=list)
    entry: TableEntry | None = None

    @property
    def fingerprints(self) -> set[str]:
        """The distinct schemas among the files."""
        return {schema_fingerprint(s) for s in self.file_schemas}

    @property
    def glob(self) -> str:
        return str(self.directory / "day=*" / "*.parquet")

    def source_sql(self) -> str:
        """The read_parquet call: the glob when everything under it reads, else the list of good files."""
        files = _quote(self.glob) if not self.unread else "[" + ", ".join(_quote(str(f)) for f in self.files) + "]"
        return (f"read_parquet({files}, hive_partitioning = true, union_by_name = true, "
                "hive_types = {'day': DATE})")


@dataclass
class LakeReport:
    """What `build_lake_database` wrote and what it could not read."""

    path: Path
    views: list[str]
    macros: list[str]
    unread: list[str]
    notes: list[str]

    def unread_line(self) -> str:
        """Everything left out, in one line ('' when nothing was)."""
        return f"not read ({len(self.unread)}): " + "; ".join(self.unread) if self.unread else ""


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def scan(directory: Path, view: str, kind: str) -> Dataset:
    """Walk `directory`: `day=YYYY-MM-DD` folders of Parquet files; anything else, or a file whose footer does
    not read, goes to `unread` with the reason."""
    dataset = Dataset(view, kind, directory)
    if not directory.is_dir():
        return dataset
    for folder in sorted(directory.iterdir()):
        day = _day_of(folder.name) if folder.is_dir() else None
        if day is None:
            dataset.unread.append((folder, "not a day=YYYY-MM-DD folder"))
            continue
        for path in sorted(folder.iterdir()):
            if not path.name.endswith(".parquet") or not path.is_file():
                reason = "temporary file of an unfinished write" if path.name.endswith(".tmp") else "foreign file"
                dataset.unread.append((path, reason))
                continue
            try:
                schema = pq.read_schema(path)
            except (OSError, pa.ArrowException) as exc:
                dataset.unread.append((path, f"unreadable Parquet ({' '.join(str(exc).split())[:80]})"))
                continue
            dataset.files.append(path)
            dataset.file_schemas.append(schema)
            dataset.days.add(day)
    return dataset


def _day_of(name: str) -> date | None:
    if not name.startswith("day="):
        return None
    try:
        return date.fromisoformat(name[4:])
    except ValueError:
        return None


def missing_days(days: set[date]) -> list[date]:
    """Days between the first and the last present that have no file."""
    if not days:
        return []
    first, last = min(days), max(days)
    return [first + timedelta(days=i) for i in range((last - first).days + 1) if first + timedelta(days=i) not in days]


def _ranges(days: list[date]) -> str:
    parts, start = [], None
    for i, day in enumerate(days):
        start = start or day
        if i + 1 == len(days) or days[i + 1] != day + timedelta(days=1):
            parts.append(str(start) if start == day else f"{start}..{day}")
            start = None
    return ", ".join(parts)


def pg_types(dataset: Dataset) -> dict[str, str]:
    """Each column's PostgreSQL type as the newest file records it (files sorted by day, later wins)."""
    types: dict[str, str] = {}
    for schema in dataset.file_schemas:
        for f in schema:
            if f.metadata and b"pg_type" in f.metadata:
                types[f.name] = f.metadata[b"pg_type"].decode()
    return types


def typed_select(dataset: Dataset) -> str:
    """SELECT over the dataset's files with the PostgreSQL types restored."""
    replaced = [_retype(name, pg_type) for name, pg_type in pg_types(dataset).items()]
    replace = f" REPLACE ({', '.join(r for r in replaced if r)})" if any(replaced) else ""
    return f"SELECT *{replace} FROM {dataset.source_sql()}"  # noqa: S608 (quoted by _ident/_quote)


def _retype(name: str, pg_type: str, alias: bool = True) -> str:
    column = _ident(name)
    if pg_type == _NAIVE:
        expression = f"timezone('UTC', CAST({column} AS TIMESTAMP))"
    elif pg_type in _CASTS:
        expression = f"CAST({column} AS {_CASTS[pg_type]})"
    else:
        return ""
    return f"{expression} AS {column}" if alias else expression


def install_extensions(con, extension_directory: str | None) -> list[str]:
    """Install the inet and postgres extensions from their wheels (no network) into DuckDB's extension
    directory, where the CLI finds them too; return the names that are not available."""
    missing = []
    version = con.execute("PRAGMA version").fetchone()[0]
    for name in _EXTENSIONS:
        try:
            module = importlib.import_module(f"duckdb_extension_{name}")
        except ImportError:
            missing.append(name)
            continue
        path = Path(module.__file__).parent / "extensions" / version / f"{name}.duckdb_extension"
        con.execute(f"FORCE INSTALL {_quote(str(path))}")
        con.execute(f"LOAD {name}")
    return missing


def archive_view(entry: TableEntry) -> str:
    return f"archive_{entry.source}_{entry.entry_name}".lower()


def history_view(entry: TableEntry) -> str:
    return f"history_{entry.source}_{entry.entry_name}".lower()


def public_dsn(conninfo: str) -> str:
    """The conninfo without its password (libpq takes it from PGPASSWORD or ~/.pgpass when DuckDB connects)."""
    params = {k: v for k, v in conninfo_to_dict(conninfo).items() if k != "password"}
    return make_conninfo("", **params)


def _history_sql(con, entry: TableEntry, conn: psycopg.Connection, dsn: str) -> str:
    """Archived rows whose key is not live, plus the live rows (typed as the archive view types them)."""
    describe = f"SELECT column_name, column_type FROM (DESCRIBE {_ident(archive_view(entry))})"  # noqa: S608
    archived = dict(con.execute(describe).fetchall())
    live = []
    for column in archive_columns(conn, entry):
        name = _ident(column.name)
        if column.name in archived:
            expression = _retype(column.name, column.pg_type, alias=False) or name
            live.append(f"CAST({expression} AS {archived[column.name]}) AS {name}")
        else:
            live.append(_retype(column.name, column.pg_type) or name)
    time = _ident(entry.time_column)
    day = f"CAST({time} AS DATE)" if entry.naive_utc else f"CAST(timezone('UTC', {time}) AS DATE)"
    where = (f" WHERE {_ident(entry.slice_column)} IN ({', '.join(_quote(v) for v in entry.slice_values)})"
             if entry.slice_column else "")
    keys = " AND ".join(f"l.{_ident(k)} = a.{_ident(k)}" for k in entry.key_columns)
    scan_sql = f"postgres_scan({_quote(dsn)}, 'public', {_quote(entry.table)})"
    return (f"WITH live AS (SELECT {', '.join(live)}, {day} AS day FROM {scan_sql}{where}) "  # noqa: S608
            f"SELECT * FROM {_ident(archive_view(entry))} a WHERE NOT EXISTS (SELECT 1 FROM live l WHERE {keys}) "
            "UNION ALL BY NAME SELECT * FROM live")


def build_lake_database(lake_root: Path, path: Path, live: Mapping[str, str] | None = None,
                        extension_directory: str | None = None) -> LakeReport:
    """Write the DuckDB file at `path` (replaced atomically) with views over the lake at `lake_root`;
    `live`: conninfo per source for the history views (sources left out, or unreachable, get none)."""
    import duckdb

    if isinstance(lake_root, ObjectPath):
        raise LakeDatabaseError(f"the DuckDB file of views is built over a local lake; {lake_root} is in an object "
                                "store: read it with DuckDB's httpfs (README: Lake on object storage)")
    lake_root = Path(lake_root).resolve()
    path = Path(path).resolve()
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    config = {"extension_directory": extension_directory} if extension_directory else {}
    unread, notes, views, macros = [], [], [], []
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.unlink(missing_ok=True)
        con = duckdb.connect(str(temporary), config=config)
    except (OSError, duckdb.Error) as exc:
        raise LakeDatabaseError(f"cannot write {path}: {' '.join(str(exc).split())}") from None
    try:
        missing = install_extensions(con, extension_directory)
        if missing:
            notes.append(f"extensions not installed: {', '.join(missing)} (their columns stay VARCHAR)")
        datasets = [scan(rollup_directory(lake_root, spec.name), spec.name, "rollup") for spec in ROLLUPS]
        for entry in (e for e in CATALOG if e.archives):
            dataset = scan(archive_directory(lake_root, entry.source, entry.entry_name), archive_view(entry), "archive")
            dataset.entry = entry
            datasets.append(dataset)
        for dataset in datasets:
            unread += [f"{p.relative_to(lake_root)} ({reason})" for p, reason in dataset.unread]
            if dataset.kind == "rollup" and (gaps := missing_days(dataset.days)):
                unread.append(f"rollups/{dataset.view}: no file for {_ranges(gaps)}")
            if not dataset.files:
                if dataset.kind == "rollup":
                    notes.append(f"{dataset.view}: no files yet, no view")
                continue
            if len(dataset.fingerprints) > 1:
                notes.append(f"{dataset.view}: {len(dataset.fingerprints)} schemas across days, read as one by name")
            plain = f"SELECT * FROM {dataset.source_sql()}"  # noqa: S608 (quoted by _quote)
            select = typed_select(dataset) if dataset.kind == "archive" else plain
            if _create_view(con, dataset.view, select, unread):
                views.append(dataset.view)
        _manifest(con, datasets, lake_root, unread)
        views += _history_views(con, datasets, views, live or {}, notes, "postgres" not in missing)
        for question in QUESTIONS:
            if all(r in views for r in question.rollups):
                con.execute(f"CREATE MACRO {question.name}(first_day, last_day) AS TABLE {question.lake_sql}")
                macros.append(question.name)
        con.execute("CHECKPOINT")
    except BaseException as exc:
        con.close()
        temporary.unlink(missing_ok=True)
        if isinstance(exc, (OSError, duckdb.Error)):
            raise LakeDatabaseError(f"cannot write {path}: {' '.join(str(exc).split())}") from None
        raise
    con.close()
    os.replace(temporary, path)
    Path(f"{temporary}.wal").unlink(missing_ok=True)
    return LakeReport(path, views, macros, unread, notes)


def _create_view(con, view: str, select: str, unread: list[str]) -> bool:
    """CREATE VIEW (DuckDB binds it now); a view DuckDB cannot bind is named in `unread`, the others go on."""
    import duckdb

    try:
        con.execute(f"CREATE VIEW {_ident(view)} AS {select}")
    except duckdb.Error as exc:
        unread.append(f"view {view} not created ({' '.join(str(exc).split())[:120]})")
        return False
    return True


def _history_views(con, datasets: list[Dataset], views: list[str], live: Mapping[str, str], notes: list[str],
                   available: bool) -> list[str]:
    created = []
    for source in sorted({d.entry.source for d in datasets if d.entry and d.files}):
        if source not in live:
            continue
        if not available:
            notes.append(f"{source}: no history views (the postgres extension is not installed)")
            continue
        dsn = public_dsn(live[source])
        try:
            conn = psycopg.connect(live[source], autocommit=True)
        except psycopg.OperationalError as exc:
            notes.append(f"{source}: no history views (database unreachable: {' '.join(str(exc).split())[:80]})")
            continue
        with conn:
            for dataset in (d for d in datasets if d.entry and d.entry.source == source and d.files):
                view = history_view(dataset.entry)
                if dataset.view in views and _create_view(con, view, _history_sql(con, dataset.entry, conn, dsn),
                                                         notes):
                    created.append(view)
    return created


def _manifest(con, datasets: list[Dataset], lake_root: Path, unread: list[str]) -> None:
    con.execute("CREATE TABLE lake_manifest (view VARCHAR, kind VARCHAR, directory VARCHAR, files BIGINT, "
                "first_day DATE, last_day DATE, schemas BIGINT)")
    for d in (d for d in datasets if d.files):
        con.execute("INSERT INTO lake_manifest VALUES (?, ?, ?, ?, ?, ?, ?)", (
            d.view, d.kind, str(d.directory.relative_to(lake_root)), len(d.files), min(d.days), max(d.days),
            len(d.fingerprints)))
    con.execute("CREATE TABLE lake_unread (what VARCHAR)")
    for what in unread:
        con.execute("INSERT INTO lake_unread VALUES (?)", (what,))

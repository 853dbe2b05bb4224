"""The retention engine on a real PostgreSQL and real files: nothing lost, nothing twice, nothing early."""

import threading
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import NOW, archive_all, conn_to, content, files_of, first_overdue, history, ledger
from psycopg import sql

from forge_assets.config import SOURCES
from forge_assets.days import day_window
from forge_assets.db import drop_source_databases
from forge_assets.retention import engine
from forge_assets.retention.catalog import CATALOG, SENSITIVE, CatalogError, entries, validate
from forge_assets.retention.engine import (
    NotOverdue,
    RetentionError,
    archive_day,
    dry_run_day,
    overdue_days,
    restore_day,
)


@pytest.fixture(scope="module")
def db(settings, tmp_path_factory):
    """History shared by the tests that each work on their own entries and days."""
    target = history(settings, tmp_path_factory)
    yield target
    drop_source_databases(target)


@pytest.fixture
def pristine(settings, tmp_path_factory):
    """History no other test has touched."""
    target = history(settings, tmp_path_factory)
    yield target
    drop_source_databases(target)


def test_every_entry_matches_the_schema(db):
    for source in SOURCES:
        with conn_to(db, source) as conn:
            validate(conn, entries(source))


def test_schema_drift_and_unknown_names_are_clear_errors(db):
    with pytest.raises(CatalogError, match="no table or entry 'main_jobevents'"):
        entries("forge", "main_jobevents")
    drifted = replace(entries("orchestry", "events")[0], time_column="created_at")
    with conn_to(db, "orchestry") as conn, pytest.raises(CatalogError, match="created_at missing from 'events'"):
        validate(conn, [drifted])
    with pytest.raises(CatalogError, match="keep_days must be at least 1"):
        replace(drifted, keep_days=0)


def test_archive_then_restore_returns_every_table_to_its_content(pristine):
    """For every catalog entry: after archiving all overdue days, rows in PostgreSQL plus rows in the
    ledgered files equal the rows before; restoring every day brings the table back exactly."""
    archived_any = set()
    for entry in CATALOG:  # catalog order: children before the rows they reference
        if not entry.archives:
            continue
        with conn_to(pristine, entry.source) as conn:
            before = content(conn, entry)
        results = archive_all(pristine, entry)
        ledgered = sum(r[2] for r in ledger(pristine, entry))
        with conn_to(pristine, entry.source) as conn:
            after = content(conn, entry)
        files = [p for p in files_of(pristine, entry) if p.suffix == ".parquet"]
        assert after[0] + ledgered == before[0], entry.key
        assert sum(pq.ParquetFile(p).metadata.num_rows for p in files) == ledgered, entry.key
        assert sum(r.rows for r in results) == ledgered, entry.key
        if ledgered:
            archived_any.add(entry.key)
    assert {"forge.main_jobevent", "forge.main_job", "orchestry.metrics_instance", "pulse.telemetry"} <= archived_any

    for entry in reversed([e for e in CATALOG if e.key in archived_any]):  # parents first when loading back
        days = sorted({row[0] for row in ledger(pristine, entry)})
        with conn_to(pristine, entry.source) as conn:
            for day in days:
                restore_day(conn, entry, day, pristine.lake_root)
    for entry in (e for e in CATALOG if e.key in archived_any):
        with conn_to(pristine, entry.source) as conn:
            restored = content(conn, entry)
        # rows came back; archiving again moves them once more and retires the restored files
        results = archive_all(pristine, entry)
        assert sum(r.rows for r in results) == sum(r[2] for r in ledger(pristine, entry)) > 0, entry.key
        assert all(r[3] is None for r in ledger(pristine, entry)), entry.key
        assert restored[0] >= sum(r[2] for r in ledger(pristine, entry)), entry.key


def test_restore_brings_back_the_exact_rows(db):
    entry = entries("orchestry", "events")[0]
    with conn_to(db, entry.source) as conn:
        before = content(conn, entry)
    results = [r for r in archive_all(db, entry) if r.rows]
    with conn_to(db, entry.source) as conn:
        for result in results:
            restore_day(conn, entry, result.day, db.lake_root)
        assert content(conn, entry) == before
    # restored files stay in the ledger, marked, until an archive of the day supersedes them
    assert all(row[3] is not None for row in ledger(db, entry) if row[0] in {r.day for r in results})


def test_second_run_changes_nothing(db):
    entry = entries("goforge", "deployment_logs")[0]
    archive_all(db, entry)
    before_files, before_ledger = files_of(db, entry), ledger(db, entry)
    again = archive_all(db, entry)
    assert sum(r.rows for r in again) == 0
    assert files_of(db, entry) == before_files and ledger(db, entry) == before_ledger


def test_refuses_days_younger_than_keep_days(db):
    entry = entries("orchestry", "metrics_app")[0]
    young = (NOW - timedelta(days=entry.keep_days)).date()
    with conn_to(db, entry.source) as conn:
        count = conn.execute("SELECT count(*) FROM metrics").fetchone()[0]
        conn.rollback()
        with pytest.raises(NotOverdue, match="keeps 30 days"):
            archive_day(conn, entry, young, db.lake_root, NOW)
        assert conn.execute("SELECT count(*) FROM metrics").fetchone()[0] == count


def test_late_rows_go_to_a_new_file_and_uncommitted_rows_are_never_deleted(db):
    entry = entries("orchestry", "events")[0]
    day = first_overdue(db, entry)
    moment = datetime.combine(day, datetime.min.time(), tzinfo=timezone.utc) + timedelta(hours=5)
    insert = ("INSERT INTO events (event_type, app_name, message, severity, timestamp) "
              "VALUES ('health', NULL, %s, 'info', %s)")
    with conn_to(db, entry.source) as writer, conn_to(db, entry.source) as archiver:
        writer.execute(insert, ("in flight during the archive", moment))  # not committed yet
        first = archive_day(archiver, entry, day, db.lake_root, NOW)
        writer.commit()
        assert writer.execute("SELECT count(*) FROM events WHERE message = 'in flight during the archive'"
                              ).fetchone()[0] == 1
        writer.commit()
        second = archive_day(archiver, entry, day, db.lake_root, NOW)
    assert second.rows == 1 and second.files and set(second.files).isdisjoint(first.files)
    assert pq.read_table(db.lake_root / second.files[0])["message"].to_pylist() == ["in flight during the archive"]


def test_concurrent_runs_of_one_day_archive_each_row_once(db):
    entry = entries("goforge", "container_metrics")[0]
    day = first_overdue(db, entry, -1)
    with conn_to(db, entry.source) as conn:
        expected = conn.execute("SELECT count(*) FROM container_metrics WHERE timestamp >= %s AND timestamp < %s",
                                day_window(day, day)).fetchone()[0]
    results, errors = [], []

    def run(wait):
        try:
            with conn_to(db, entry.source) as conn:
                results.append(archive_day(conn, entry, day, db.lake_root, NOW, wait=wait))
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i % 2 == 0,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sum(r.rows for r in results) == expected > 0
    keys = [k for f in files_of(db, entry) if f"day={day}" in str(f) for k in pq.read_table(f, columns=["id"])["id"].to_pylist()]
    assert len(keys) == len(set(keys)) == expected


def test_a_failure_before_commit_changes_nothing(db, monkeypatch):
    entry = entries("orchestry", "metrics_instance")[0]
    day = first_overdue(db, entry)

    def broken_read_back(path, *args):
        assert path.exists(), "the file was written and renamed into place"
        raise OSError("disk read error injected after the file was written")

    monkeypatch.setattr(engine.content, "read_back", broken_read_back)  # the read back of the written file
    with conn_to(db, entry.source) as conn:
        before = content(conn, entry)
        with pytest.raises(OSError, match="injected"):
            archive_day(conn, entry, day, db.lake_root, NOW)
        assert content(conn, entry) == before
    assert not [r for r in ledger(db, entry) if r[0] == day]
    assert not [f for f in files_of(db, entry) if f"day={day}" in str(f)]


def test_referenced_rows_are_not_purged(db):
    """Jobs whose host summaries are still in PostgreSQL stay: deleting them would cascade."""
    job = entries("forge", "main_job")[0]
    day = first_overdue(db, job)
    with conn_to(db, "forge") as conn:
        before = content(conn, job)
        with pytest.raises(RetentionError, match="rows of main_jobhostsummary still reference"):
            archive_day(conn, job, day, db.lake_root, NOW)
        assert content(conn, job) == before


def test_dry_run_reports_and_changes_nothing(db):
    entry = entries("pulse", "system_metrics")[0]
    with conn_to(db, entry.source) as conn:
        day = overdue_days(conn, entry, NOW)[-1]
        before = content(conn, entry)
        report = dry_run_day(conn, entry, day, NOW)
        assert report.dry_run and report.rows > 0 and report.bytes > 0
        assert content(conn, entry) == before


def test_sensitive_columns_never_reach_parquet(db):
    for path in (db.lake_root / "archive").rglob("*.parquet"):
        source, table = path.parts[-4], path.parts[-3]
        entry = next(e for e in CATALOG if e.source == source and e.entry_name == table)
        assert not set(SENSITIVE.get((source, entry.table), ())) & set(pq.read_schema(path).names), path


def test_archive_asset_waits_for_its_rollups_and_refuses_young_days(db):
    from dagster import AssetKey, DagsterInstance, materialize

    from forge_assets.assets.archive import build_archive_asset
    from forge_assets.assets.rollups import ROLLUP_ASSETS
    from forge_assets.resources.parquet_lake import ParquetLake
    from forge_assets.resources.postgres import PostgresResource

    entry = entries("orchestry", "metrics_instance")[0]
    archive = build_archive_asset(entry)
    rollups = [a for a in ROLLUP_ASSETS if a.key in (AssetKey("app_metrics_hourly"), AssetKey("metric_value_counts"))]
    resources = {
        "postgres": PostgresResource(home=str(db.home), server_url=db.server_url, database_prefix=db.database_prefix),
        "lake": ParquetLake(root=str(db.lake_root)),
    }
    day = first_overdue(db, entry).isoformat()
    with DagsterInstance.ephemeral() as instance, conn_to(db, entry.source) as conn:
        before = content(conn, entry)
        refused = materialize([archive], partition_key=day, resources=resources, instance=instance,
                              raise_on_error=False)
        assert not refused.success and content(conn, entry) == before
        assert "rollups app_metrics_hourly, metric_value_counts are not materialized" in str(refused.all_events)

        assert materialize(rollups, partition_key=day, resources=resources, instance=instance).success
        done = materialize([archive], partition_key=day, resources=resources, instance=instance)
        metadata = done.asset_materializations_for_node(archive.node_def.name)[0].metadata
        assert metadata["rows"].value > 0 and content(conn, entry)[0] == before[0] - metadata["rows"].value

        yesterday = (datetime.now(timezone.utc) - timedelta(days=1)).date().isoformat()
        assert materialize(rollups, partition_key=yesterday, resources=resources, instance=instance).success
        young = materialize([archive], partition_key=yesterday, resources=resources, instance=instance,
                            raise_on_error=False)
        assert not young.success and "keeps 7 days" in str(young.all_events)


def test_a_writer_failure_mid_copy_rolls_back_promptly(db, monkeypatch):
    """ENOSPC (or any error) while the COPY is still streaming: the delete rolls back, no file, no hang."""
    import pyarrow.parquet

    entry = entries("goforge", "container_metrics")[0]
    day = first_overdue(db, entry)

    def disk_full(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    from forge_assets.retention import stream

    monkeypatch.setattr(stream, "ROW_GROUP_ROWS", 100)  # the first write happens while the COPY still streams
    monkeypatch.setattr(pyarrow.parquet.ParquetWriter, "write_table", disk_full)
    with conn_to(db, entry.source) as conn:
        conn.execute("SET statement_timeout = '20s'")
        conn.commit()
        before = content(conn, entry)
        with pytest.raises(OSError, match="No space left"):
            archive_day(conn, entry, day, db.lake_root, NOW)
        assert content(conn, entry) == before
    assert not [f for f in files_of(db, entry) if f"day={day}" in str(f)]


def test_restore_skips_rows_already_back(db):
    """A day that holds some of its archived rows again gets only the missing ones (staging + anti-join)."""
    entry = entries("orchestry", "events")[0]
    day = first_overdue(db, entry, 1)
    with conn_to(db, entry.source) as conn:
        before = content(conn, entry)
        result = archive_day(conn, entry, day, db.lake_root, NOW)
        assert result.rows > 1
        (path,) = {row[1] for row in ledger(db, entry) if row[0] == day and row[3] is None}  # restored before
        back = pq.read_table(db.lake_root / path).slice(0, 1).to_pylist()[0]
        conn.execute(sql.SQL("INSERT INTO events ({}) VALUES ({})").format(
            sql.SQL(", ").join(map(sql.Identifier, back)), sql.SQL(", ").join(sql.Placeholder() * len(back))),
            list(back.values()))
        conn.commit()
        assert restore_day(conn, entry, day, db.lake_root) == result.rows - 1
        assert content(conn, entry) == before


def test_an_export_failing_mid_stream_is_one_clear_error_and_leaves_no_file(db, tmp_path):
    """The reader thread's error (here: division by zero at row 50,000) stops the export and surfaces once."""
    from forge_assets.retention.stream import ExportError, export_conninfo, export_to_parquet

    schema = pa.schema([pa.field("id", pa.int64()), pa.field("x", pa.int32())])
    with conn_to(db, "orchestry") as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
        with pytest.raises(ExportError, match="division by zero"):
            export_to_parquet(export_conninfo(conn), snapshot,
                              "SELECT n::bigint AS id, 1 / (n - 50000) AS x FROM generate_series(1, 200000) n",
                              schema, ("id",), tmp_path / "out.parquet")
        with pytest.raises(ExportError, match="not a snapshot id"):
            export_to_parquet(export_conninfo(conn), "x'; DROP TABLE events; --", "SELECT 1", schema, ("id",),
                              tmp_path / "out.parquet")
    assert list(tmp_path.iterdir()) == []


def test_partitions_read_in_parallel_ranges_archive_every_row_once(db, monkeypatch):
    """A partition split across EXPORT_READERS connections (block ranges of one snapshot) loses no row and
    repeats none."""
    entry = entries("forge", "main_jobevent")[0]
    monkeypatch.setattr(engine, "_SPLIT_BLOCKS", 1)
    day = first_overdue(db, entry, 2)
    with conn_to(db, "forge") as conn:
        start, end = day_window(day, day)
        keys = sorted(conn.execute("SELECT id, job_id FROM main_jobevent WHERE job_created >= %s "
                                   "AND job_created < %s", (start, end)).fetchall())
        conn.rollback()
        result = archive_day(conn, entry, day, db.lake_root, NOW)
    assert result.partitions_dropped and result.rows == len(keys) > 0
    archived = pa.concat_tables(pq.read_table(db.lake_root / f, columns=["id", "job_id"]) for f in result.files)
    assert sorted(zip(*(archived[c].to_pylist() for c in ("id", "job_id")), strict=True)) == keys


def test_work_done_ahead_on_a_thread_hands_over_its_error_and_stops_with_its_consumer():
    """Restore encodes the next batches on a thread (`stream.ahead`): its failure (a file that cannot be
    decoded) is raised in the consumer (the COPY), and when the consumer stops early the thread stops too (no
    thread left)."""
    from forge_assets.retention.stream import ahead

    def failing():
        yield 1
        yield 2
        raise OSError("the file cannot be decoded")

    received = []
    with pytest.raises(OSError, match="cannot be decoded"), ahead(failing(), "forge-restore-encode") as items:
        received.extend(items)
    assert received == [1, 2]

    produced = []

    def endless():
        while True:
            produced.append(len(produced))
            yield produced[-1]

    with ahead(endless(), "forge-restore-encode", depth=2) as items:
        assert next(items) == 0
    assert len(produced) <= 4
    assert not [t for t in threading.enumerate() if t.name == "forge-restore-encode"]

"""The five ways rows used to get lost around an archived day (issue 13), each reproduced on a real
PostgreSQL and real files: after each, every row of the day is in PostgreSQL or in a ledgered file, exactly
once, and no file the run did not write itself was touched."""

import json
import signal
import subprocess
import sys
import threading
from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from helpers import NOW, conn_to, history
from psycopg import sql

from forge_assets.days import day_window
from forge_assets.db import drop_source_databases, source_conninfo
from forge_assets.quality.integrity import archive_integrity
from forge_assets.quality.queries import Window
from forge_assets.retention.backlog import archive_source
from forge_assets.retention.catalog import TableEntry, entries
from forge_assets.retention.engine import (
    RetentionError,
    archive_day,
    days_holding_rows,
    dry_run_day,
    last_overdue_day,
    oldest_day,
    overdue_days,
    restore,
    restore_day,
)
from forge_assets.retention.preflight import PreflightError

EVENTS = entries("orchestry", "events")[0]
TELEMETRY = entries("pulse", "telemetry")[0]
CHILD = str(Path(__file__).with_name("fault_child.py"))
EVENT_COLUMNS = ("id", "event_type", "message", "severity", "timestamp", "app_name")
TELEMETRY_COLUMNS = ("time", "tenant_id", "device_id", "site_id", "msg_type", "seq")
DAY_OF_LISTED = (NOW - timedelta(days=30)).date()


@pytest.fixture(scope="module")
def world(settings, tmp_path_factory):
    target = history(settings, tmp_path_factory, sources=("orchestry", "pulse"), days=100)
    yield target
    drop_source_databases(target)


@pytest.fixture(scope="module")
def event_days(world):
    with conn_to(world, "orchestry") as conn:
        return iter(overdue_days(conn, EVENTS, NOW)[5:-1])


def rows_in_postgres(target, entry, day, columns) -> Counter:
    """The day's rows in PostgreSQL over `columns`, as a multiset."""
    start, end = day_window(day, day)
    query = sql.SQL("SELECT {} FROM {} WHERE {t} >= %s AND {t} < %s").format(
        sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(entry.table), t=sql.Identifier(entry.time_column))
    with conn_to(target, entry.source) as conn:
        return Counter(conn.execute(query, (start, end)).fetchall())


def ledgered(target, entry, day, archived_only=True) -> list[str]:
    with conn_to(target, entry.source) as conn:
        return [p for (p,) in conn.execute(
            "SELECT path FROM forge_retention.archive_ledger WHERE entry = %s AND day = %s AND path IS NOT NULL "
            "AND (restored_at IS NULL OR NOT %s) ORDER BY id", (entry.key, day, archived_only))]


def rows_in_files(target, entry, day, columns, archived_only=True) -> Counter:
    """The rows of the day's ledgered files over `columns` (archived ones: not restored), as a multiset."""
    found = Counter()
    for path in ledgered(target, entry, day, archived_only):
        table = pq.read_table(target.lake_root / path, columns=list(columns))
        found.update(zip(*(table[c].to_pylist() for c in columns), strict=True))
    return found


def day_folder(target, entry, day) -> Path:
    return target.lake_root / "archive" / entry.source / entry.entry_name / f"day={day}"


def assert_exactly_once(target, entry, day, expected: Counter, columns) -> None:
    """Every row is in exactly one of PostgreSQL and an archived ledgered file; the day folder holds nothing
    else of ours; a glob over the day's Parquet files (what DuckDB reads) sees each row once."""
    in_postgres = rows_in_postgres(target, entry, day, columns)
    in_files = rows_in_files(target, entry, day, columns)
    assert in_postgres + in_files == expected, (in_postgres + in_files - expected, expected - in_postgres - in_files)
    archived = {str(target.lake_root / p) for p in ledgered(target, entry, day)}
    on_disk = {str(p) for p in day_folder(target, entry, day).glob("*.parquet")}
    assert on_disk == archived, "a Parquet file in the day folder that is not an archived ledgered file"


def archive(target, entry, day, **kwargs):
    with conn_to(target, entry.source) as conn:
        conn.execute("SET lock_timeout = '30s'")
        conn.commit()
        return archive_day(conn, entry, day, target.lake_root, NOW, wait=True, **kwargs)


# 1. Two deployments sharing one lake ------------------------------------------------------------------

def test_a_second_deployment_on_the_same_lake_is_refused_and_deletes_nothing(world, event_days, settings,
                                                                             tmp_path_factory):
    day = next(event_days)
    expected = rows_in_postgres(world, EVENTS, day, EVENT_COLUMNS)
    first = archive(world, EVENTS, day)
    assert first.files and first.rows == sum(expected.values()) > 0
    other = replace(history(settings, tmp_path_factory, sources=("orchestry",), days=100), lake_root=world.lake_root)
    try:
        with conn_to(other, "orchestry") as conn, pytest.raises(PreflightError, match="belongs to ledger .* not to "
                                                                                     "this deployment's ledger"):
            archive_day(conn, EVENTS, day, other.lake_root, NOW)
        assert rows_in_postgres(other, EVENTS, day, EVENT_COLUMNS), "B's rows are untouched"
    finally:
        drop_source_databases(other)
    assert_exactly_once(world, EVENTS, day, expected, EVENT_COLUMNS)
    with conn_to(world, "orchestry") as conn:
        assert restore_day(conn, EVENTS, day, world.lake_root) == sum(expected.values())
    assert rows_in_postgres(world, EVENTS, day, EVENT_COLUMNS) == expected


def test_the_orphan_sweep_removes_only_its_own_unledgered_files(world, event_days):
    """A README, a foreign Parquet file and a sub-folder planted in a day folder survive every run; the
    day is not stuck; only a file named like this ledger's own and not ledgered is removed."""
    day = next(event_days)
    expected = rows_in_postgres(world, EVENTS, day, EVENT_COLUMNS)
    archive(world, EVENTS, day)
    folder = day_folder(world, EVENTS, day)
    (folder / "README.txt").write_text("notes of an operator")
    (folder / "someone-elses.parquet").write_bytes((world.lake_root / ledgered(world, EVENTS, day)[0]).read_bytes())
    (folder / "sub").mkdir()
    (folder / "sub" / "x.parquet").write_bytes(b"")
    own = folder / Path(ledgered(world, EVENTS, day)[0]).name.replace(".parquet", "-orphan.parquet")
    own.write_bytes(b"left by a run of ours that died before COMMIT")
    with conn_to(world, "orchestry") as conn:  # a late row, so that the next run writes a file
        conn.execute("INSERT INTO events (event_type, message, severity, timestamp) VALUES ('health', 'late', "
                     "'info', %s) RETURNING id", (day_window(day, day)[0] + timedelta(hours=1),))
        conn.commit()
    expected = expected + rows_in_postgres(world, EVENTS, day, EVENT_COLUMNS)
    assert archive(world, EVENTS, day).rows == 1
    assert (folder / "README.txt").read_text() == "notes of an operator"
    assert (folder / "someone-elses.parquet").exists() and (folder / "sub" / "x.parquet").exists()
    assert not own.exists(), "its own orphan is removed"
    in_files = rows_in_files(world, EVENTS, day, EVENT_COLUMNS)
    assert in_files == expected and not rows_in_postgres(world, EVENTS, day, EVENT_COLUMNS)


# 2. Duplicate catalog keys ----------------------------------------------------------------------------

def test_restore_never_skips_a_row_whose_key_repeats_with_other_values(world):
    """pulse.telemetry has no unique key: a late reading repeats (tenant, device, time, seq) with other
    values. Restore loads every archived row; archiving again keeps both, each once."""
    with conn_to(world, "pulse") as conn:
        day = overdue_days(conn, TELEMETRY, NOW)[3]
    expected = rows_in_postgres(world, TELEMETRY, day, TELEMETRY_COLUMNS)
    archive(world, TELEMETRY, day)
    twin = next(iter(expected))
    with conn_to(world, "pulse") as conn:  # the application makes the day's partition again (a new chunk)
        conn.execute(sql.SQL("CREATE TABLE {} PARTITION OF telemetry FOR VALUES FROM ({}) TO ({})").format(
            sql.Identifier(f"telemetry_p{day:%Y%m%d}"), *map(sql.Literal, day_window(day, day))))
        conn.execute("INSERT INTO telemetry (time, tenant_id, device_id, site_id, msg_type, seq) VALUES "
                     "(%s, %s, %s, %s, 'late-duplicate', %s)", (twin[0], twin[1], twin[2], twin[3], twin[5]))
        conn.commit()
        restored = restore(conn, TELEMETRY, day, world.lake_root)
    late = (twin[0], twin[1], twin[2], twin[3], "late-duplicate", twin[5])
    assert restored.rows == sum(expected.values()) and restored.present == 0
    assert rows_in_postgres(world, TELEMETRY, day, TELEMETRY_COLUMNS) == expected + Counter([late])
    archive(world, TELEMETRY, day)
    assert_exactly_once(world, TELEMETRY, day, expected + Counter([late]), TELEMETRY_COLUMNS)


def test_restore_beside_identical_rows_keeps_each_row_as_often_as_it_was_anywhere(world):
    """A keyless table (no unique index) whose day holds one archived row twice and another once again, and a
    row sharing a key with other values: restore adds only what is missing, as a multiset, and says how many
    rows were already there."""
    with conn_to(world, "pulse") as conn:
        day = overdue_days(conn, TELEMETRY, NOW)[5]
    expected = rows_in_postgres(world, TELEMETRY, day, TELEMETRY_COLUMNS)
    twice, once = [row for row in expected if expected[row] == 1][:2]
    with conn_to(world, "pulse") as conn:  # the whole rows, metrics too
        whole = [conn.execute("SELECT metrics::text FROM telemetry WHERE (time, tenant_id, device_id, site_id, "
                              "msg_type, seq) = (%s, %s, %s, %s, %s, %s)", row).fetchone()[0] for row in (twice, once)]
    archive(world, TELEMETRY, day)
    changed = (*twice[:4], "other-values", twice[5])
    with conn_to(world, "pulse") as conn:
        conn.execute(sql.SQL("CREATE TABLE {} PARTITION OF telemetry FOR VALUES FROM ({}) TO ({})").format(
            sql.Identifier(f"telemetry_p{day:%Y%m%d}"), *map(sql.Literal, day_window(day, day))))
        for row, metrics in ((twice, whole[0]), (twice, whole[0]), (once, whole[1]), (changed, whole[0])):
            conn.execute("INSERT INTO telemetry (time, tenant_id, device_id, site_id, msg_type, seq, metrics) "
                         "VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb)", (*row, metrics))
        conn.commit()
        restored = restore(conn, TELEMETRY, day, world.lake_root)
    assert restored.present == 2 and restored.rows == sum(expected.values()) - 2
    assert rows_in_postgres(world, TELEMETRY, day, TELEMETRY_COLUMNS) == expected + Counter([twice, changed])


# 3. Restore, then the application deletes -------------------------------------------------------------

def test_rows_the_application_deletes_after_a_restore_stay_archived(world, event_days):
    day = next(event_days)
    expected = rows_in_postgres(world, EVENTS, day, EVENT_COLUMNS)
    archive(world, EVENTS, day)
    with conn_to(world, "orchestry") as conn:
        restore_day(conn, EVENTS, day, world.lake_root)
        deleted = conn.execute("DELETE FROM events WHERE timestamp >= %s AND timestamp < %s AND id %% 3 = 0",
                               day_window(day, day)).rowcount  # the application's own cleanup
        conn.commit()
    assert deleted > 0
    again = archive(world, EVENTS, day)
    assert again.rows == sum(expected.values()) - deleted and again.rearchived == again.rows and not again.files
    assert_exactly_once(world, EVENTS, day, expected, EVENT_COLUMNS)


def test_a_restored_day_archived_again_writes_only_new_or_changed_rows(world, event_days):
    day = next(event_days)
    expected = rows_in_postgres(world, EVENTS, day, EVENT_COLUMNS)
    archive(world, EVENTS, day)
    with conn_to(world, "orchestry") as conn:
        restore_day(conn, EVENTS, day, world.lake_root)
        (changed,) = conn.execute("UPDATE events SET message = 'changed after restore' WHERE id = (SELECT min(id) "
                                  "FROM events WHERE timestamp >= %s AND timestamp < %s) RETURNING id",
                                  day_window(day, day)).fetchone()
        conn.commit()
    new_version = rows_in_postgres(world, EVENTS, day, EVENT_COLUMNS) - expected
    again = archive(world, EVENTS, day)
    assert len(again.files) == 1 and sum(new_version.values()) == 1
    assert pq.read_table(world.lake_root / again.files[0])["id"].to_pylist() == [changed]
    assert_exactly_once(world, EVENTS, day, expected + new_version, EVENT_COLUMNS)  # both versions kept
    with conn_to(world, "orchestry") as conn:  # the same key in two files with other values is no duplicate
        integrity = archive_integrity(conn, EVENTS, world.lake_root, Window.days(day, day))
    assert integrity.passed and integrity.details["files_checked"] == 2, integrity.samples


def test_archive_integrity_flags_rows_archived_twice(world, event_days):
    """A ledger that lost the restore of a day (its files marked archived while their rows were back in the
    table) makes the next archive write every row again: integrity counts each extra copy, naming keys."""
    day = next(event_days)
    rows = sum(rows_in_postgres(world, EVENTS, day, EVENT_COLUMNS).values())
    archive(world, EVENTS, day)
    with conn_to(world, "orchestry") as conn:
        restore_day(conn, EVENTS, day, world.lake_root)
        conn.execute("UPDATE forge_retention.archive_ledger SET restored_at = NULL WHERE entry = %s AND day = %s",
                     (EVENTS.key, day))
        conn.commit()
    assert archive(world, EVENTS, day).rows == rows
    with conn_to(world, "orchestry") as conn:
        integrity = archive_integrity(conn, EVENTS, world.lake_root, Window.days(day, day))
    assert (integrity.passed, integrity.failing) == (False, rows)
    assert integrity.samples and all("archived in more than one file" in s for s in integrity.samples)


# 4. Composite foreign keys and ON DELETE triggers ------------------------------------------------------

@pytest.mark.parametrize(("schema", "action"), [("public", "CASCADE"), ("elsewhere", "SET NULL"),
                                                ("public", "NO ACTION")])
def test_every_foreign_key_is_refused_before_anything_is_written(world, event_days, schema, action):
    day = next(event_days)
    expected = rows_in_postgres(world, EVENTS, day, EVENT_COLUMNS)
    child = f"{schema}.event_notes_{action.replace(' ', '_').lower()}"
    with conn_to(world, "orchestry", autocommit=True) as admin:
        admin.execute("CREATE UNIQUE INDEX IF NOT EXISTS events_id_app ON events (id, app_name)")
        admin.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        admin.execute(f"CREATE TABLE {child} (note text, event_id int, app_name varchar(253), "
                      f"FOREIGN KEY (event_id, app_name) REFERENCES events (id, app_name) ON DELETE {action})")
        notes = admin.execute(f"INSERT INTO {child} SELECT 'note', id, app_name FROM events WHERE timestamp >= %s "
                              "AND timestamp < %s AND app_name IS NOT NULL LIMIT 7", day_window(day, day)).rowcount
    assert notes > 0
    try:
        with conn_to(world, "orchestry") as conn, pytest.raises(RetentionError, match=f"{notes} rows of .*event_notes_.* "
                                                                                     f"still reference.*{action}"):
            archive_day(conn, EVENTS, day, world.lake_root, NOW)
        assert rows_in_postgres(world, EVENTS, day, EVENT_COLUMNS) == expected
        assert not day_folder(world, EVENTS, day).exists(), "nothing was written"
        with conn_to(world, "orchestry") as conn:
            assert conn.execute(f"SELECT count(*) FROM {child} WHERE event_id IS NOT NULL").fetchone()[0] == notes
            conn.execute(f"DELETE FROM {child}")
            conn.commit()
        assert archive(world, EVENTS, day).rows == sum(expected.values()), "no child rows left: archived"
    finally:
        with conn_to(world, "orchestry", autocommit=True) as admin:
            admin.execute(f"DROP TABLE {child}")


def test_on_delete_triggers_are_refused_unless_the_catalog_opts_in(world, event_days):
    day = next(event_days)
    expected = rows_in_postgres(world, EVENTS, day, EVENT_COLUMNS)
    with conn_to(world, "orchestry", autocommit=True) as admin:
        admin.execute("CREATE TABLE deleted_events (id int)")
        admin.execute("CREATE FUNCTION keep_deleted() RETURNS trigger LANGUAGE plpgsql AS "
                      "$$ BEGIN INSERT INTO deleted_events VALUES (OLD.id); RETURN OLD; END $$")
        admin.execute("CREATE TRIGGER keep_deleted AFTER DELETE ON events FOR EACH ROW EXECUTE FUNCTION keep_deleted()")
    try:
        with conn_to(world, "orchestry") as conn, pytest.raises(PreflightError, match="ON DELETE trigger.*keep_deleted"):
            archive_day(conn, EVENTS, day, world.lake_root, NOW)
        assert rows_in_postgres(world, EVENTS, day, EVENT_COLUMNS) == expected
        result = archive(world, replace(EVENTS, delete_triggers=("keep_deleted",)), day)
        with conn_to(world, "orchestry") as conn:
            assert conn.execute("SELECT count(*) FROM deleted_events").fetchone()[0] == result.rows > 0
    finally:
        with conn_to(world, "orchestry", autocommit=True) as admin:
            admin.execute("DROP FUNCTION keep_deleted() CASCADE")
            admin.execute("DROP TABLE deleted_events")


# 5. Killed right after the COMMIT of a re-archive of a restored day -----------------------------------

def test_kill_after_commit_of_a_rearchive_leaves_every_row_once(world, event_days):
    day = next(event_days)
    expected = rows_in_postgres(world, EVENTS, day, EVENT_COLUMNS)
    archive(world, EVENTS, day)
    with conn_to(world, "orchestry") as conn:
        restore_day(conn, EVENTS, day, world.lake_root)
        conn.execute("INSERT INTO events (event_type, message, severity, timestamp) VALUES ('health', 'new', 'info', %s)",
                     (day_window(day, day)[0] + timedelta(hours=2),))
        conn.commit()
    expected = expected + (rows_in_postgres(world, EVENTS, day, EVENT_COLUMNS) - expected)
    spec = {"conninfo": source_conninfo(world, "orchestry"), "entry": EVENTS.key, "day": day.isoformat(),
            "lake": str(world.lake_root), "now": NOW.isoformat(), "fault": "after_commit"}
    child = subprocess.run([sys.executable, CHILD, json.dumps(spec)], capture_output=True, text=True, timeout=120)
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert_exactly_once(world, EVENTS, day, expected, EVENT_COLUMNS)
    # the next run of the entry, over a range of days (not only this one), changes nothing of it
    reports = archive_source(world, "orchestry", NOW, "events", until=day)
    assert not any(r.failed for r in reports)
    assert_exactly_once(world, EVENTS, day, expected, EVENT_COLUMNS)
    assert len(list(day_folder(world, EVENTS, day).glob("*.parquet"))) == 2  # the restored file and the new one


# Locks: two days of one partitioned table at once ------------------------------------------------------

def test_concurrent_runs_on_one_partitioned_table_never_deadlock(world):
    """Each run locks its day's partitions and deletes from the default one: the per-table lock orders them."""
    with conn_to(world, "pulse") as conn:
        days = overdue_days(conn, TELEMETRY, NOW)[10:16]
        conn.execute("CREATE TABLE IF NOT EXISTS telemetry_default PARTITION OF telemetry DEFAULT")
        for day in days:  # rows in the default partition too, so every run DELETEs there
            conn.execute("INSERT INTO telemetry_default (time, tenant_id, device_id, site_id, seq) "
                         "SELECT %s + g * interval '1 minute', 't', 'd', 's', g FROM generate_series(1, 50) g",
                         (day_window(day, day)[0] - timedelta(days=1000),))
        conn.commit()
    expected = {day: rows_in_postgres(world, TELEMETRY, day, TELEMETRY_COLUMNS) for day in days}
    errors, results = [], []

    def run(chosen):
        try:
            with conn_to(world, "pulse") as conn:
                for day in chosen:
                    results.append(archive_day(conn, TELEMETRY, day, world.lake_root, NOW, wait=True))
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(days[i::2],)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    for day in days:
        assert_exactly_once(world, TELEMETRY, day, expected[day], TELEMETRY_COLUMNS)
        assert not rows_in_postgres(world, TELEMETRY, day, TELEMETRY_COLUMNS)
    with conn_to(world, "pulse") as conn:
        runs = conn.execute("SELECT count(*), bool_and(table_bytes_after < table_bytes_before) FROM "
                            "forge_retention.archive_runs WHERE entry = %s AND day = ANY(%s)",
                            (TELEMETRY.key, days)).fetchone()
    assert runs == (len(days), True), "each run recorded the space its dropped partitions gave back"


# Unfinished work --------------------------------------------------------------------------------------

def test_unfinished_work_is_never_purged(settings, tmp_path_factory):
    """Old jobs still running keep their events and host summaries; they follow once they finish."""
    target = history(settings, tmp_path_factory, sources=("forge",), days=100)
    try:
        job_entry, summaries, events = (entries("forge", t)[0] for t in ("main_job", "main_jobhostsummary",
                                                                          "main_jobevent"))
        with conn_to(target, "forge") as conn:
            day = max(overdue_days(conn, events, NOW), key=lambda d: conn.execute(
                "SELECT count(*) FROM main_job WHERE created >= %s AND created < %s", day_window(d, d)).fetchone()[0])
            start, end = day_window(day, day)
            running = [i for (i,) in conn.execute(
                "UPDATE main_job SET status = 'running', finished = NULL WHERE id IN (SELECT id FROM main_job WHERE "
                "created >= %s AND created < %s ORDER BY id LIMIT 2) RETURNING id", (start, end))]
            kept = {t: conn.execute(f"SELECT count(*) FROM {t} WHERE job_id = ANY(%s)", (running,)).fetchone()[0]
                    for t in ("main_jobevent", "main_jobhostsummary")}
            conn.commit()
        assert len(running) == 2 and all(kept.values())
        for entry in (events, summaries):
            result = archive(target, entry, day)
            assert result.rows > 0
        with conn_to(target, "forge") as conn:
            for table, count in kept.items():
                assert conn.execute(f"SELECT count(*) FROM {table} WHERE job_id = ANY(%s)", (running,)).fetchone()[0] \
                    == count, f"{table} of running jobs stay"
            others = conn.execute("SELECT count(*) FROM main_jobhostsummary WHERE created >= %s AND created < %s "
                                  "AND job_id <> ALL(%s)", (start, end, running)).fetchone()[0]
            assert others == 0
        with conn_to(target, "forge") as conn:
            jobs = conn.execute("SELECT count(*) FROM main_job WHERE created >= %s AND created < %s",
                                (start, end)).fetchone()[0]
            assert dry_run_day(conn, job_entry, day, NOW).rows == jobs - 2, "running jobs would not move"
        with conn_to(target, "forge") as conn:
            conn.execute("UPDATE main_job SET status = 'successful', finished = created + interval '1 minute' "
                         "WHERE id = ANY(%s)", (running,))
            conn.commit()
        assert archive(target, summaries, day).rows == kept["main_jobhostsummary"]
        assert archive(target, events, day).rows == kept["main_jobevent"]
    finally:
        drop_source_databases(target)


def test_open_alerts_and_running_jobs_per_catalog():
    from forge_assets.retention.catalog import CATALOG

    declared = {e.key: [u.describe() for u in e.unfinished] for e in CATALOG if e.unfinished}
    assert set(declared) == {"forge.main_jobevent", "forge.main_jobhostsummary", "forge.main_job",
                             "goforge.deployment_logs", "pulse.fleet_alert"}
    assert "status in (OPEN, ACKNOWLEDGED)" in declared["pulse.fleet_alert"][0]


def test_timestamps_nobody_can_file_under_a_day(world):
    """A row in 1900 is archived as its own day without walking the empty days before it; ±infinity rows
    stay (they have no day), and nothing crashes on them; no empty day folder is ever made."""
    with conn_to(world, "orchestry") as conn:
        conn.execute("INSERT INTO events (event_type, message, severity, timestamp) VALUES "
                     "('health', 'long ago', 'info', '1900-01-01 12:00+00'), ('health', 'never', 'info', '-infinity'),"
                     " ('health', 'forever', 'info', 'infinity')")
        conn.commit()
    began = datetime.now(timezone.utc)
    reports = archive_source(world, "orchestry", NOW, "events", until=datetime(1900, 1, 5).date())
    assert (datetime.now(timezone.utc) - began).total_seconds() < 60
    (report,) = reports
    assert not report.failed and [r.day.isoformat() for r in report.results] == ["1900-01-01"]
    assert report.rows == 1 and any("-infinity" in n for n in report.notes)
    with conn_to(world, "orchestry") as conn:
        assert conn.execute("SELECT count(*) FROM events WHERE timestamp IN ('infinity', '-infinity')").fetchone()[0] == 2
    folders = list((world.lake_root / "archive").rglob("day=*"))
    assert all(any(f.iterdir()) for f in folders), "no empty day folder"


def test_a_purge_locks_only_the_partitions_its_day_can_be_in(world, monkeypatch):
    """Through the parent of a table RANGE-partitioned on its time column, the DELETE is pruned to the
    day's partitions: the relations a purge locks do not grow with the table's number of partitions."""
    from forge_assets.retention import engine

    with conn_to(world, "pulse") as conn:
        day = days_holding_rows(conn, TELEMETRY, oldest_day(conn, TELEMETRY), last_overdue_day(TELEMETRY, NOW), 21)[20]
        leaves = conn.execute("SELECT count(*) FROM pg_partition_tree('telemetry') WHERE isleaf").fetchone()[0]
    seen = []

    def spy(conn):
        seen.append(conn.execute("SELECT count(DISTINCT l.relation) FROM pg_locks l JOIN pg_class c ON c.oid = "
                                 "l.relation WHERE l.pid = pg_backend_pid() AND c.relkind IN ('r', 'p') AND "
                                 "c.relnamespace <> 'pg_catalog'::regnamespace").fetchone()[0])

    monkeypatch.setattr(engine, "_before_commit", spy)
    assert archive(world, TELEMETRY, day).rows > 0
    assert leaves > 30 and seen and seen[0] <= 5, (seen, leaves)


def test_a_purge_of_a_list_partitioned_table_locks_only_the_leaves_holding_its_day(world, monkeypatch):
    """main_jobevent is LIST-partitioned (by job): no pruning by day. The purge probes each leaf before its
    transaction and then locks only the leaves that hold the day's rows, however many partitions there are;
    every row of the day is archived, the others stay."""
    from forge_assets.retention import engine

    entry = TableEntry(source="orchestry", table="listed", time_column="ts", key_columns=("id",), keep_days=1)
    day = DAY_OF_LISTED
    with conn_to(world, "orchestry", autocommit=True) as admin:
        admin.execute("CREATE TABLE listed (id int, ts timestamptz, k int) PARTITION BY LIST (k)")
        for k in range(40):
            admin.execute(sql.SQL("CREATE TABLE {} PARTITION OF listed FOR VALUES IN ({})").format(
                sql.Identifier(f"listed_{k}"), sql.Literal(k)))
        admin.execute("CREATE INDEX ON listed (ts)")
        # 40 partitions with rows of other days; the day's rows in partitions 3 and 7 only
        admin.execute("INSERT INTO listed SELECT g, %s - (1 + mod(g, 5)) * interval '1 day', mod(g, 40) "
                      "FROM generate_series(1, 400) g", (day_window(day, day)[0],))
        admin.execute("INSERT INTO listed SELECT 1000 + g, %s + g * interval '1 minute', "
                      "CASE WHEN mod(g, 2) = 0 THEN 3 ELSE 7 END FROM generate_series(1, 30) g", (day_window(day, day)[0],))
    seen = []

    def spy(conn):
        seen.append(conn.execute("SELECT array_agg(DISTINCT c.relname::text) FROM pg_locks l JOIN pg_class c ON "
                                 "c.oid = l.relation WHERE l.pid = pg_backend_pid() AND c.relkind IN ('r', 'p') AND "
                                 "c.relnamespace <> 'pg_catalog'::regnamespace").fetchone()[0])

    monkeypatch.setattr(engine, "_before_commit", spy)
    assert archive(world, entry, day).rows == 30
    assert seen and {r for r in seen[0] if r.startswith("listed")} <= {"listed", "listed_3", "listed_7"}, seen
    with conn_to(world, "orchestry") as conn:
        assert conn.execute("SELECT count(*) FROM listed").fetchone()[0] == 400
        assert conn.execute("SELECT count(*) FROM listed WHERE ts >= %s AND ts < %s",
                            day_window(day, day)).fetchone()[0] == 0

"""A world less tidy than the tests' (issue 13): values Parquet did not take, a schema that moved on, a full
disk, a killed export, connection limits, hostile settings. Each ends in one line and exit code 2 with
nothing changed, or in every value back exactly."""

import errno
import os
import subprocess
import sys
import time
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pyarrow.parquet as pq
import pytest
from helpers import NOW, conn_to, content, history

from forge_assets.days import day_window
from forge_assets.db import drop_source_databases, source_conninfo
from forge_assets.retention.catalog import TableEntry, entries
from forge_assets.retention.engine import RetentionError, archive_day, overdue_days, restore, restore_day

CLI = str(Path(sys.executable).with_name("forge-assets"))
EVENTS = entries("orchestry", "events")[0]
DAY = date(2026, 3, 1)


@pytest.fixture(scope="module")
def hist(settings, tmp_path_factory):
    target = history(settings, tmp_path_factory, sources=("orchestry",), days=100)
    yield target
    drop_source_databases(target)


@pytest.fixture(scope="module")
def event_days(hist):
    with conn_to(hist, "orchestry") as conn:
        return iter(overdue_days(conn, EVENTS, NOW)[3:-1])


def cli(target, *args, env=None):
    environment = {**os.environ, "FORGE_DB_PREFIX": target.database_prefix, "FORGE_PURGE": "all", "FORGE_LAKE_URI": str(target.lake_root),
                   **(env or {})}
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=300, env=environment)


def one_line(run, *expected):
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2 and len(lines) == 1, run.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    assert "Traceback" not in run.stderr
    return lines[0]


def files_of_day(target, entry, day):
    folder = target.lake_root / "archive" / entry.source / entry.entry_name / f"day={day}"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# Every value round-trips exactly --------------------------------------------------------------------

TYPES = {
    "numeric(12,3)": ["1.500", "-0.001", "NaN", "999999999.999"],
    "numeric": ["0", "123456789012345678901234567890.000000001", "NaN", "Infinity", "-Infinity", "1e-20"],
    "double precision": ["NaN", "Infinity", "-Infinity", "-0", "1.7976931348623157e308", "5e-324", "0.1"],
    "real": ["NaN", "-Infinity", "3.4028235e38", "1.1754944e-38"],
    "timestamp with time zone": ["infinity", "-infinity", "1900-01-01 00:00:00+00", "0044-03-15 12:00:00+00 BC",
                                 "50000-01-01 00:00:00+00", "2026-03-01 12:34:56.789012+00"],
    "timestamp without time zone": ["infinity", "-infinity", "0001-01-01 00:00", "4713-01-01 00:00 BC",
                                    "99999-12-31 23:59:59.999999"],
    "date": ["infinity", "-infinity", "4713-01-01 BC", "20000-01-01", "2026-03-01"],
    "jsonb": ['{"a": [1, 2.50, {"b": null}], "u": "\\u00e9\\u2603"}', "[]", '"s"', "null"],
    "json": ['{ "keep" :  "spacing",  "dup": 1, "dup": 2 }'],
    "uuid": ["00000000-0000-0000-0000-000000000000", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"],
    "inet": ["10.0.0.1/8", "::1", "192.168.0.0/16"],
    "mood": ["sad", "happy"],
    "integer[]": ["{1,NULL,3}", "{}", "{{1,2},{3,4}}"],
    "text[]": ['{"a,b","c\\"d",NULL,""}'],
    "bytea": ["\\x00ff", "\\x"],
    "interval": ["1 year 2 mons -3 days 04:05:06.789", "-178000000 years"],
    "boolean": ["true", "false"],
    "smallint": ["-32768", "32767"],
    "bigint": ["-9223372036854775808", "9223372036854775807"],
    "text": ["émoji 🎉 \"quoted\", comma\nnewline\\backslash", "", "trailing  "],
    "character(5)": ["ab", ""],
    "character varying(20)": ["x", ""],
}


@pytest.mark.parametrize("pg_type", list(TYPES))
def test_every_value_round_trips_exactly(hist, pg_type):
    """Archive a day of a table holding the type's awkward values (and a NULL), then restore it: the table is
    as it was, value for value; the file was checked against PostgreSQL's content checksum on the way."""
    table = "roundtrip_" + "".join(ch if ch.isalnum() else "_" for ch in pg_type)
    entry = TableEntry(source="orchestry", table=table, time_column="ts", key_columns=("id",), keep_days=1)
    start = day_window(DAY, DAY)[0]
    with conn_to(hist, "orchestry", autocommit=True) as admin:
        admin.execute("DO $$ BEGIN CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy'); "
                      "EXCEPTION WHEN duplicate_object THEN NULL; END $$")
        admin.execute(f'CREATE TABLE "{table}" (id int PRIMARY KEY, ts timestamptz NOT NULL, v {pg_type})')
        for i, value in enumerate([*TYPES[pg_type], None]):
            admin.execute(f'INSERT INTO "{table}" VALUES (%s, %s, %s::{pg_type})', (i, start + timedelta(seconds=i), value))
    with conn_to(hist, "orchestry") as conn:
        before = content(conn, entry)
        result = archive_day(conn, entry, DAY, hist.lake_root, NOW)
        assert result.rows == len(TYPES[pg_type]) + 1 and len(result.files) == 1
        assert conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] == 0
        conn.rollback()
        (checksum,) = conn.execute("SELECT content_checksum FROM forge_retention.archive_ledger WHERE entry = %s",
                                   (entry.key,)).fetchone()
        assert checksum.startswith(f"{result.rows}:")
        assert restore_day(conn, entry, DAY, hist.lake_root) == result.rows
        assert content(conn, entry) == before


# Crashes that must be one line, exit 2, nothing changed ----------------------------------------------

def test_disk_full_is_one_line(hist, event_days, monkeypatch, capsys):
    from forge_assets import cli as cli_module

    day = next(event_days)
    with conn_to(hist, "orchestry") as conn:
        before = content(conn, EVENTS)

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pq.ParquetWriter, "write_table", full)
    monkeypatch.setenv("FORGE_DB_PREFIX", hist.database_prefix)
    monkeypatch.setenv("FORGE_LAKE_URI", str(hist.lake_root))
    code = cli_module.main(["archive", "--source", "orchestry", "--table", "events", "--day", str(day)])
    stderr = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(stderr) == 1 and "No space left on device" in stderr[0], stderr
    with conn_to(hist, "orchestry") as conn:
        assert content(conn, EVENTS) == before
    assert files_of_day(hist, EVENTS, day) == []


def test_terminated_export_backend_is_one_line(hist, event_days):
    day = next(event_days)
    with conn_to(hist, "orchestry") as conn:
        conn.execute("INSERT INTO events (event_type, message, severity, timestamp) SELECT 'health', "
                     "rpad('big ' || g, 400, '.'), 'info', %s + g * interval '100 ms' FROM generate_series(1, 150000) g",
                     (day_window(day, day)[0],))
        conn.commit()
        before = content(conn, EVENTS)
    child = subprocess.Popen([CLI, "archive", "--source", "orchestry", "--table", "events", "--day", str(day)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "FORGE_DB_PREFIX": hist.database_prefix,
                                  "FORGE_LAKE_URI": str(hist.lake_root)})
    with conn_to(hist, "orchestry", autocommit=True) as watch:
        deadline = time.monotonic() + 120
        while not watch.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'COPY (SELECT%%' "
                                "AND pid <> pg_backend_pid()").fetchall():
            assert child.poll() is None and time.monotonic() < deadline, child.communicate()
            time.sleep(0.02)
    _, stderr = child.communicate(timeout=120)
    one_line(subprocess.CompletedProcess([], child.returncode, "", stderr), "the export failed")
    with conn_to(hist, "orchestry") as conn:
        assert content(conn, EVENTS) == before
    assert files_of_day(hist, EVENTS, day) == []


def test_connection_limit_on_the_export_is_one_line(hist, event_days):
    day = next(event_days)
    role = f"limited_{hist.database_prefix.strip('_')}"
    with conn_to(hist, "orchestry", autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 1 IN ROLE forge_retention")
        before = content(admin, EVENTS)
    try:
        params = psycopg.conninfo.conninfo_to_dict(source_conninfo(hist, "orchestry"))
        url = f"postgresql://{role}@/{params['dbname']}?host={params.get('host', '')}"
        if params.get("port"):
            url += f"&port={params['port']}"
        run = cli(hist, "archive", "--source", "orchestry", "--table", "events", "--day", str(day),
                  env={"FORGE_ORCHESTRY_URL": url})
        one_line(run, "the export failed")
        with conn_to(hist, "orchestry") as conn:
            assert content(conn, EVENTS) == before
        assert files_of_day(hist, EVENTS, day) == []
    finally:
        with conn_to(hist, "orchestry", autocommit=True) as admin:
            admin.execute(f"DROP ROLE {role}")


@pytest.mark.parametrize(("args", "env", "expected"), [
    (["archive", "--source", "orchestry", "--table", "events", "--day", "9999-12-31"], {}, "is not overdue ever"),
    (["restore", "--source", "orchestry", "--table", "events", "--day", "9999-12-31"], {}, "no archived file"),
    (["archive", "--source", "orchestry", "--table", "events", "--day", "2026-02-01"], {"FORGE_LAKE_URI": "/proc"},
     "/proc"),
])
def test_absurd_days_and_lakes_are_one_line(hist, args, env, expected):
    with conn_to(hist, "orchestry") as conn:
        before = content(conn, EVENTS)
    one_line(cli(hist, *args, env=env), expected)
    with conn_to(hist, "orchestry") as conn:
        assert content(conn, EVENTS) == before


@pytest.mark.parametrize(("query", "expected"), [("connect_timeout=abc", "connect_timeout"),
                                                 ("options=-c%20default_transaction_read_only%3Don", "the connection is read-only")])
def test_hostile_connection_parameters_are_one_line(hist, query, expected):
    params = psycopg.conninfo.conninfo_to_dict(source_conninfo(hist, "orchestry"))
    url = f"postgresql://{params.get('user', 'postgres')}@/{params['dbname']}?host={params.get('host', '')}&{query}"
    with conn_to(hist, "orchestry") as conn:
        before = content(conn, EVENTS)
    one_line(cli(hist, "archive", "--source", "orchestry", "--table", "events", "--until", str(NOW.date()),
                 env={"FORGE_ORCHESTRY_URL": url}), expected)
    with conn_to(hist, "orchestry") as conn:
        assert content(conn, EVENTS) == before


def test_a_missing_table_blocks_only_its_own_entry(hist, event_days):
    day = next(event_days)
    with conn_to(hist, "orchestry", autocommit=True) as admin:
        admin.execute("ALTER TABLE metrics RENAME TO metrics_gone")
    try:
        run = cli(hist, "archive", "--source", "orchestry", "--day", str(day))
    finally:
        with conn_to(hist, "orchestry", autocommit=True) as admin:
            admin.execute("ALTER TABLE metrics_gone RENAME TO metrics")
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2 and len(lines) == 2 and all("table 'metrics' does not exist" in line for line in lines)
    assert "orchestry.events" in run.stdout and files_of_day(hist, EVENTS, day), "events were archived regardless"


# Restore after the schema moved on --------------------------------------------------------------------

def test_restore_maps_columns_by_name_and_says_what_did_not_fit(hist, event_days):
    day = next(event_days)
    with conn_to(hist, "orchestry", autocommit=True) as admin:
        admin.execute("ALTER TABLE events ADD COLUMN loud text GENERATED ALWAYS AS (upper(severity)) STORED")
    try:
        with conn_to(hist, "orchestry") as conn:
            moved = archive_day(conn, EVENTS, day, hist.lake_root, NOW).rows
        with conn_to(hist, "orchestry", autocommit=True) as admin:
            admin.execute("ALTER TABLE events RENAME COLUMN node_id TO node")
        run = cli(hist, "restore", "--source", "orchestry", "--table", "events", "--day", str(day))
        assert run.returncode == 0, run.stderr
        assert f"{moved:,} rows restored" in run.stdout and "column(s) loud, node_id not loaded" in run.stdout
        with conn_to(hist, "orchestry") as conn:
            start, end = day_window(day, day)
            assert conn.execute("SELECT count(*) FROM events WHERE timestamp >= %s AND timestamp < %s AND loud = "
                                "upper(severity)", (start, end)).fetchone()[0] == moved
    finally:
        with conn_to(hist, "orchestry", autocommit=True) as admin:
            admin.execute("ALTER TABLE events DROP COLUMN loud")
            admin.execute("ALTER TABLE events RENAME COLUMN node TO node_id")


def test_restore_into_a_new_table_when_the_table_is_gone(hist):
    entry = TableEntry(source="orchestry", table="gone_soon", time_column="ts", key_columns=("id",), keep_days=1)
    with conn_to(hist, "orchestry", autocommit=True) as admin:
        admin.execute("CREATE TABLE gone_soon (id int, ts timestamptz, note text, amount numeric(8,2))")
        admin.execute("INSERT INTO gone_soon SELECT g, %s + g * interval '1 s', 'n' || g, g / 3.0 "
                      "FROM generate_series(1, 20) g", (day_window(DAY, DAY)[0],))
    with conn_to(hist, "orchestry") as conn:
        before = content(conn, entry)
        assert archive_day(conn, entry, DAY, hist.lake_root, NOW).rows == 20
    with conn_to(hist, "orchestry", autocommit=True) as admin:
        admin.execute("DROP TABLE gone_soon")
    with conn_to(hist, "orchestry") as conn:
        with pytest.raises(RetentionError, match="does not exist any more.*--into"):
            restore(conn, entry, DAY, hist.lake_root)
        result = restore(conn, entry, DAY, hist.lake_root, into="gone_soon_back")
        assert result.rows == 20 and result.table == "gone_soon_back"
        assert content(conn, replace(entry, table="gone_soon_back")) == before


def test_restore_without_a_partition_for_the_rows_is_a_clear_refusal(hist):
    entry = TableEntry(source="orchestry", table="listy", time_column="ts", key_columns=("id",), keep_days=1)
    with conn_to(hist, "orchestry", autocommit=True) as admin:
        admin.execute("CREATE TABLE listy (id int, ts timestamptz, k int) PARTITION BY LIST (k)")
        admin.execute("CREATE TABLE listy_1 PARTITION OF listy FOR VALUES IN (1)")
        admin.execute("INSERT INTO listy SELECT g, %s + g * interval '1 s', 1 FROM generate_series(1, 10) g",
                      (day_window(DAY, DAY)[0],))
    with conn_to(hist, "orchestry") as conn:
        assert archive_day(conn, entry, DAY, hist.lake_root, NOW).rows == 10
    with conn_to(hist, "orchestry", autocommit=True) as admin:
        admin.execute("DROP TABLE listy_1")
    with conn_to(hist, "orchestry") as conn:
        with pytest.raises(RetentionError, match="no partition of listy accepts the archived rows"):
            restore(conn, entry, DAY, hist.lake_root)
        assert conn.execute("SELECT restored_at FROM forge_retention.archive_ledger WHERE entry = %s",
                            (entry.key,)).fetchone()[0] is None, "nothing changed: still archived"


def test_a_time_column_at_infinity_never_breaks_the_source(hist):
    """-infinity used to break oldest_day for the whole source (the sensor's probe)."""
    from forge_assets.retention.engine import days_holding_rows, oldest_day

    with conn_to(hist, "orchestry") as conn:
        conn.execute("INSERT INTO events (event_type, message, severity, timestamp) VALUES "
                     "('health', 'x', 'info', '-infinity'), ('health', 'y', 'info', 'infinity')")
        conn.commit()
        first = oldest_day(conn, EVENTS)
        assert first is not None and first.year >= 2026
        assert days_holding_rows(conn, EVENTS, date(1, 1, 1), date(9999, 12, 30), 3)[0] == first


def test_the_content_checksum_reproduces_postgresql_hash_functions(hist):
    """Bit for bit, for strings of every length up to 40 bytes and beyond, and for every fixed-width kind."""
    import random

    import pyarrow as pa

    from forge_assets.retention.content import column_hashes

    rng = random.Random(7)
    texts = ["", "a", "é", "🎉", *("".join(rng.choice("ab é🎉\n,\"") for _ in range(n)) for n in range(1, 45)),
             "x" * 1000, "trailing  "]
    ints = [0, 1, -1, 2**31 - 1, -2**31, 2**63 - 1, -2**63, 123456789012]
    floats = [0.0, -0.0, 1.5, -2.25, float("nan"), float("inf"), float("-inf"), 1e-300, 5e-324]
    with conn_to(hist, "orchestry") as conn:
        for seed in (1, 7, 2**40 + 3):
            expected = [conn.execute("SELECT hashtextextended(%s, %s)", (t, seed)).fetchone()[0] % 2**64 for t in texts]
            assert column_hashes(pa.array(texts), "text", seed).tolist() == expected
            expected = [conn.execute("SELECT hashbpcharextended(%s::bpchar, %s)", (t, seed)).fetchone()[0] % 2**64
                        for t in texts]
            assert column_hashes(pa.array(texts), "character(50)", seed).tolist() == expected
            expected = [conn.execute("SELECT hashint8extended(%s, %s)", (i, seed)).fetchone()[0] % 2**64 for i in ints]
            assert column_hashes(pa.array(ints, pa.int64()), "bigint", seed).tolist() == expected
            small = [i for i in ints if -2**31 <= i < 2**31]
            expected = [conn.execute("SELECT hashint4extended(%s::int, %s)", (i, seed)).fetchone()[0] % 2**64
                        for i in small]
            assert column_hashes(pa.array(small, pa.int32()), "integer", seed).tolist() == expected
            expected = [conn.execute("SELECT hashfloat8extended(%s::float8, %s)", (f, seed)).fetchone()[0] % 2**64
                        for f in floats]
            assert column_hashes(pa.array(floats), "double precision", seed).tolist() == expected
        # more strings than are hashed at once, in a slice of a longer array (an Arrow offset), a few of them
        # long (their last blocks are hashed in plain Python)
        many = ["".join(rng.choice("ab é🎉 ") for _ in range(rng.randrange(0, 90))) for _ in range(20_000)]
        many[100:140] = ["é🎉ab" * rng.randrange(100, 30_000) for _ in range(40)]
        expected = [h % 2**64 for (h,) in conn.execute(
            "SELECT hashtextextended(t, 5) FROM unnest(%s::text[]) WITH ORDINALITY u(t, i) ORDER BY i", (many[3:],))]
        assert column_hashes(pa.array(many)[3:], "text", 5).tolist() == expected

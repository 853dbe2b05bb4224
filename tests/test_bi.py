"""The lake as BI tools read it: the seeds' own questions answered from rollups after the purge, the DuckDB
file of typed views (and its history views with the live rows), schema evolution across days, bad input."""

import math
import os
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from helpers import NOW, conn_to, history

from forge_assets.bi.lakedb import build_lake_database
from forge_assets.bi.questions import QUESTIONS
from forge_assets.days import day_window
from forge_assets.db import source_conninfo
from forge_assets.lake import lake_path, write_parquet_atomic
from forge_assets.retention.catalog import entries
from forge_assets.retention.engine import archive_day
from forge_assets.rollups.registry import ROLLUPS
from forge_assets.rollups.spec import compute_rollup

SOURCES = ("forge", "orchestry")
DAYS = 12
FAR = NOW + timedelta(days=400)  # every day is overdue for every entry
PURGED = {"forge": ("main_jobevent", "main_jobhostsummary", "main_driftdetection", "main_hostfactsnapshot",
                    "main_job", "main_auditevent"),
          "orchestry": ("events", "metrics_instance", "metrics_app")}


def _days():
    first = (NOW - timedelta(days=DAYS)).date()
    return [first + timedelta(days=i) for i in range(DAYS)]  # complete days only


def write_rollups(target, days):
    for spec in (s for s in ROLLUPS if s.source in SOURCES):
        with conn_to(target, spec.source) as conn:
            tables = compute_rollup(conn, spec, days[0], days[-1])
        for day, table in tables.items():
            write_parquet_atomic(table, lake_path(target.lake_root, "rollups", spec.name, f"day={day}",
                                                  "part-0.parquet"))


def archive(target, source, names, days):
    with conn_to(target, source) as conn:
        for name in names:
            (entry,) = entries(source, name)[:1]
            for day in days:
                archive_day(conn, entry, day, target.lake_root, FAR)


def ask_source(target, question, first, last):
    start, end = day_window(first, last)
    with conn_to(target, question.source, autocommit=True) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        cursor = conn.execute(question.source_sql, {"start": start, "end": end})
        names = [d.name for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def ask_lake(database, question, first, last):
    with duckdb.connect(str(database), read_only=True) as con:
        cursor = con.execute(f"SELECT * FROM {question.name}(?::DATE, ?::DATE)", [first, last])
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def same_answer(question, expected, actual):
    """The lake's rows equal the source's, keyed by the question's key; floats as `question.exact` says."""
    def keyed(rows):
        return {tuple(r[k] for k in question.key): r for r in rows}
    left, right = keyed(expected), keyed(actual)
    assert left.keys() == right.keys(), f"{question.name}: groups differ: {set(left) ^ set(right)}"
    assert len(left) == len(expected) == len(actual)
    for key, row in left.items():
        other = right[key]
        assert row.keys() == other.keys()
        for column, value in row.items():
            got = other[column]
            if column == "avg_value":
                assert math.isclose(value, got, rel_tol=1e-12), f"{question.name} {key} {column}: {value} != {got}"
            elif column in ("min_value", "max_value"):
                assert np.float32(value) == np.float32(got), f"{question.name} {key} {column}: {value} != {got}"
            else:
                assert value == got, f"{question.name} {key} {column}: source {value!r} != lake {got!r}"


@pytest.fixture(scope="module")
def scenario(settings, tmp_path_factory):
    """Forge and Orchestry with DAYS days of history; every rollup written; the first days purged after the
    seed questions were asked of the source over several windows."""
    target = history(settings, tmp_path_factory, sources=SOURCES, days=DAYS + 1, scale=0.3)
    days = _days()
    write_rollups(target, days)
    windows = [(days[0], days[2]), (days[1], days[7]), (days[0], days[-1]), (days[-3], days[-1]), (days[4], days[4])]
    before = {(q.name, w): ask_source(target, q, *w) for q in QUESTIONS for w in windows}
    purged = days[:4]
    for source in SOURCES:
        archive(target, source, PURGED[source], purged)
    return target, days, windows, before, purged


def test_the_seed_questions_have_the_same_answers_from_the_lake_before_and_after_the_purge(scenario, tmp_path):
    target, days, windows, before, purged = scenario
    database = build_lake_database(target.lake_root, tmp_path / "lake.duckdb").path
    assert {q.source for q in QUESTIONS} == {"forge", "orchestry"}
    for question in QUESTIONS:
        answered = [w for w in windows if before[(question.name, w)]]
        assert len(answered) >= 4 and windows[0] in answered, f"{question.name}: the source had rows in the windows"
        for window in windows:
            expected = before[(question.name, window)]
            same_answer(question, expected, ask_lake(database, question, *window))
            if window[1] >= days[4]:  # reaches days still in PostgreSQL: the source answers the same now
                if window[0] > purged[-1]:
                    same_answer(question, ask_source(target, question, *window), ask_lake(database, question, *window))
        gone = ask_source(target, question, *windows[0])
        assert gone != before[(question.name, windows[0])], f"{question.name}: the purge removed the first window's rows"


def test_template_host_outcomes_add_up_to_the_job_host_summaries(scenario, tmp_path):
    target, days, _, _, purged = scenario
    database = build_lake_database(target.lake_root, tmp_path / "lake.duckdb").path
    first, last = days[5], days[-1]  # summaries still in PostgreSQL
    start, end = day_window(first, last)
    with conn_to(target, "forge") as conn:
        expected = {(r[0], r[1]): r[2:] for r in conn.execute(
            "SELECT jt.name, s.host_name, count(*), count(*) FILTER (WHERE s.failures > 0), "
            "count(*) FILTER (WHERE s.dark > 0), sum(s.ok), sum(s.changed), sum(s.failures), sum(s.dark), "
            "sum(s.skipped) FROM main_jobhostsummary s JOIN main_job j ON j.id = s.job_id "
            "JOIN main_jobtemplate jt ON jt.id = j.job_template_id "
            "WHERE j.created >= %s AND j.created < %s GROUP BY 1, 2", (start, end)).fetchall()}
    with duckdb.connect(str(database), read_only=True) as con:
        actual = {(r[0], r[1]): tuple(r[2:]) for r in con.execute(
            "SELECT job_template_name, host_name, sum(runs), sum(runs_failed), sum(runs_unreachable), sum(ok), "
            "sum(changed), sum(failures), sum(unreachable), sum(skipped) FROM template_host_outcomes "
            "WHERE day BETWEEN ? AND ? AND job_template_name IS NOT NULL GROUP BY 1, 2", [first, last]).fetchall()}
        purged_runs = con.execute("SELECT sum(runs) FROM template_host_outcomes WHERE day <= ?", [purged[-1]]).fetchone()
    assert expected and actual == expected
    assert any(v[1] for v in actual.values()) and any(v[2] for v in actual.values()), "failures and unreachables"
    assert purged_runs[0] > 0, "the purged days' outcomes are still in the lake"


def _cli(database, home, sql):
    duckdb_cli = shutil.which("duckdb", path=os.path.dirname(sys.executable))
    assert duckdb_cli, "the duckdb CLI (duckdb-cli) is installed with the dev extras"
    done = subprocess.run([duckdb_cli, "-readonly", "-csv", str(database), "-c", sql], capture_output=True, text=True,
                          env={**os.environ, "HOME": str(home)}, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_duckdb_file_opens_in_the_cli_with_every_view_typed(scenario, tmp_path):
    target, days, _, _, _ = scenario
    home = tmp_path / "home"
    live = {s: source_conninfo(target, s) for s in SOURCES}
    report = build_lake_database(target.lake_root, tmp_path / "lake.duckdb", live,
                                 extension_directory=str(home / ".duckdb" / "extensions"))
    assert report.unread == []
    rollups = [s.name for s in ROLLUPS if s.source in SOURCES]
    archived = [f"archive_{s}_{n}".lower() for s in SOURCES for n in PURGED[s]]
    assert set(rollups + archived) <= set(report.views)
    assert {f"history_{s}_{n}".lower() for s in SOURCES for n in PURGED[s]} <= set(report.views)
    for view in report.views:
        count = int(_cli(report.path, home, f"SELECT count(*) AS n FROM {view}").split()[-1])
        assert count > 0, f"{view} returns rows in the CLI"
    types = dict(line.split(",")[:2] for line in _cli(
        report.path, home, "SELECT column_name, column_type FROM (DESCRIBE archive_orchestry_events)").splitlines()[1:])
    assert types["details"] == "JSON" and types["day"] == "DATE" and types["timestamp"] == "TIMESTAMP WITH TIME ZONE"
    audit = _cli(report.path, home, "SELECT typeof(ip_address), typeof(details), family(ip_address) "
                                    "FROM archive_forge_main_auditevent WHERE ip_address IS NOT NULL LIMIT 1")
    assert audit.splitlines()[1] == "INET,JSON,4"
    with duckdb.connect(str(report.path), read_only=True, config={"extension_directory": str(home / ".duckdb/extensions")}) as con:
        described = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE archive_forge_main_job)").fetchall())
        assert described["day"] == "DATE" and described["created"] == "TIMESTAMP WITH TIME ZONE"
        assert described["elapsed"].startswith("DECIMAL")
        for spec in (s for s in ROLLUPS if s.source in SOURCES):
            assert con.execute(f"SELECT typeof(day) FROM {spec.name} LIMIT 1").fetchone()[0] == "DATE"


def test_what_a_job_printed_has_one_answer_before_and_after_its_day_is_archived(scenario, tmp_path):
    target, days, _, _, purged = scenario
    day = days[6]
    start, end = day_window(day, day)
    with conn_to(target, "forge") as conn:
        job = conn.execute("SELECT job_id FROM main_jobevent WHERE job_created >= %s AND job_created < %s "
                           "GROUP BY job_id ORDER BY count(*) DESC LIMIT 1", (start, end)).fetchone()[0]
    home = tmp_path / "home"
    report = build_lake_database(target.lake_root, tmp_path / "lake.duckdb", {"forge": source_conninfo(target, "forge")},
                                 extension_directory=str(home / ".duckdb" / "extensions"))
    question = (f"SELECT counter, event, stdout FROM history_forge_main_jobevent WHERE job_id = {job} "
                "ORDER BY counter")
    with duckdb.connect(str(report.path), read_only=True, config={"extension_directory": str(home / ".duckdb/extensions")}) as con:
        live = con.execute(question).fetchall()
        assert con.execute(f"SELECT count(*) FROM archive_forge_main_jobevent WHERE job_id = {job}").fetchone()[0] == 0
    archive(target, "forge", ("main_jobevent",), [day])
    with duckdb.connect(str(report.path), read_only=True, config={"extension_directory": str(home / ".duckdb/extensions")}) as con:
        archived = con.execute(question).fetchall()
        in_files = con.execute(f"SELECT count(*) FROM archive_forge_main_jobevent WHERE job_id = {job}").fetchone()[0]
    with conn_to(target, "forge") as conn:
        assert conn.execute("SELECT count(*) FROM main_jobevent WHERE job_id = %s", (job,)).fetchone()[0] == 0
    assert len(live) > 10 and in_files == len(live)
    assert archived == live, "the same rows, in PostgreSQL before and in the lake after"
    cli = _cli(report.path, home, f"SELECT count(*) FROM history_forge_main_jobevent WHERE job_id = {job}")
    assert int(cli.split()[-1]) == len(live)


def test_a_day_with_foreign_missing_and_corrupt_files_still_opens_and_names_them(scenario, tmp_path):
    target, days, _, _, purged = scenario
    lake = tmp_path / "lake"
    shutil.copytree(target.lake_root, lake)
    (lake / "rollups" / "job_status_counts" / f"day={days[3]}" / "notes.txt").write_text("not data")
    (lake / "rollups" / "failing_hosts" / f"day={days[5]}" / "part-0.parquet").unlink()
    (lake / "archive" / "forge" / "main_job" / f"day={purged[1]}" / "broken.parquet").write_bytes(b"PAR1 nope")
    (lake / "rollups" / "app_events_hourly" / "day=yesterday").mkdir()
    report = build_lake_database(lake, tmp_path / "lake.duckdb")
    line = report.unread_line()
    assert "\n" not in line and len(report.unread) == 4, line
    for part in (f"day={days[3]}/notes.txt (foreign file)", f"rollups/failing_hosts: no file for {days[5]}",
                 "broken.parquet (unreadable Parquet", "app_events_hourly/day=yesterday (not a day=YYYY-MM-DD folder)"):
        assert part in line
    with duckdb.connect(str(report.path), read_only=True) as con:
        for view in report.views:
            assert con.execute(f"SELECT count(*) FROM {view}").fetchone()[0] > 0, view
        assert con.execute("SELECT count(*) FROM lake_unread").fetchone()[0] == 4
        files = con.execute("SELECT files FROM lake_manifest WHERE view = 'failing_hosts'").fetchone()[0]
        removed = con.execute("SELECT count(*) FROM failing_hosts WHERE day = ?", [days[5]]).fetchone()[0]
        kept = con.execute("SELECT count(*) FROM job_status_counts WHERE day = ?", [days[3]]).fetchone()[0]
    assert files == len(days) - 1 and removed == 0 and kept > 0


def test_a_column_added_dropped_and_widened_between_days_reads_as_one_table(scenario, tmp_path):
    """The documented reads of docs/bi.md: DuckDB (union_by_name), pyarrow (unified schema), pandas."""
    import pandas as pd
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    target, days, _, _, purged = scenario
    (entry,) = entries("orchestry", "events")
    first, second, third = days[7], days[8], days[9]
    with conn_to(target, "orchestry", autocommit=True) as conn:
        archive(target, "orchestry", ("events",), [first])
        conn.execute("ALTER TABLE events ADD COLUMN ticket text")
        conn.execute("UPDATE events SET ticket = 'T-' || id WHERE timestamp >= %s AND timestamp < %s",
                     day_window(second, second))
        archive(target, "orchestry", ("events",), [second])
        conn.execute("ALTER TABLE events DROP COLUMN ticket")
        conn.execute("ALTER TABLE events ALTER COLUMN id TYPE bigint")
        archive(target, "orchestry", ("events",), [third])
        fingerprints = conn.execute(
            "SELECT day, schema_fingerprint, file_schema FROM forge_retention.archive_ledger WHERE entry = %s "
            "AND day = ANY(%s) ORDER BY day", (entry.key, [first, second, third])).fetchall()
        rows = dict(conn.execute("SELECT day, sum(row_count) FROM forge_retention.archive_ledger WHERE entry = %s "
                                 "GROUP BY day", (entry.key,)).fetchall())
    assert len({f for _, f, _ in fingerprints}) == 3, "each schema has its own fingerprint in the ledger"
    id_types = {d: next(c["pg_type"] for c in s if c["name"] == "id") for d, _, s in fingerprints}
    assert id_types == {first: "integer", second: "integer", third: "bigint"}
    total = sum(rows.values())
    directory = target.lake_root / "archive" / "orchestry" / "events"

    report = build_lake_database(target.lake_root, tmp_path / "lake.duckdb")
    with duckdb.connect(str(report.path), read_only=True) as con:
        assert con.execute("SELECT count(*), count(ticket) FROM archive_orchestry_events").fetchone() == (
            total, rows[second])
        assert con.execute("SELECT typeof(id) FROM archive_orchestry_events LIMIT 1").fetchone()[0] == "BIGINT"
    assert any("archive_orchestry_events: 3 schemas" in n for n in report.notes)

    files = sorted(directory.glob("day=*/*.parquet"))
    schema = pa.unify_schemas([pq.read_schema(f) for f in files], promote_options="permissive")
    schema = schema.append(pa.field("day", pa.date32()))
    table = ds.dataset(files, schema=schema, format="parquet",
                       partitioning=ds.partitioning(pa.schema([("day", pa.date32())]), flavor="hive"),
                       partition_base_dir=str(directory)).to_table()
    assert table.num_rows == total and table.schema.field("id").type == pa.int64()
    assert table.schema.field("day").type == pa.date32()
    assert pa.compute.count(table["ticket"]).as_py() == rows[second]
    frame = table.to_pandas(types_mapper=pd.ArrowDtype)
    assert len(frame) == total and str(frame["id"].dtype) == "int64[pyarrow]"
    assert frame["ticket"].notna().sum() == rows[second]


def test_fingerprints_are_recorded_for_every_archived_file(scenario):
    target, _, _, _, _ = scenario
    with conn_to(target, "forge") as conn:
        missing, files = conn.execute(
            "SELECT count(*) FILTER (WHERE schema_fingerprint IS NULL OR file_schema IS NULL), count(*) "
            "FROM forge_retention.archive_ledger WHERE path IS NOT NULL").fetchone()
    assert files > 0 and missing == 0


def test_lake_command_writes_the_file_and_names_what_it_could_not_read(scenario, tmp_path, capsys, monkeypatch):
    from dataclasses import replace

    from forge_assets import cli

    target, days, _, _, _ = scenario
    lake = tmp_path / "lake"
    shutil.copytree(target.lake_root, lake)
    (lake / "rollups" / "job_status_counts" / f"day={days[2]}" / "stray.csv").write_text("a,b")
    monkeypatch.setattr(cli, "load_settings", lambda: replace(target, lake_root=lake))
    assert cli.main(["lake", "--no-history"]) == 0
    out = capsys.readouterr().out
    assert f"wrote {lake / 'lake.duckdb'}" in out and "forge_longest_jobs" in out
    assert [line for line in out.splitlines() if line.startswith("not read (1): ")] == [
        f"not read (1): rollups/job_status_counts/day={days[2]}/stray.csv (foreign file)"]
    with duckdb.connect(str(lake / "lake.duckdb"), read_only=True) as con:
        assert con.execute(f"SELECT count(*) FROM forge_jobs_by_status(DATE '{days[0]}', DATE '{days[-1]}')").fetchone()[0] > 0


def test_naive_utc_timestamps_and_uuids_come_back_typed(settings, tmp_path_factory, tmp_path):
    target = history(settings, tmp_path_factory, sources=("openorchestrator", "goforge"), days=3)
    day = (NOW - timedelta(days=2)).date()
    archive(target, "openorchestrator", ("Logs",), [day])
    archive(target, "goforge", ("deployment_logs",), [day])
    with conn_to(target, "openorchestrator") as conn:
        first = conn.execute('SELECT min(log_time) FROM "Logs"').fetchone()[0]
    report = build_lake_database(target.lake_root, tmp_path / "lake.duckdb",
                                 {s: source_conninfo(target, s) for s in ("openorchestrator", "goforge")},
                                 extension_directory=str(tmp_path / "ext"))
    with duckdb.connect(str(report.path), read_only=True, config={"extension_directory": str(tmp_path / "ext")}) as con:
        con.execute("SET TimeZone = 'UTC'")
        archived = con.execute("SELECT min(log_time), typeof(min(log_time)) FROM archive_openorchestrator_logs").fetchone()
        live = con.execute("SELECT min(log_time) FROM history_openorchestrator_logs WHERE day > ?", [day]).fetchone()[0]
        uuids = con.execute("SELECT typeof(deployment_id), count(*) FROM history_goforge_deployment_logs "
                            "GROUP BY 1").fetchall()
    with conn_to(target, "goforge") as conn:
        all_logs = conn.execute("SELECT count(*) FROM deployment_logs").fetchone()[0]
        archived_logs = conn.execute("SELECT sum(row_count) FROM forge_retention.archive_ledger").fetchone()[0]
    assert uuids == [("UUID", all_logs + archived_logs)] and archived_logs > 0
    assert archived[1] == "TIMESTAMP WITH TIME ZONE"
    assert archived[0].date() == day and archived[0].tzinfo is not None
    assert live == first.replace(tzinfo=timezone.utc)
    assert datetime(2000, 1, 1, tzinfo=timezone.utc) < archived[0] < live


def _blocks(text, info):
    """The fenced blocks of a markdown text whose info string is exactly `info`."""
    blocks, current = [], None
    for line in text.splitlines():
        if current is None and line.startswith("```") and line[3:].strip() == info:
            current = []
        elif current is not None and line.startswith("```"):
            blocks.append("\n".join(current))
            current = None
        elif current is not None:
            current.append(line)
    return blocks


def test_the_bi_guide_snippets_run(scenario, monkeypatch):
    """docs/bi.md: every `python` block runs against the lake, every `sql` block in the lake's DuckDB file."""
    from pathlib import Path

    target, days, _, _, _ = scenario
    assert (days[0].isoformat(), days[-1].isoformat()) == ("2026-06-18", "2026-06-29"), "the guide's dates"
    text = (Path(__file__).parent.parent / "docs" / "bi.md").read_text(encoding="utf-8")
    python, statements = _blocks(text, "python"), _blocks(text, "sql")
    assert len(python) == 2 and len(statements) == 3
    monkeypatch.setenv("FORGE_LAKE_URI", str(target.lake_root))
    for block in python:
        namespace = {}
        exec(compile(block, "docs/bi.md", "exec"), namespace)  # noqa: S102 (the guide's own snippet)
        assert len(namespace["frame"]) > 0 and namespace["table"].num_rows == len(namespace["frame"])
    assert namespace["longest"]["runs_successful"].sum() > 0
    report = build_lake_database(target.lake_root, target.lake_root / "lake.duckdb",
                                 {"forge": source_conninfo(target, "forge")})
    with duckdb.connect(str(report.path), read_only=True) as con:
        for block in statements:
            for statement in (s.strip() for s in block.replace(".forge/lake", str(target.lake_root)).split(";")):
                if statement and not all(line.startswith("--") for line in statement.splitlines()):
                    rows = con.execute(statement).fetchall()
                    assert rows or "may be empty" in block, statement


def test_lake_command_with_an_unwritable_output_is_one_line(scenario, tmp_path, capsys, monkeypatch):
    from forge_assets import cli

    target, _, _, _, _ = scenario
    blocked = tmp_path / "file"
    blocked.write_text("a file, not a directory")
    monkeypatch.setattr(cli, "load_settings", lambda: target)
    assert cli.main(["lake", "--no-history", "--output", str(blocked / "lake.duckdb")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("forge-assets: error: cannot write ") and len(err.strip().splitlines()) == 1

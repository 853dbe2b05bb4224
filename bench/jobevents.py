"""A main_jobevent-shaped table for the archive benchmark, built in SQL and reset from a template.

The table lives in its own database (`<prefix>bench_events_forge`), migrated like any Forge source, so the
engine archives it through the catalog's `forge.main_jobevent` entry. `--rows` rows are spread evenly over
`--days` consecutive UTC days from BASE_DAY; each day has JOBS_PER_DAY jobs, one list partition per day
holding its finished jobs, and the events of its RUNNING_JOBS newest jobs in the default partition (the
engine's row-delete path). Event data is about 330 B of JSON and stdout about 100 B, as in the seed.

A plain table `bench_template` keeps the rows; `reset` rebuilds the partitions of given days from it,
because an archive drops them.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import date, timedelta

import psycopg
from psycopg import sql

from bench.common import bench_settings
from forge_assets.config import Settings
from forge_assets.days import day_window
from forge_assets.db import ensure_source_databases, source_connection

BASE_DAY = date(2025, 1, 1)
JOBS_PER_DAY = 40
RUNNING_JOBS = 4  # of each day's jobs, whose events stay in the default partition
COLUMNS = ("id", "created", "modified", "job_created", "job_id", "host_id", "host_name", "event", "event_data",
           "failed", "changed", "uuid", "parent_uuid", "playbook", "play", "role", "task", "counter", "stdout",
           "verbosity", "start_line", "end_line")

# Row i of day d (0-based) belongs to job d * 1000 + i % JOBS_PER_DAY, launched at d + job * 30 min.
_GENERATE = """
INSERT INTO bench_template
SELECT g.n + 1, j.created + (g.i / {jobs}) * interval '10 ms', j.created + (g.i / {jobs}) * interval '10 ms',
       j.created, j.job_id, g.i % 500, 'host-' || (g.i % 500) || '.example.com',
       (ARRAY['runner_on_ok', 'runner_on_changed', 'runner_on_failed', 'playbook_on_task_start',
              'runner_on_skipped'])[g.i % 5 + 1],
       format('{{"host": "host-%s.example.com", "task": "Install package %s", "role": "role_%s", "res": '
              '{{"changed": %s, "rc": %s, "stdout": "%s", "start": "%s", "end": "%s", "invocation": '
              '{{"module_args": {{"name": "pkg-%s", "state": "present"}}}}}}, "event_loop": null, "uuid": "%s"}}',
              g.i % 500, g.i % 97, g.i % 13, g.i % 3 = 0, g.i % 7, md5(g.n::text), j.created, j.created,
              g.i % 97, md5((g.n * 7)::text)),
       g.i % 50 = 0, g.i % 3 = 0, md5(g.n::text), md5((g.i / {jobs})::text), 'site.yml', 'Configure web tier',
       'role_' || (g.i % 13), 'Install package ' || (g.i % 97), g.i / {jobs},
       format('ok: [host-%s.example.com] => (item=pkg-%s) changed=%s %s', g.i % 500, g.i % 97, g.i % 3 = 0,
              md5((g.n * 3)::text)),
       0, g.i / {jobs} * 3, g.i / {jobs} * 3 + 2
FROM (SELECT n, n / {per_day} AS d, n % {per_day} AS i FROM generate_series(0, {rows} - 1) AS n) g
CROSS JOIN LATERAL (SELECT g.d * 1000 + g.i % {jobs} AS job_id,
                           {base}::timestamptz + g.d * interval '1 day' + (g.i % {jobs}) * interval '30 min' AS created
                   ) j
"""


def events_settings() -> Settings:
    """The benchmark's own Forge database, apart from the rollup benchmark's seeded one."""
    settings = bench_settings()
    return replace(settings, database_prefix=f"{settings.database_prefix}events_",
                   lake_root=settings.home / "bench-events-lake")


def days_of(count: int) -> list[date]:
    return [BASE_DAY + timedelta(days=d) for d in range(count)]


def build(rows: int, days: int) -> None:
    """Create the template for `rows` over `days` (unless it already has that shape) and reset every day."""
    from forge_assets.migrate import run_migrations

    settings = events_settings()
    ensure_source_databases(settings, ("forge",))
    run_migrations(settings, ("forge",))
    shape = f"{rows} rows over {days} days"
    with source_connection(settings, "forge") as conn:
        current = conn.execute("SELECT obj_description(to_regclass('bench_template'), 'pg_class')").fetchone()[0]
        if current != shape:
            print(f"building the job-event template: {shape}")
            conn.execute("DROP TABLE IF EXISTS bench_template")
            conn.execute("CREATE TABLE bench_template (LIKE main_jobevent)")
            conn.execute("SET synchronous_commit = off")
            conn.execute(sql.SQL(_GENERATE).format(jobs=JOBS_PER_DAY, per_day=-(-rows // days), rows=rows,
                                                   base=sql.Literal(BASE_DAY.isoformat())))
            conn.execute("CREATE INDEX ON bench_template (job_created)")
            conn.execute(sql.SQL("COMMENT ON TABLE bench_template IS {}").format(sql.Literal(shape)))
            conn.commit()
            conn.execute("ANALYZE bench_template")
            conn.commit()
    reset(days_of(days), everything=True)


def reset(days: list[date], everything: bool = False) -> None:
    """Give each of `days` back its template rows: its partition (finished jobs) and its default rows; the
    archive ledger and files of those days are discarded with what they held."""
    settings = events_settings()
    with source_connection(settings, "forge") as conn:
        conn.execute("SET synchronous_commit = off")
        conn.execute("DELETE FROM forge_retention.archive_ledger WHERE entry = 'forge.main_jobevent' "
                     "AND day = ANY(%s)", (days,))
        for day in days:
            shutil.rmtree(settings.lake_root / "archive" / "forge" / "main_jobevent" / f"day={day}",
                          ignore_errors=True)
        if everything:
            conn.execute("TRUNCATE main_jobevent")
        for day in days:
            start, end = day_window(day, day)
            partition = sql.Identifier(f"main_jobevent_p{day:%Y%m%d}")
            base = (day - BASE_DAY).days * 1000
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(partition))
            if not everything:
                conn.execute("DELETE FROM main_jobevent WHERE job_created >= %s AND job_created < %s", (start, end))
            conn.execute(sql.SQL("CREATE TABLE {} PARTITION OF main_jobevent FOR VALUES IN ({})").format(
                partition, sql.SQL(", ").join(sql.Literal(base + j) for j in range(JOBS_PER_DAY - RUNNING_JOBS))))
            conn.execute("INSERT INTO main_jobevent SELECT * FROM bench_template "
                         "WHERE job_created >= %s AND job_created < %s", (start, end))
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE main_jobevent")


def connect() -> psycopg.Connection:
    return psycopg.connect(conninfo())


def conninfo() -> str:
    from forge_assets.db import source_conninfo

    return source_conninfo(events_settings(), "forge")

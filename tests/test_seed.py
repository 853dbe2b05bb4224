"""The data generator: deterministic, realistic in the ways the rollups and checks rely on, and safe."""

from datetime import datetime, timezone

import pytest
from conftest import table_checksum

from forge_assets.config import SOURCES
from forge_assets.migrate import run_migrations
from forge_assets.quality.queries import count_query
from forge_assets.quality.rules import rule
from forge_assets.seed.common import SeedPlan
from forge_assets.seed.dirty import VIOLATIONS
from forge_assets.seed.load import SeedError, seed_sources, table_counts

ANCHOR = datetime(2026, 3, 14, 15, 9, tzinfo=timezone.utc)
SMALL = dict(days=3, scale=0.3, anchor=ANCHOR)



def _count(conn, name):
    """Rows breaking a data-quality rule, over the whole table (the rule's own SQL)."""
    return conn.execute(count_query(rule(name))).fetchone()[0]


def _checksums(connect, target, source):
    with connect(source, target) as conn:
        return {table: table_checksum(conn, table) for table in table_counts(conn)}


def test_same_seed_same_data_different_seed_different_data(scratch_settings, connect):
    run_migrations(scratch_settings, SOURCES)
    seed_sources(scratch_settings, SeedPlan(seed=11, **SMALL))
    first = {s: _checksums(connect, scratch_settings, s) for s in SOURCES}
    seed_sources(scratch_settings, SeedPlan(seed=11, **SMALL), reset=True)
    again = {s: _checksums(connect, scratch_settings, s) for s in SOURCES}
    assert again == first
    seed_sources(scratch_settings, SeedPlan(seed=12, **SMALL), ("forge",), reset=True)
    other = _checksums(connect, scratch_settings, "forge")
    assert other["main_jobevent"] != first["forge"]["main_jobevent"]


def test_dirty_injects_exactly_the_documented_violations(scratch_settings, connect):
    run_migrations(scratch_settings, SOURCES)
    seed_sources(scratch_settings, SeedPlan(seed=5, dirty=True, **SMALL))
    for violation in VIOLATIONS:
        assert rule(violation.rule).source == violation.source
        with connect(violation.source, scratch_settings) as conn:
            assert _count(conn, violation.rule) == violation.rows, violation.rule


def test_clean_data_has_no_violations(seeded, connect):
    for violation in VIOLATIONS:
        with connect(violation.source) as conn:
            assert _count(conn, violation.rule) == 0, violation.rule


def test_history_has_the_shapes_the_rollups_need(seeded, connect):
    plan, counts = seeded
    assert all(counts[s] for s in SOURCES)
    with connect("forge") as conn:
        running = conn.execute("SELECT count(*) FROM main_job WHERE status = 'running' AND finished IS NULL").fetchone()[0]
        assert running >= 2, "jobs still running at the end of the history"
        assert conn.execute("SELECT count(*) FROM main_tenantquotaevent WHERE decision = 'blocked'").fetchone()[0] > 0
        per_template = conn.execute(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY elapsed) FROM main_job "
            "WHERE finished IS NOT NULL GROUP BY job_template_id HAVING count(*) >= 5"
        ).fetchall()
        medians = sorted(m for (m,) in per_template)
        assert medians[-1] > 10 * medians[0], "templates have distinct duration profiles"
        failing = conn.execute(
            "SELECT max(share) FROM (SELECT avg((failures > 0)::int) AS share FROM main_jobhostsummary "
            "GROUP BY host_id HAVING count(*) >= 5) s"
        ).fetchone()[0]
        assert failing >= 0.3, "a few hosts keep failing"
        first, last = conn.execute("SELECT min(created), max(created) FROM main_job").fetchone()
        assert first >= plan.first_day and last < plan.anchor
    with connect("orchestry") as conn:
        afternoon, night = conn.execute(
            "SELECT avg(value) FILTER (WHERE extract(hour FROM timestamp AT TIME ZONE 'UTC') = 13), "
            "avg(value) FILTER (WHERE extract(hour FROM timestamp AT TIME ZONE 'UTC') = 1) "
            "FROM metrics WHERE metric_type = 'rps'"
        ).fetchone()
        assert afternoon > 1.5 * night, "metrics follow a daily rhythm"
    with connect("openorchestrator") as conn:
        backlog = conn.execute(
            """SELECT count(*) FROM "Queues" WHERE queue_name = 'invoices' AND status = 'NEW'"""
        ).fetchone()[0]
        assert backlog > 10, "a queue has a growing backlog"


def test_seed_refuses_a_database_that_already_holds_data(seeded, settings):
    plan, _ = seeded
    with pytest.raises(SeedError, match="already holds data"):
        seed_sources(settings, plan, ("goforge",))


def test_seed_refuses_a_database_without_the_stand_in_schema(scratch_settings):
    with pytest.raises(SeedError, match="never into a real source"):
        seed_sources(scratch_settings, SeedPlan(seed=1, **SMALL), ("pulse",))

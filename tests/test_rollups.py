"""Rollups: totals reconcile with the source, statistics are ordered, the lake reads with hive partitioning."""

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from dagster import AssetKey, DagsterInstance, build_schedule_context

from forge_assets.days import day_window
from forge_assets.rollups.registry import ROLLUPS
from forge_assets.rollups.spec import (
    Reconciliation,
    RollupSpec,
    compute_rollup,
    exact_seconds,
    flag,
    hour,
    integer,
    real,
    real4,
    text,
)

ROLLUP_NAMES = [spec.name for spec in ROLLUPS]


def _days(plan):
    """The complete UTC days of the seeded history (the anchor's own day is still in progress)."""
    first = plan.first_day.date()
    return [first + timedelta(days=i) for i in range((plan.anchor.date() - first).days)]


@pytest.fixture(scope="module")
def computed(seeded, connect):
    """Every rollup over the whole seeded history, plus the anchor's incomplete day."""
    plan, _ = seeded
    days = _days(plan)
    result = {}
    for spec in ROLLUPS:
        result[spec.name] = compute_rollup(connect(spec.source), spec, days[0], plan.anchor.date())
    return result


@pytest.fixture(scope="module")
def connect(settings):
    import psycopg

    from forge_assets.db import source_conninfo

    opened = {}

    def _connect(source):
        if source not in opened:
            opened[source] = psycopg.connect(source_conninfo(settings, source), autocommit=True)
        return opened[source]

    yield _connect
    for conn in opened.values():
        conn.close()


@pytest.mark.parametrize("name", ROLLUP_NAMES)
def test_totals_reconcile_with_the_source_for_every_day(name, seeded, computed, connect):
    plan, _ = seeded
    spec = next(s for s in ROLLUPS if s.name == name)
    conn = connect(spec.source)
    checked = 0
    for day, table in computed[name].items():
        start, end = day_window(day, day)
        expected = conn.execute(spec.reconciliation_query, {"start": start, "end": end}).fetchone()[0]
        assert (pc.sum(table[spec.reconciliation.column]).as_py() or 0) == expected, f"{name} on {day}"
        checked += expected > 0
    assert checked >= len(_days(plan)) - 1, "the history has data on (nearly) every day"


def _ordered_triples(schema: pa.Schema):
    """(p50, p95, max) column triples by name: p50_x/p95_x/max_x or x_p50/x_p95/x_max."""
    names = set(schema.names)
    for name in names:
        if "p95" in name:
            triple = [name.replace("p95", tag) for tag in ("p50", "p95", "max")]
            yield [n for n in triple if n in names]


@pytest.mark.parametrize("name", ROLLUP_NAMES)
def test_percentiles_are_ordered_and_durations_non_negative(name, computed):
    table = pa.concat_tables(computed[name].values())
    triples = list(_ordered_triples(table.schema))
    for triple in triples:
        for lower, upper in zip(triple, triple[1:], strict=False):
            bad = pc.sum(pc.greater(table[lower], pc.add(table[upper], 1e-9))).as_py()
            assert not bad, f"{name}: {lower} > {upper} in {bad} rows"
    for column in (c for c in table.column_names if c.endswith("_s") or c.endswith("_seconds")):
        assert (pc.min(table[column]).as_py() or 0) >= 0, f"{name}.{column} is negative"


def test_running_jobs_are_counted_but_not_timed(seeded, computed, connect):
    plan, _ = seeded
    today = computed["job_duration_by_template"][plan.anchor.date()]
    running = connect("forge").execute(
        "SELECT count(*) FROM main_job WHERE finished IS NULL AND created >= %s", (day_window(plan.anchor.date(),
                                                                                           plan.anchor.date())[0],)
    ).fetchone()[0]
    assert running >= 2
    assert pc.sum(today["runs_unfinished"]).as_py() == running
    assert pc.sum(today["finished_runs"]).as_py() == pc.sum(today["runs"]).as_py() - running


def test_peak_concurrency_matches_a_sweep_in_python(seeded, computed, connect):
    plan, _ = seeded
    day = _days(plan)[-1]
    start, end = day_window(day, day)
    rows = connect("forge").execute(
        "SELECT organization_id, started, coalesce(finished, 'infinity') FROM main_job "
        "WHERE started < %(end)s AND coalesce(finished, 'infinity') > %(start)s", {"start": start, "end": end}
    ).fetchall()
    expected = {}
    for org in {r[0] for r in rows}:
        edges = sorted([(max(s, start), 1) for o, s, f in rows if o == org]
                       + [(min(f, end), -1) for o, s, f in rows if o == org], key=lambda e: (e[0], e[1]))
        running = peak = 0
        for _, delta in edges:
            running += delta
            peak = max(peak, running)
        expected[org] = peak
    usage = computed["tenant_usage"][day].to_pylist()
    assert {r["organization_id"]: r["peak_concurrent_jobs"] for r in usage if r["organization_id"] in expected} == expected


def test_failing_hosts_have_streaks(computed, connect):
    """consecutive_failing_days is the run of consecutive UTC days, ending that day, on which the host had a
    failed run: recomputed here in Python from the job host summaries. (How long the seeded flaky hosts' runs
    are depends on the hour the suite's history ends: asserting a fixed length made the test fail at some hours.)"""
    table = [{**row, "day": day} for day, rows in computed["failing_hosts"].items() for row in rows.to_pylist()]
    failing = {}
    for host, day in connect("forge").execute(
            "SELECT DISTINCT s.host_id, (j.created AT TIME ZONE 'UTC')::date FROM main_jobhostsummary s "
            "JOIN main_job j ON j.id = s.job_id WHERE s.failures > 0 AND s.host_id IS NOT NULL"):
        failing.setdefault(host, set()).add(day)

    def streak(host, day):
        count = 0
        while day - timedelta(days=count) in failing.get(host, ()):
            count += 1
        return count

    assert all(r["consecutive_failing_days"] == streak(r["host_id"], r["day"]) for r in table), "streaks match"
    assert all(r["consecutive_failing_days"] >= 1 for r in table if r["failed_runs"] > 0)
    assert sum(r["failed_runs"] > 0 for r in table) >= 3, "the seed's flaky hosts fail on several days"


def test_a_day_without_data_is_an_empty_table_with_the_schema(connect):
    long_ago = date(2001, 1, 1)
    for spec in ROLLUPS:
        tables = compute_rollup(connect(spec.source), spec, long_ago, long_ago)
        assert tables[long_ago].num_rows == 0 and tables[long_ago].schema == spec.schema


@dataclass(frozen=True)
class _InlineSpec(RollupSpec):
    """A rollup whose query is given inline rather than read from sql/rollups/."""

    inline_query: str = ""

    @property
    def query(self) -> str:
        return self.inline_query


_AWKWARD_VALUES = _InlineSpec(
    name="awkward_values", source="forge", description="every declared type at its awkward values", reads=(),
    columns=(text("empty", ""), text("missing", ""), text("quoted", ""), flag("yes", ""), flag("unknown", ""),
             exact_seconds("exact", ""), real4("single", ""), real("double", ""), real("tiny", ""),
             real("infinite", ""), real("not_a_number", ""), hour(), integer("big", "")),
    reconciliation=Reconciliation("big"),
    inline_query="SELECT %(start)s::date AS day, ''::text AS empty, NULL::text AS missing, "
    "E'a,\"b\"\\nc''d' AS quoted, true AS yes, NULL::boolean AS unknown, "
    "123456789012345.678::numeric(18,3) AS exact, 0.1::real AS single, 0.1::float8 + 0.2::float8 AS double, "
    "5e-324::float8 AS tiny, '-Infinity'::float8 AS infinite, 'NaN'::float8 AS not_a_number, "
    "%(start)s::timestamptz + interval '5 hours 30 minutes' AS hour, 9223372036854775807::bigint AS big",
)


def test_every_type_comes_back_exactly_as_postgresql_computed_it(connect):
    """NULL and '' stay apart; quotes, commas and newlines in text, exact decimals, float4/float8 bits (subnormal,
    infinite, NaN), booleans and timestamps survive the transfer, whatever the session's time zone."""
    conn = connect("forge")
    conn.execute("SET TIME ZONE 'Asia/Kolkata'")
    try:
        table = compute_rollup(conn, _AWKWARD_VALUES, date(2026, 3, 1), date(2026, 3, 1))[date(2026, 3, 1)]
    finally:
        conn.execute("RESET TIME ZONE")
    assert table.schema == _AWKWARD_VALUES.schema
    row = table.to_pylist()
    assert len(row) == 1
    got = row[0]
    assert (got["empty"], got["missing"], got["quoted"]) == ("", None, 'a,"b"\nc\'d')
    assert (got["yes"], got["unknown"]) == (True, None)
    assert got["exact"] == Decimal("123456789012345.678")
    assert table["single"].type == pa.float32() and got["single"] == pa.scalar(0.1, pa.float32()).as_py()
    assert (got["double"], got["tiny"], got["infinite"]) == (0.1 + 0.2, 5e-324, -math.inf)
    assert math.isnan(got["not_a_number"])
    assert got["hour"] == datetime(2026, 3, 1, 5, 30, tzinfo=timezone.utc)
    assert got["big"] == 2**63 - 1


def _run_rollups(first: str, last: str, instance):
    from forge_assets.definitions import defs

    return defs.resolve_job_def("rollups").execute_in_process(
        instance=instance,
        tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
    )


def test_materialized_range_is_one_run_and_reads_back_through_hive_partitioning(seeded, settings):
    plan, _ = seeded
    days = [d.isoformat() for d in _days(plan)[-3:]] + ["2025-01-02"]  # a day before any seeded data
    with DagsterInstance.ephemeral() as instance:
        result = _run_rollups(days[0], days[2], instance)
        assert result.success
        empty = _run_rollups(days[3], days[3], instance)
        assert empty.success
        for spec in ROLLUPS:
            materialized = instance.get_materialized_partitions(AssetKey(spec.name))
            assert set(days) <= materialized, spec.name

    lake = settings.lake_root / "rollups"
    dataset = ds.dataset(lake / "job_duration_by_template", format="parquet", partitioning="hive")
    table = dataset.to_table()
    assert set(table["day"].to_pylist()) >= set(days[:3])
    assert table.schema.names[:-1] == next(s for s in ROLLUPS if s.name == "job_duration_by_template").schema.names

    glob = str(lake / "job_duration_by_template" / "*" / "*.parquet")
    per_day = duckdb.sql(
        f"SELECT day::varchar, sum(runs) FROM read_parquet('{glob}', hive_partitioning = true) GROUP BY day"
    ).fetchall()
    assert {d for d, _ in per_day} >= set(days[:3])
    empty_day = duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{glob}', hive_partitioning = true) WHERE day = DATE '2025-01-02'"
    ).fetchall()[0][0]
    assert empty_day == 0, "the empty day's file reads as zero rows"

    empty_file = lake / "container_metrics_hourly" / "day=2025-01-02" / "part-0.parquet"
    assert pq.read_table(empty_file).num_rows == 0
    assert pq.read_schema(empty_file).field("hour").type == pa.timestamp("us", tz="UTC")


def test_rematerializing_replaces_files_atomically(seeded, settings):
    plan, _ = seeded
    day = _days(plan)[-1].isoformat()
    path = settings.lake_root / "rollups" / "app_events_hourly" / f"day={day}" / "part-0.parquet"
    with DagsterInstance.ephemeral() as instance:
        assert _run_rollups(day, day, instance).success
        before = pq.read_table(path)
        assert _run_rollups(day, day, instance).success
    assert pq.read_table(path).equals(before)
    assert sorted(p.name for p in path.parent.iterdir()) == ["part-0.parquet"], "no temporary files are left"


def test_schedule_requests_the_previous_day():
    from forge_assets.definitions import defs

    schedule = defs.resolve_schedule_def("rollups_daily")
    context = build_schedule_context(scheduled_execution_time=datetime(2026, 3, 15, 0, 30, tzinfo=timezone.utc))
    requests = list(schedule.evaluate_tick(context).run_requests)
    assert [r.partition_key for r in requests] == ["2026-03-14"]


AVERAGES = [  # (rollup, sum column, count column, the average over the window, straight from the source)
    ("job_duration_by_template", "total_job_seconds", "finished_runs",
     "SELECT avg(elapsed) FROM main_job WHERE finished IS NOT NULL AND created >= %(start)s AND created < %(end)s"),
    ("deployment_durations", "sum_total_s", "timed_totals",
     "SELECT avg(extract(epoch FROM finished_at - started_at)) FROM deployments WHERE finished_at IS NOT NULL "
     "AND created_at >= %(start)s AND created_at < %(end)s"),
    ("container_metrics_hourly", "cpu_sum", "cpu_samples",
     "SELECT avg(cpu_percent) FROM container_metrics WHERE timestamp >= %(start)s AND timestamp < %(end)s"),
    ("app_metrics_hourly", "sum_value", "data_points",
     "SELECT avg(value) FROM metrics WHERE timestamp >= %(start)s AND timestamp < %(end)s"),
    ("device_telemetry_hourly", "sum_value", "samples",
     "SELECT avg(m.value::text::float8) FROM telemetry t, jsonb_each(t.metrics) m "
     "WHERE jsonb_typeof(m.value) = 'number' AND t.time >= %(start)s AND t.time < %(end)s"),
    ("fleet_alerts_daily", "sum_seconds_to_close", "closed_alerts",
     "SELECT avg(extract(epoch FROM closed_at - created_at)) FROM fleet_alert "
     "WHERE created_at >= %(start)s AND created_at < %(end)s"),
    ("queue_throughput", "sum_processing_s", "processed_elements",
     "SELECT avg(extract(epoch FROM end_date - start_date)) FROM \"Queues\" "
     "WHERE created_date >= (%(start)s AT TIME ZONE 'UTC') AND created_date < (%(end)s AT TIME ZONE 'UTC')"),
]


@pytest.mark.parametrize(("name", "total", "count", "query"), AVERAGES, ids=[a[0] for a in AVERAGES])
def test_averages_over_several_days_come_from_the_additive_columns(name, total, count, query, seeded, computed,
                                                                    connect):
    """Each rollup with averages keeps their sum and population, so an average over any days is sum / count."""
    plan, _ = seeded
    days = _days(plan)
    for first, last in ((days[0], days[-1]), (days[1], days[3]), (days[-2], days[-1])):
        table = pa.concat_tables(t for d, t in computed[name].items() if first <= d <= last)
        population = pc.sum(table[count]).as_py()
        start, end = day_window(first, last)
        expected = connect(next(s for s in ROLLUPS if s.name == name).source).execute(
            query, {"start": start, "end": end}).fetchone()[0]
        assert population > 0 and expected is not None
        assert float(pc.sum(table[total]).as_py()) / population == pytest.approx(float(expected), rel=1e-9)

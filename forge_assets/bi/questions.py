"""The summary questions the sources' own documents ask of their raw tables, each written twice: against the
source over a window of whole UTC days, and against the lake's rollups as a DuckDB table macro taking
(first_day, last_day). Over any range of whole days the two give the same rows; `exact` says how the values
compare (tests/test_seed_questions.py runs both, before and after the purge)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SeedQuestion:
    """A seed document's question: `source_sql` takes %(start)s and %(end)s (timestamptz bounds of whole UTC
    days), `lake_sql` is the body of a DuckDB table macro with parameters first_day and last_day (DATEs,
    inclusive) over the rollup views; both return the same columns, `key` identifying a row."""

    name: str
    source: str
    seed: str
    rollups: tuple[str, ...]
    key: tuple[str, ...]
    source_sql: str
    lake_sql: str
    exact: str


_METRIC_TYPES = "('cpu_percent', 'memory_percent', 'rps', 'latency_p95', 'active_connections')"


def _percentile(p: str) -> str:
    """PostgreSQL's percentile_cont from a value histogram: the rows at floor and ceil of p * (n - 1),
    interpolated as float8_lerp does (lo + frac * (hi - lo)), in the same double arithmetic."""
    pos = f"({p}::DOUBLE * (n - 1)::DOUBLE)"
    lo = f"min(value) FILTER (WHERE upto > floor({pos}))"
    hi = f"min(value) FILTER (WHERE upto > ceil({pos}))"
    return f"{lo} + ((any_value({pos}) - floor(any_value({pos}))) * ({hi} - {lo}))"


QUESTIONS: tuple[SeedQuestion, ...] = (
    SeedQuestion(
        name="forge_jobs_by_status",
        source="forge",
        seed="Forge schema doc, Useful Diagnostic Queries: 'Jobs by status (last 7 days)'",
        rollups=("job_status_counts",),
        key=("status",),
        source_sql="SELECT status, count(*) AS count FROM main_job "
                   "WHERE created >= %(start)s AND created < %(end)s GROUP BY status ORDER BY count(*) DESC",
        lake_sql="SELECT status, CAST(sum(jobs) AS BIGINT) AS count FROM job_status_counts "
                 "WHERE day BETWEEN first_day AND last_day GROUP BY status ORDER BY count DESC",
        exact="exact (counts)",
    ),
    SeedQuestion(
        name="forge_longest_jobs",
        source="forge",
        seed="Forge schema doc, Useful Diagnostic Queries: 'Longest jobs (average by template)'",
        rollups=("job_duration_by_template",),
        key=("name",),
        source_sql="SELECT jt.name, count(j.id) AS runs, round(avg(j.elapsed)::numeric, 1) AS avg_sec "
                   "FROM main_job j JOIN main_jobtemplate jt ON j.job_template_id = jt.id "
                   "WHERE j.status = 'successful' AND j.created >= %(start)s AND j.created < %(end)s "
                   "GROUP BY jt.name ORDER BY avg_sec DESC",
        # round(sum / n, 1) half away from zero in integers (thousandths of a second): no float on the way.
        lake_sql="SELECT job_template_name AS name, CAST(sum(runs_successful) AS BIGINT) AS runs, "
                 "CAST((2 * CAST(sum(elapsed_successful_s) * 1000 AS HUGEINT) + 100 * sum(runs_successful)) "
                 "// (200 * sum(runs_successful)) AS DECIMAL(18, 0)) * CAST(0.1 AS DECIMAL(2, 1)) AS avg_sec "
                 "FROM job_duration_by_template WHERE day BETWEEN first_day AND last_day "
                 "AND job_template_id IS NOT NULL AND job_template_name IS NOT NULL "
                 "GROUP BY job_template_name HAVING sum(runs_successful) > 0 ORDER BY avg_sec DESC",
        exact="exact: runs and avg_sec (numeric, rounded to 0.1 half away from zero as round() does)",
    ),
    SeedQuestion(
        name="forge_hosts_with_failures",
        source="forge",
        seed="Forge schema doc, Useful Diagnostic Queries: 'Hosts with failures' (the current "
             "has_active_failures flag; over a window: hosts with a failed run in it)",
        rollups=("failing_hosts",),
        key=("name", "inventory"),
        source_sql="SELECT DISTINCT h.name, i.name AS inventory FROM main_jobhostsummary s "
                   "JOIN main_job j ON j.id = s.job_id JOIN main_host h ON h.id = s.host_id "
                   "JOIN main_inventory i ON h.inventory_id = i.id "
                   "WHERE s.failures > 0 AND j.created >= %(start)s AND j.created < %(end)s",
        lake_sql="SELECT DISTINCT host_name AS name, inventory_name AS inventory FROM failing_hosts "
                 "WHERE day BETWEEN first_day AND last_day AND failed_runs > 0 AND inventory_name IS NOT NULL",
        exact="exact (names as they were when the day was rolled up)",
    ),
    SeedQuestion(
        name="orchestry_metrics_window",
        source="orchestry",
        seed="Orchestry doc, MetricsQueries.get_app_metrics_window (every application at once)",
        rollups=("metric_value_counts",),
        key=("app_name", "metric_type"),
        source_sql="SELECT app_name, metric_type, AVG(value) AS avg_value, MIN(value) AS min_value, "  # noqa: S608
                   "MAX(value) AS max_value, PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY value) AS p50_value, "
                   "PERCENTILE_CONT(0.95) WITHIN GROUP (ORDER BY value) AS p95_value, COUNT(*) AS data_points "
                   "FROM metrics WHERE timestamp >= %(start)s AND timestamp < %(end)s "
                   f"AND metric_type IN {_METRIC_TYPES} GROUP BY app_name, metric_type",
        lake_sql="WITH h AS (SELECT app_name, metric_type, CAST(value AS DOUBLE) AS value, sum(samples) AS samples "  # noqa: S608
                 "FROM metric_value_counts WHERE day BETWEEN first_day AND last_day "
                 f"AND metric_type IN {_METRIC_TYPES} GROUP BY ALL), "
                 "c AS (SELECT *, sum(samples) OVER (PARTITION BY app_name, metric_type ORDER BY value) AS upto, "
                 "sum(samples) OVER (PARTITION BY app_name, metric_type) AS n FROM h) "
                 "SELECT app_name, metric_type, sum(value * samples) / any_value(n) AS avg_value, "
                 "CAST(min(value) AS REAL) AS min_value, CAST(max(value) AS REAL) AS max_value, "
                 f"{_percentile('0.5')} AS p50_value, {_percentile('0.95')} AS p95_value, "
                 "CAST(any_value(n) AS BIGINT) AS data_points FROM c GROUP BY app_name, metric_type",
        exact="exact: data_points, min, max (REAL), p50 and p95 (percentile_cont, same double arithmetic); "
              "avg_value to 1e-12 relative (a float8 sum, whose order PostgreSQL does not fix either)",
    ),
    SeedQuestion(
        name="orchestry_events_compressed",
        source="orchestry",
        seed="Orchestry doc, compress_old_events (events per hour, application and type, counts per severity)",
        rollups=("app_events_hourly",),
        key=("hour_bucket", "app_name", "event_type"),
        source_sql="SELECT date_trunc('hour', timestamp) AS hour_bucket, app_name, event_type, "
                   "count(*) AS event_count, count(*) FILTER (WHERE severity = 'debug') AS debug, "
                   "count(*) FILTER (WHERE severity = 'info') AS info, "
                   "count(*) FILTER (WHERE severity = 'warning') AS warning, "
                   "count(*) FILTER (WHERE severity = 'error') AS error, "
                   "count(*) FILTER (WHERE severity = 'critical') AS critical FROM events "
                   "WHERE timestamp >= %(start)s AND timestamp < %(end)s GROUP BY 1, 2, 3",
        lake_sql="SELECT hour AS hour_bucket, app_name, event_type, CAST(sum(events) AS BIGINT) AS event_count, "
                 "CAST(sum(debug) AS BIGINT) AS debug, CAST(sum(info) AS BIGINT) AS info, "
                 "CAST(sum(warning) AS BIGINT) AS warning, CAST(sum(error) AS BIGINT) AS error, "
                 "CAST(sum(critical) AS BIGINT) AS critical FROM app_events_hourly "
                 "WHERE day BETWEEN first_day AND last_day GROUP BY ALL",
        exact="exact (counts)",
    ),
)
"""GoForge, OpsConductor-Pulse and OpenOrchestrator: their documents give schemas and cleanup jobs but no
summary query, so no question is claimed for them (their rollups are counts and per-day statistics)."""

"""The documented set of constraint violations `forge-assets seed --dirty` injects.

Each violation names the data-quality rule it breaks (a rule of forge_assets.quality.rules, which is
also the name of its asset check) and how many rows break it, so that the checks can be shown to fail
exactly where, and by exactly as much as, intended. `may_also_fail` names rollup checks that can fail as
a consequence (a deployment that finishes before it starts gives its rollup day a negative duration). The statements, applied in
order, touch disjoint rows that exist at any scale: e.g. the first three successful jobs get an unknown
status, then the next two (still successful) finish before they start, and the last one moves to the future.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg


@dataclass(frozen=True)
class Violation:
    """One injected defect: which source, which rule it breaks, how many rows, and the statement."""

    source: str
    rule: str
    rows: int
    statement: str
    may_also_fail: tuple[str, ...] = ()


VIOLATIONS: tuple[Violation, ...] = (
    Violation("forge", "main_job_status_allowed", 3,
              "UPDATE main_job SET status = 'exploded' WHERE id IN "
              "(SELECT id FROM main_job WHERE status = 'successful' ORDER BY id LIMIT 3)"),
    Violation("forge", "main_job_finished_after_started", 2,
              "UPDATE main_job SET finished = started - interval '5 minutes' WHERE id IN "
              "(SELECT id FROM main_job WHERE status = 'successful' ORDER BY id LIMIT 2)"),
    Violation("forge", "main_job_created_not_future", 1,
              "UPDATE main_job SET created = now() + interval '2 days' WHERE id IN "
              "(SELECT id FROM main_job WHERE status = 'successful' ORDER BY id DESC LIMIT 1)"),
    Violation("forge", "main_jobevent_job_exists", 5,
              "INSERT INTO main_jobevent (created, modified, job_created, job_id, event, counter) "
              "SELECT now() - interval '1 day', now() - interval '1 day', now() - interval '1 day', 999999, "
              "'runner_on_ok', g FROM generate_series(1, 5) AS g"),
    Violation("forge", "main_jobhostsummary_counters_non_negative", 2,
              "UPDATE main_jobhostsummary SET failures = -1 WHERE id IN "
              "(SELECT id FROM main_jobhostsummary ORDER BY id LIMIT 2)"),
    Violation("goforge", "container_metrics_cpu_percent_range", 4,
              "UPDATE container_metrics SET cpu_percent = 150 WHERE id IN "
              "(SELECT id FROM container_metrics ORDER BY timestamp, id LIMIT 4)"),
    Violation("goforge", "deployments_finished_after_started", 2,
              "UPDATE deployments SET finished_at = started_at - interval '1 minute' WHERE id IN "
              "(SELECT id FROM deployments WHERE finished_at IS NOT NULL ORDER BY created_at, id LIMIT 2)",
              may_also_fail=("deployment_durations.sanity",)),
    Violation("goforge", "containers_docker_id_unique", 2,
              "UPDATE containers SET docker_id = (SELECT min(docker_id) FROM containers) WHERE id IN "
              "(SELECT id FROM containers WHERE docker_id <> (SELECT min(docker_id) FROM containers) "
              "ORDER BY id LIMIT 2)"),
    Violation("orchestry", "metrics_value_non_negative", 3,
              "UPDATE metrics SET value = -5 WHERE id IN (SELECT id FROM metrics ORDER BY id LIMIT 3)"),
    Violation("pulse", "fleet_alert_severity_allowed", 3,
              "UPDATE fleet_alert SET severity = 'urgent' WHERE id IN "
              "(SELECT id FROM fleet_alert ORDER BY id LIMIT 3)"),
    Violation("pulse", "fleet_alert_status_allowed", 2,
              "UPDATE fleet_alert SET status = 'RESOLVED' WHERE id IN "
              "(SELECT id FROM fleet_alert ORDER BY id DESC LIMIT 2)"),
    Violation("pulse", "telemetry_battery_pct_range", 4,
              "UPDATE telemetry SET metrics = jsonb_set(metrics, '{battery_pct}', '140') "
              "WHERE (device_id, time) IN (SELECT device_id, time FROM telemetry ORDER BY time, device_id LIMIT 4)"),
    Violation("openorchestrator", "queues_end_after_start", 3,
              'UPDATE "Queues" SET end_date = start_date - interval \'10 minutes\' WHERE id IN '
              '(SELECT id FROM "Queues" WHERE status = \'DONE\' ORDER BY created_date, id LIMIT 3)',
              may_also_fail=("queue_throughput.sanity",)),
    Violation("openorchestrator", "logs_log_time_not_future", 2,
              'UPDATE "Logs" SET log_time = (now() AT TIME ZONE \'UTC\') + interval \'3 days\' WHERE id IN '
              '(SELECT id FROM "Logs" ORDER BY log_time, id LIMIT 2)'),
)


def inject(conn: psycopg.Connection, source: str) -> list[Violation]:
    """Apply the violations of `source`; each must touch exactly its documented number of rows."""
    applied = []
    for violation in VIOLATIONS:
        if violation.source != source:
            continue
        touched = conn.execute(violation.statement).rowcount
        if touched != violation.rows:
            raise RuntimeError(f"dirty injection {violation.rule!r} touched {touched} rows, expected {violation.rows}")
        applied.append(violation)
    return applied

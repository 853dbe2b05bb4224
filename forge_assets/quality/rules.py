"""The source-constraint rules, declared once: what each source's seed documents, as data.

A rule names one property of one table (allowed values, not-null, a range, an ordering of two columns,
no future timestamps, membership in another table, uniqueness) and the column whose UTC day windows it.
Windowed rules look at the rows of a partition's days only, through an indexed range predicate; rules
without a time column look at the whole table, either because they are themselves indexed predicates
(future timestamps) or because the table is a small dimension table. The same rule drives the plain-SQL
evaluator, the Great Expectations evaluator, the Dagster checks and the tests of `seed --dirty`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from forge_assets.config import check_source
from forge_assets.retention.catalog import SENSITIVE

Kind = Literal["in_set", "not_null", "between", "ordered", "not_future", "references", "unique"]
KINDS: tuple[str, ...] = ("in_set", "not_null", "between", "ordered", "not_future", "references", "unique")


class RuleError(ValueError):
    """A rule is malformed, or a name matches no rule."""


@dataclass(frozen=True)
class Rule:
    """One data-quality rule of one source table; `name` is also the Dagster check's name."""

    name: str
    source: str
    table: str
    kind: Kind
    column: str
    description: str
    time_column: str | None = None
    values: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    other: str | None = None
    expression: str | None = None
    naive_utc: bool = False

    def __post_init__(self) -> None:
        check_source(self.source)
        if not self.name.replace("_", "").isalnum():
            raise RuleError(f"rule name {self.name!r}: letters, digits and underscores only")
        if self.kind not in KINDS:
            raise RuleError(f"{self.name}: unknown kind {self.kind!r}")
        needs = {"in_set": bool(self.values), "between": self.low is not None or self.high is not None,
                 "ordered": bool(self.other), "references": bool(self.other and "." in self.other)}
        if not needs.get(self.kind, True):
            raise RuleError(f"{self.name}: a {self.kind} rule needs its parameters")
        touched = {self.column, self.time_column, self.other}
        sensitive = touched & set(SENSITIVE.get((self.source, self.table), ()))
        if sensitive:
            raise RuleError(f"{self.name}: reads sensitive column(s) {sorted(sensitive)}")

    @property
    def windowed(self) -> bool:
        """Whether the rule looks at one window of days (else at the whole table)."""
        return self.time_column is not None

    @property
    def blocking(self) -> bool:
        """Whether a failure stops the purge of the checked days: windowed rules guard the purge of their day;
        whole-table rules (future timestamps, dimension tables) say nothing about the day being purged."""
        return self.windowed

    @property
    def target(self) -> tuple[str, str]:
        """The referenced (table, column) of a `references` rule."""
        table, column = (self.other or "").split(".", 1)
        return table, column


def _r(name, source, table, kind, column, description, **options) -> Rule:
    return Rule(name=name, source=source, table=table, kind=kind, column=column, description=description, **options)


_FORGE_JOB_STATUS = ("new", "pending", "waiting", "running", "successful", "failed", "error", "canceled")
_COUNTERS = "least(ok, changed, dark, failures, ignored, processed, rescued, skipped)"

RULES: tuple[Rule, ...] = (
    # Forge: job status set, timing, future timestamps, orphaned events (AWX #14590), host summary counters.
    _r("main_job_status_allowed", "forge", "main_job", "in_set", "status", "main_job.status in Forge's job "
       "status set", time_column="created", values=_FORGE_JOB_STATUS),
    _r("main_job_finished_after_started", "forge", "main_job", "ordered", "finished",
       "main_job.finished >= main_job.started", time_column="created", other="started"),
    _r("main_job_elapsed_non_negative", "forge", "main_job", "between", "elapsed", "main_job.elapsed >= 0",
       time_column="created", low=0),
    _r("main_job_created_not_future", "forge", "main_job", "not_future", "created",
       "main_job.created is not in the future"),
    _r("main_jobevent_job_exists", "forge", "main_jobevent", "references", "job_id",
       "main_jobevent.job_id references an existing main_job (orphaned events, AWX issue #14590)",
       time_column="job_created", other="main_job.id"),
    _r("main_jobevent_counter_non_negative", "forge", "main_jobevent", "between", "counter",
       "main_jobevent.counter >= 0", time_column="job_created", low=0),
    _r("main_jobevent_lines_ordered", "forge", "main_jobevent", "ordered", "end_line",
       "main_jobevent.end_line >= main_jobevent.start_line", time_column="job_created", other="start_line"),
    _r("main_jobevent_event_not_null", "forge", "main_jobevent", "not_null", "event",
       "main_jobevent.event is set", time_column="job_created"),
    _r("main_jobevent_job_created_not_future", "forge", "main_jobevent", "not_future", "job_created",
       "main_jobevent.job_created is not in the future"),
    _r("main_jobhostsummary_counters_non_negative", "forge", "main_jobhostsummary", "between", "failures",
       "main_jobhostsummary counters (ok, changed, dark, failures, ignored, processed, rescued, skipped) >= 0",
       time_column="created", low=0, expression=_COUNTERS),
    # GoForge: deployment status and trigger type, log level, timing, container metric ranges, docker ids.
    _r("deployments_status_allowed", "goforge", "deployments", "in_set", "status",
       "deployments.status in GoForge's deployment status set", time_column="created_at",
       values=("pending", "cloning", "building", "deploying", "running", "failed", "rolled_back", "cancelled")),
    _r("deployments_trigger_type_allowed", "goforge", "deployments", "in_set", "trigger_type",
       "deployments.trigger_type in (manual, webhook, rollback)", time_column="created_at",
       values=("manual", "webhook", "rollback")),
    _r("deployments_finished_after_started", "goforge", "deployments", "ordered", "finished_at",
       "deployments.finished_at >= deployments.started_at", time_column="created_at", other="started_at"),
    _r("deployments_created_at_not_null", "goforge", "deployments", "not_null", "created_at",
       "deployments.created_at is set (the column has a default but no NOT NULL)"),
    _r("deployment_logs_level_allowed", "goforge", "deployment_logs", "in_set", "level",
       "deployment_logs.level in (debug, info, warn, error)", time_column="timestamp",
       values=("debug", "info", "warn", "error")),
    _r("deployment_logs_deployment_not_null", "goforge", "deployment_logs", "not_null", "deployment_id",
       "deployment_logs.deployment_id is set", time_column="timestamp"),
    _r("container_metrics_cpu_percent_range", "goforge", "container_metrics", "between", "cpu_percent",
       "container_metrics.cpu_percent between 0 and 100", time_column="timestamp", low=0, high=100),
    _r("container_metrics_memory_percent_range", "goforge", "container_metrics", "between", "memory_percent",
       "container_metrics.memory_percent between 0 and 100", time_column="timestamp", low=0, high=100),
    _r("container_metrics_counters_non_negative", "goforge", "container_metrics", "between", "network_rx",
       "container_metrics byte counters (memory, network, block I/O) >= 0", time_column="timestamp", low=0,
       expression="least(memory_usage, memory_limit, network_rx, network_tx, block_read, block_write)"),
    _r("container_metrics_container_not_null", "goforge", "container_metrics", "not_null", "container_id",
       "container_metrics.container_id is set", time_column="timestamp"),
    _r("containers_docker_id_unique", "goforge", "containers", "unique", "docker_id",
       "containers.docker_id is unique (indexed, but without a UNIQUE constraint)"),
    # Orchestry: its CHECK constraints, which a database created from older DDL may lack.
    _r("events_type_allowed", "orchestry", "events", "in_set", "event_type", "events.event_type in Orchestry's set",
       time_column="timestamp", values=("registration", "scaling", "health", "config", "deployment", "error",
                                        "warning", "network", "resource", "security")),
    _r("events_severity_allowed", "orchestry", "events", "in_set", "severity",
       "events.severity in (debug, info, warning, error, critical)", time_column="timestamp",
       values=("debug", "info", "warning", "error", "critical")),
    _r("events_timestamp_not_future", "orchestry", "events", "not_future", "timestamp",
       "events.timestamp is not in the future"),
    _r("metrics_value_non_negative", "orchestry", "metrics", "between", "value", "metrics.value >= 0",
       time_column="timestamp", low=0),
    _r("metrics_type_allowed", "orchestry", "metrics", "in_set", "metric_type", "metrics.metric_type in Orchestry's "
       "set", time_column="timestamp", values=("cpu_percent", "memory_percent", "memory_bytes", "rps", "latency_p50",
                                              "latency_p95", "latency_p99", "active_connections", "error_rate",
                                              "response_time", "queue_length", "disk_usage")),
    _r("metrics_aggregation_level_allowed", "orchestry", "metrics", "in_set", "aggregation_level",
       "metrics.aggregation_level in (instance, app, system)", time_column="timestamp",
       values=("instance", "app", "system")),
    _r("instances_port_range", "orchestry", "instances", "between", "port", "instances.port between 1 and 65535",
       low=1, high=65535),
    _r("instances_memory_percent_range", "orchestry", "instances", "between", "memory_percent",
       "instances.memory_percent between 0 and 100", low=0, high=100),
    # OpsConductor-Pulse: alert severity and status (no CHECK in its schema), telemetry ranges, device membership.
    _r("fleet_alert_severity_allowed", "pulse", "fleet_alert", "in_set", "severity",
       "fleet_alert.severity in (critical, major, minor, warning, info)", time_column="created_at",
       values=("critical", "major", "minor", "warning", "info")),
    _r("fleet_alert_status_allowed", "pulse", "fleet_alert", "in_set", "status",
       "fleet_alert.status in (OPEN, ACKNOWLEDGED, CLOSED)", time_column="created_at",
       values=("OPEN", "ACKNOWLEDGED", "CLOSED")),
    _r("fleet_alert_closed_after_created", "pulse", "fleet_alert", "ordered", "closed_at",
       "fleet_alert.closed_at >= fleet_alert.created_at", time_column="created_at", other="created_at"),
    _r("telemetry_battery_pct_range", "pulse", "telemetry", "between", "metrics",
       "telemetry metrics.battery_pct between 0 and 100", time_column="time", low=0, high=100,
       expression="(metrics->>'battery_pct')::float8"),
    _r("telemetry_device_registered", "pulse", "telemetry", "references", "device_id",
       "telemetry.device_id is in device_registry", time_column="time", other="device_registry.device_id"),
    _r("telemetry_time_not_future", "pulse", "telemetry", "not_future", "time", "telemetry.time is not in the future"),
    # OpenOrchestrator: queue status and log level (native enums: compared as text, which GX's in-set cannot do),
    # timing, naive-UTC log timestamps.
    _r("queues_status_allowed", "openorchestrator", "Queues", "in_set", "status",
       "Queues.status in (NEW, IN_PROGRESS, DONE, FAILED, ABANDONED)", time_column="created_date",
       values=("NEW", "IN_PROGRESS", "DONE", "FAILED", "ABANDONED"), naive_utc=True, expression="status::text"),
    _r("queues_end_after_start", "openorchestrator", "Queues", "ordered", "end_date",
       "Queues.end_date >= Queues.start_date", time_column="created_date", other="start_date", naive_utc=True),
    _r("logs_level_allowed", "openorchestrator", "Logs", "in_set", "log_level", "Logs.log_level in (TRACE, INFO, "
       "ERROR)", time_column="log_time", values=("TRACE", "INFO", "ERROR"), naive_utc=True,
       expression="log_level::text"),
    _r("logs_log_time_not_future", "openorchestrator", "Logs", "not_future", "log_time",
       "Logs.log_time is not in the future (naive UTC)", naive_utc=True),
)


def rule(name: str) -> Rule:
    """The rule called `name`; unknown names are errors."""
    for candidate in RULES:
        if candidate.name == name:
            return candidate
    raise RuleError(f"no data-quality rule {name!r}")


def tables(source: str | None = None) -> list[tuple[str, str]]:
    """(source, table) pairs that have rules, in declaration order."""
    return list(dict.fromkeys((r.source, r.table) for r in RULES if source in (None, r.source)))


def rules_for(source: str, table: str) -> list[Rule]:
    """The rules of one source table."""
    return [r for r in RULES if r.source == source and r.table == table]


if len({r.name for r in RULES}) != len(RULES):
    raise RuleError("rule names must be unique")

"""The retention catalog: every table forge_assets archives or purges, declared once.

An entry names a table of a source (optionally a slice of it, by a column's values), the column whose
UTC day a row belongs to, the key that identifies a row, how many days rows stay in PostgreSQL, and the
strategy that moves them out:

- ``archive``: write the day's rows to Parquet, then delete exactly those rows, in one transaction;
- ``drop_partition``: archive whole partitions that hold only overdue rows, then detach and drop them
  (rows elsewhere, e.g. in a default partition, are archived row by row);
- ``delete``: purge without archive, only for volatile tables (short-lived challenges, expired sessions).

``after`` names the entries whose rows reference this one's (foreign keys): they are archived first, so
that a purge never cascades into rows that are not archived. The engine refuses such a purge regardless
(every foreign key, any number of columns, from any schema, whatever its ON DELETE action).

``unfinished`` declares the rows the application still needs however old they are (jobs still running and
their events, deployments in progress, open alerts): they never leave PostgreSQL; their day is archived
without them and they follow once they are finished. ``delete_triggers`` opts in, by name, ON DELETE
triggers of the table that may fire during a purge (any other such trigger makes the purge refuse: it could
change other rows than the ones archived).

Columns listed in SENSITIVE never leave the database: they are left out of every Parquet file.
Retention days follow the sources' own documentation where it gives one; the other values are documented
defaults (see README).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import psycopg

from forge_assets.config import check_source

Strategy = Literal["archive", "drop_partition", "delete"]

SENSITIVE: dict[tuple[str, str], tuple[str, ...]] = {
    ("forge", "auth_user"): ("password",),
    ("forge", "main_eventrule"): ("webhook_secret",),
    ("forge", "main_eventlog"): ("headers",),
    ("forge", "main_webauthnregistrationchallenge"): ("challenge",),
    ("forge", "main_webauthnauthenticationchallenge"): ("challenge",),
    ("goforge", "users"): ("password_hash", "github_access_token"),
    ("goforge", "sessions"): ("token_hash",),
    ("goforge", "git_sources"): ("access_token", "ssh_private_key"),
    ("goforge", "env_variables"): ("value",),
    ("pulse", "device_registry"): ("api_token_hash",),
    ("openorchestrator", "Credentials"): ("password",),
}


class CatalogError(ValueError):
    """The catalog does not match the live schema, or names something unknown."""


@dataclass(frozen=True)
class Unfinished:
    """Rows still in use: their `column` holds one of `values`, or, with `parent`, the row of `parent` whose
    `parent_key` equals the row's `via` column has such a `column` (a job's events while the job runs)."""

    column: str
    values: tuple[str, ...]
    parent: str | None = None
    via: str | None = None
    parent_key: str = "id"

    def __post_init__(self) -> None:
        if not self.values:
            raise CatalogError(f"unfinished predicate on {self.column!r} names no values")
        if bool(self.parent) != bool(self.via):
            raise CatalogError("an unfinished predicate through a parent table needs both parent and via")

    def describe(self) -> str:
        where = f"{self.column} in ({', '.join(self.values)})"
        return f"{self.parent}.{where} (through {self.via})" if self.parent else where


@dataclass(frozen=True)
class TableEntry:
    """One retention policy: a table (or a slice of it) of one source."""

    source: str
    table: str
    time_column: str
    key_columns: tuple[str, ...]
    keep_days: int
    strategy: Strategy = "archive"
    slice_column: str | None = None
    slice_values: tuple[str, ...] = ()
    name: str | None = None
    tenant_column: str | None = None
    naive_utc: bool = False
    after: tuple[str, ...] = ()
    unfinished: tuple[Unfinished, ...] = ()
    delete_triggers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_source(self.source)
        if self.keep_days < 1:
            raise CatalogError(f"{self.key}: keep_days must be at least 1 (got {self.keep_days})")
        if self.strategy not in ("archive", "drop_partition", "delete"):
            raise CatalogError(f"{self.key}: unknown strategy {self.strategy!r}")
        if bool(self.slice_column) != bool(self.slice_values):
            raise CatalogError(f"{self.key}: slice_column and slice_values go together")

    @property
    def entry_name(self) -> str:
        """Name of the entry within its source: the table, or the slice's own name."""
        return self.name or self.table

    @property
    def key(self) -> str:
        """`<source>.<entry>`: how runs, run keys and the ledger name this entry."""
        return f"{self.source}.{self.entry_name}"

    @property
    def sensitive_columns(self) -> tuple[str, ...]:
        return SENSITIVE.get((self.source, self.table), ())

    @property
    def archives(self) -> bool:
        """Whether rows are written to Parquet before they leave PostgreSQL."""
        return self.strategy != "delete"


def _entry(source, table, time_column, keep_days, key=("id",), **options) -> TableEntry:
    return TableEntry(source=source, table=table, time_column=time_column, key_columns=tuple(key),
                      keep_days=keep_days, **options)


# Work still in progress, never purged however old (AWX's cleanup_jobs deletes running jobs: ansible/awx#13790).
UNFINISHED_JOB = ("new", "pending", "waiting", "running")
_JOB_UNFINISHED = Unfinished("status", UNFINISHED_JOB)
_JOB_OF_ROW_UNFINISHED = Unfinished("status", UNFINISHED_JOB, parent="main_job", via="job_id")
DEPLOYMENT_IN_PROGRESS = ("pending", "cloning", "building", "deploying")
ALERT_OPEN = ("OPEN", "ACKNOWLEDGED")

CATALOG: tuple[TableEntry, ...] = (
    # Forge: cleanup_jobs --days=90 (jobs, their events and host summaries), cleanup_activitystream --days=365.
    _entry("forge", "main_jobevent", "job_created", 90, key=("id", "job_id"), strategy="drop_partition",
           unfinished=(_JOB_OF_ROW_UNFINISHED,)),
    _entry("forge", "main_jobhostsummary", "created", 90, unfinished=(_JOB_OF_ROW_UNFINISHED,)),
    _entry("forge", "main_driftdetection", "created", 90),
    _entry("forge", "main_hostfactsnapshot", "created", 90, after=("main_driftdetection",)),
    _entry("forge", "main_job", "created", 90, tenant_column="organization_id",
           after=("main_jobhostsummary", "main_hostfactsnapshot"), unfinished=(_JOB_UNFINISHED,)),
    _entry("forge", "main_activitystream", "timestamp", 365),
    _entry("forge", "main_auditevent", "created", 365, tenant_column="organization_id"),
    _entry("forge", "main_eventlog", "created", 90, tenant_column="organization_id"),
    _entry("forge", "main_tenantquotaevent", "created", 180, tenant_column="organization_id"),
    _entry("forge", "main_webauthnregistrationchallenge", "created", 1, strategy="delete"),
    _entry("forge", "main_webauthnauthenticationchallenge", "created", 1, strategy="delete"),
    # GoForge: cleanup_old_data() keeps container metrics 7 days and deployment logs 30.
    _entry("goforge", "container_metrics", "timestamp", 7),
    _entry("goforge", "deployment_logs", "timestamp", 30,
           unfinished=(Unfinished("status", DEPLOYMENT_IN_PROGRESS, parent="deployments", via="deployment_id"),)),
    _entry("goforge", "audit_logs", "created_at", 365),
    _entry("goforge", "sessions", "expires_at", 1, strategy="delete"),
    # Orchestry: cleanup_old_data() keeps events 30 days, instance metrics 7 and app metrics 30.
    _entry("orchestry", "events", "timestamp", 30),
    _entry("orchestry", "metrics", "timestamp", 7, slice_column="aggregation_level", slice_values=("instance",),
           name="metrics_instance"),
    _entry("orchestry", "metrics", "timestamp", 30, slice_column="aggregation_level", slice_values=("app",),
           name="metrics_app"),
    # OpsConductor-Pulse: hypertable-style day partitions are dropped whole once archived.
    _entry("pulse", "telemetry", "time", 30, key=("tenant_id", "device_id", "time", "seq"), strategy="drop_partition",
           tenant_column="tenant_id"),
    _entry("pulse", "system_metrics", "time", 30, key=("service", "metric_name", "time"), strategy="drop_partition"),
    _entry("pulse", "notification_log", "sent_at", 90, tenant_column="tenant_id"),
    _entry("pulse", "fleet_alert", "created_at", 365, tenant_column="tenant_id", after=("notification_log",),
           unfinished=(Unfinished("status", ALERT_OPEN),)),
    # OpenOrchestrator: finished queue elements and logs (naive UTC timestamps).
    _entry("openorchestrator", "Logs", "log_time", 30, naive_utc=True),
    _entry("openorchestrator", "Queues", "created_date", 90, slice_column="status",
           slice_values=("DONE", "FAILED", "ABANDONED"), name="Queues_finished", naive_utc=True),
)


def entries(source: str | None = None, name: str | None = None) -> list[TableEntry]:
    """Catalog entries of a source (all sources when None), or the one named; unknown names are errors."""
    if source is not None:
        check_source(source)
    selected = [e for e in CATALOG if source in (None, e.source)]
    if name is not None:
        selected = [e for e in selected if name in (e.entry_name, e.table)]
        if not selected:
            known = ", ".join(e.entry_name for e in CATALOG if source in (None, e.source))
            raise CatalogError(f"{source or 'the catalog'} has no table or entry {name!r}; known: {known}")
    return selected


def _columns_of(conn: psycopg.Connection, table: str) -> set[str]:
    return {name for (name,) in conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(format('%%I', %s::text)) "
        "AND attnum > 0 AND NOT attisdropped", (table,))}


def validate(conn: psycopg.Connection, selected: Iterable[TableEntry]) -> None:
    """Check entries against the live schema of `conn`; raise CatalogError listing every mismatch."""
    problems = []
    for entry in selected:
        columns = _columns_of(conn, entry.table)
        if not columns:
            problems.append(f"{entry.key}: table {entry.table!r} does not exist")
            continue
        wanted = {entry.time_column, *entry.key_columns, *entry.sensitive_columns}
        wanted |= {c for c in (entry.slice_column, entry.tenant_column) if c}
        wanted |= {u.via if u.parent else u.column for u in entry.unfinished}
        missing = sorted(wanted - columns)
        if missing:
            problems.append(f"{entry.key}: column(s) {', '.join(missing)} missing from {entry.table!r}")
        for parent in {u.parent for u in entry.unfinished if u.parent}:
            found = _columns_of(conn, parent)
            needed = {c for u in entry.unfinished if u.parent == parent for c in (u.column, u.parent_key)}
            if not found:
                problems.append(f"{entry.key}: table {parent!r} (unfinished work) does not exist")
            elif needed - found:
                problems.append(f"{entry.key}: column(s) {', '.join(sorted(needed - found))} missing from {parent!r}")
    if problems:
        raise CatalogError("catalog does not match the database: " + "; ".join(problems))

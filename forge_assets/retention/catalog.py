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

An operator's policy file (retention/policy.py) overrides these entries and may attach ``rules``: each keeps
the rows it selects (by the table's own columns, or, on Forge's job tables, by the job's template, launch
type, status and organization) for its own ``keep_days``; the first matching rule wins, other rows keep the
entry's. ``keep_last`` keeps the newest N jobs of every job template whatever their age. ``due_filter`` is
the one SQL predicate that says which rows have reached their retention: the engine's days, the sensor's
probes and the compliance check all use it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Literal

import psycopg
from psycopg import sql

from forge_assets.config import check_source
from forge_assets.days import day_window

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


# Forge's job tables: a rule on one of them may select rows by their job's template and organization (by
# name), launch type and status; events and host summaries reach their job through job_id.
JOB_TABLE = "main_job"
JOB_TABLES: dict[str, str | None] = {"main_job": None, "main_jobevent": "job_id", "main_jobhostsummary": "job_id"}
# predicate -> (the job's column, the named table it references or None for the job's own value)
JOB_PREDICATES: dict[str, tuple[str, str | None]] = {
    "job_template": ("job_template_id", "main_jobtemplate"),
    "launch_type": ("launch_type", None),
    "status": ("status", None),
    "organization": ("organization_id", "main_organization"),
}


def job_link(source: str, table: str) -> str | None | bool:
    """For a Forge job table: the column naming its job (None for main_job itself); False for other tables."""
    return JOB_TABLES[table] if source == "forge" and table in JOB_TABLES else False


Value = str | None


@dataclass(frozen=True)
class Predicate:
    """One condition of a rule: the row's `column` (or, when `job`, its job's `column`, one of JOB_PREDICATES)
    holds one of `values`, compared as text; None stands for NULL."""

    column: str
    values: tuple[Value, ...]
    job: bool = False

    def describe(self) -> str:
        shown = ", ".join("null" if v is None else v for v in self.values)
        return f"{'job.' if self.job else ''}{self.column} in ({shown})"


@dataclass(frozen=True)
class RetentionRule:
    """Rows matching every predicate of `where` stay `keep_days` days (when no earlier rule matched them)."""

    where: tuple[Predicate, ...]
    keep_days: int

    def describe(self) -> str:
        return f"{' and '.join(p.describe() for p in self.where)}: keep {self.keep_days} days"


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
    rules: tuple[RetentionRule, ...] = ()
    keep_last: int | None = None
    grace_days: int | None = None
    extra_sensitive: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_source(self.source)
        for keep in (self.keep_days, *(r.keep_days for r in self.rules)):
            if keep < 1:
                raise CatalogError(f"{self.key}: keep_days must be at least 1 (got {keep})")
        if self.keep_last is not None and (self.keep_last < 1 or (self.source, self.table) != ("forge", JOB_TABLE)):
            raise CatalogError(f"{self.key}: keep_last is a whole number of at least 1, on forge.main_job only")
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
        built_in = SENSITIVE.get((self.source, self.table), ())
        return built_in + tuple(c for c in self.extra_sensitive if c not in built_in)

    @property
    def selective(self) -> bool:
        """Whether rows of one day may reach their retention on different days (rules, keep_last)."""
        return bool(self.rules) or self.keep_last is not None

    @property
    def keeps(self) -> tuple[int, ...]:
        """Every keep_days a row of the entry may have, shortest first."""
        return tuple(sorted({self.keep_days, *(r.keep_days for r in self.rules)}))

    @property
    def shortest_keep_days(self) -> int:
        """The fewest days any row stays: the newest day that may hold overdue rows follows from it."""
        return self.keeps[0]

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


def unfinished_values(source: str, table: str, column: str) -> tuple[str, ...]:
    """The values of `table.column` that mark work the application still needs, from the catalog's `unfinished`
    predicates: those on the table's own entries and those of other entries that go through it (a job's status
    for its events). The one list: the engine filters by it, the policy file's rules are checked against it."""
    found: dict[str, None] = {}
    for entry in CATALOG:
        for u in entry.unfinished:
            if entry.source == source and (u.parent or entry.table) == table and u.column == column:
                found.update(dict.fromkeys(u.values))
    return tuple(found)


def slice_filter(entry: TableEntry) -> sql.Composable:
    """The SQL predicate selecting the entry's slice of its table (`true` for a whole-table entry)."""
    if not entry.slice_column:
        return sql.SQL("true")
    return sql.SQL("{}::text = ANY({})").format(sql.Identifier(entry.slice_column), sql.Literal(list(entry.slice_values)))


def keep_cutoff(keep_days: int, now: datetime) -> datetime:
    """The UTC midnight before which a row kept `keep_days` days is overdue at `now` (the end of the engine's
    last_overdue_day for that keep)."""
    last = (now - timedelta(days=keep_days)).astimezone(timezone.utc).date() - timedelta(days=1)
    return day_window(last, last)[1]


def _column(alias: str | None, name: str) -> sql.Identifier:
    return sql.Identifier(alias, name) if alias else sql.Identifier(name)


def _one_of(column: sql.Composable, values: tuple[Value, ...]) -> sql.Composable:
    terms = []
    present = [v for v in values if v is not None]
    if present:
        terms.append(sql.SQL("{}::text = ANY({})").format(column, sql.Literal(present)))
    if len(present) < len(values):
        terms.append(sql.SQL("{} IS NULL").format(column))
    return sql.SQL("({})").format(sql.SQL(" OR ").join(terms))


def _job_condition(predicate: Predicate, alias: str | None) -> sql.Composable:
    """A job predicate on a row of main_job (`alias`, or unqualified)."""
    column, named = JOB_PREDICATES[predicate.column]
    if named is None:
        return _one_of(_column(alias, column), predicate.values)
    names = tuple(v for v in predicate.values if v is not None)
    terms = []
    if names:
        terms.append(sql.SQL("{} IN (SELECT id FROM {} WHERE name::text = ANY({}))").format(
            _column(alias, column), sql.Identifier(named), sql.Literal(list(names))))
    if len(names) < len(predicate.values):
        terms.append(sql.SQL("{} IS NULL").format(_column(alias, column)))
    return sql.SQL("({})").format(sql.SQL(" OR ").join(terms))


def rule_filter(entry: TableEntry, rule: RetentionRule, alias: str | None = None) -> sql.Composable:
    """The SQL predicate selecting the rows a rule applies to. Subqueries are uncorrelated (a job's rows are
    found by `job_id IN (SELECT id FROM main_job WHERE ...)`), so the row's columns may stay unqualified."""
    own = [_one_of(_column(alias, p.column), p.values) for p in rule.where if not p.job]
    on_job = [p for p in rule.where if p.job]
    if on_job:
        link = job_link(entry.source, entry.table)
        if link is None:  # main_job itself
            own += [_job_condition(p, alias) for p in on_job]
        else:
            own.append(sql.SQL("{} IN (SELECT id FROM {} WHERE {})").format(
                _column(alias, link), sql.Identifier(JOB_TABLE),
                sql.SQL(" AND ").join(_job_condition(p, None) for p in on_job)))
    return sql.SQL(" AND ").join(own) if own else sql.SQL("true")


def due_filter(entry: TableEntry, now: datetime, alias: str | None = None) -> sql.Composable:
    """Rows whose retention has passed at `now`: the first rule matching a row gives its keep_days, the
    entry's keep_days otherwise; rows among the newest `keep_last` jobs of their template are never due.
    `true` for an entry without rules (its days are due as a whole: callers bound the time column)."""
    if not entry.selective:
        return sql.SQL("true")
    time_column = _column(alias, entry.time_column)

    def before(keep: int) -> sql.Composable:
        cutoff = keep_cutoff(keep, now)
        return sql.SQL("{} < {}").format(time_column, sql.Literal(cutoff.replace(tzinfo=None) if entry.naive_utc
                                                                  else cutoff))

    branches = [sql.SQL("WHEN {} THEN {}").format(rule_filter(entry, rule, alias), before(rule.keep_days))
                for rule in entry.rules]
    due = sql.SQL("(CASE {} ELSE {} END)").format(sql.SQL(" ").join(branches), before(entry.keep_days)) \
        if branches else before(entry.keep_days)
    if entry.keep_last is not None:
        newest = sql.SQL(
            "SELECT m.id FROM main_jobtemplate jt CROSS JOIN LATERAL (SELECT j.id FROM main_job j "
            "WHERE j.job_template_id = jt.id ORDER BY j.created DESC, j.id DESC LIMIT {}) m").format(
            sql.Literal(entry.keep_last))
        due = sql.SQL("{} AND ({} IS NULL OR {} NOT IN ({}))").format(
            due, _column(alias, "job_template_id"), _column(alias, "id"), newest)
    return due


def rule_columns(entry: TableEntry) -> set[str]:
    """The entry's own columns its rules and keep_last read."""
    columns = {p.column for r in entry.rules for p in r.where if not p.job}
    if any(p.job for r in entry.rules for p in r.where):
        link = job_link(entry.source, entry.table)
        columns |= {link} if link else {JOB_PREDICATES[p.column][0] for r in entry.rules for p in r.where if p.job}
    if entry.keep_last is not None:
        columns |= {"id", "job_template_id"}
    return columns


def rule_reads(entry: TableEntry) -> dict[str, tuple[str, ...]]:
    """Other tables (and their columns) that the entry's rules and keep_last read: the job of an event or host
    summary, job templates and organizations by name."""
    reads: dict[str, dict[str, None]] = {}
    on_job = [p for r in entry.rules for p in r.where if p.job]
    if on_job and job_link(entry.source, entry.table):
        reads.setdefault(JOB_TABLE, {}).update(dict.fromkeys(["id", *(JOB_PREDICATES[p.column][0] for p in on_job)]))
    for p in on_job:
        named = JOB_PREDICATES[p.column][1]
        if named:
            reads.setdefault(named, {}).update(dict.fromkeys(["id", "name"]))
    if entry.keep_last is not None:
        reads.setdefault("main_jobtemplate", {})["id"] = None
    return {table: tuple(columns) for table, columns in reads.items() if table != entry.table}


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


def _columns(conn: psycopg.Connection, table: str) -> set[str]:
    return {name for (name,) in conn.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(format('%%I', %s::text)) "
        "AND attnum > 0 AND NOT attisdropped", (table,))}


def validate(conn: psycopg.Connection, selected: Iterable[TableEntry]) -> None:
    """Check entries against the live schema of `conn`; raise CatalogError listing every mismatch."""
    problems = []
    for entry in selected:
        columns = _columns(conn, entry.table)
        if not columns:
            problems.append(f"{entry.key}: table {entry.table!r} does not exist")
            continue
        wanted = {entry.time_column, *entry.key_columns, *entry.sensitive_columns}
        wanted |= {c for c in (entry.slice_column, entry.tenant_column) if c} | rule_columns(entry)
        wanted |= {u.via if u.parent else u.column for u in entry.unfinished}
        missing = sorted(wanted - columns)
        if missing:
            problems.append(f"{entry.key}: column(s) {', '.join(missing)} missing from {entry.table!r}")
        for parent in {u.parent for u in entry.unfinished if u.parent}:
            found = _columns(conn, parent)
            needed = {c for u in entry.unfinished if u.parent == parent for c in (u.column, u.parent_key)}
            if not found:
                problems.append(f"{entry.key}: table {parent!r} (unfinished work) does not exist")
            elif needed - found:
                problems.append(f"{entry.key}: column(s) {', '.join(sorted(needed - found))} missing from {parent!r}")
        for table, needed in rule_reads(entry).items():
            found = _columns(conn, table)
            if set(needed) - found:
                problems.append(f"{entry.key}: its rules read {table}({', '.join(needed)}), which "
                                f"{'lacks ' + ', '.join(sorted(set(needed) - found)) if found else 'does not exist'}")
    if problems:
        raise CatalogError("catalog does not match the database: " + "; ".join(problems))

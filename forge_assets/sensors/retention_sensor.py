"""The overdue-retention sensor: archive runs for every (table, day) past its keep_days that holds rows.

Each tick
- reconciles the ledger into Dagster (a ledgered day that is not a materialized partition is reported);
- asks every catalog table for its overdue days that hold rows (one indexed `min()` per day found) — again
  every tick, so late rows, a failed day and a restored day whose hold expired are all found;
- leaves out the days a queued or running run covers (never two runs at once for a (table, day)), days whose
  last run failed until their back-off passes (FORGE_RETRY_BACKOFF, 1 h, 4 h, 1 day), restored days still on
  hold (the ledger's `held_until`: `restore --hold-days N`, default FORGE_RESTORE_HOLD_DAYS) and days of `after` tables that the tables going first still hold;
- requests, rollups first, one rollup run per source for a range of days whose rollups are missing, then one
  archive run per table for a range of consecutive due days (at most FORGE_ARCHIVE_DAYS_PER_RUN, each day
  its own transaction, ledger rows and partition), oldest first, at most FORGE_SENSOR_MAX_RUNS a tick.

Run keys carry the tick's time (`<source>.<table>:<first>..<last>@<tick>`), so a day asked for again gets a
fresh key. The cursor remembers the last request of each unresolved day (its run key, attempts, back-off);
a day leaves it once it holds no rows and no run covers it. Only overdue days are ever requested: backlog
size raises a run's priority, never shortens retention.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from dagster import (
    AssetKey,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from forge_assets.assets.checks import archive_run_checks
from forge_assets.assets.ledger import first_partition, reconcile
from forge_assets.assets.names import RUN_TAG_TABLE, archive_job_name, archive_key, rollup_key, rollups_reading
from forge_assets.config import SOURCES
from forge_assets.days import day_window
from forge_assets.db import DatabaseUnavailable
from forge_assets.effective import effective_operations
from forge_assets.jobs.asset_jobs import archive_jobs, rollup_job
from forge_assets.operations import Operations
from forge_assets.quality.compliance import compliance_query
from forge_assets.resources.postgres import PostgresResource
from forge_assets.retention.catalog import TableEntry
from forge_assets.retention.engine import days_holding_rows, last_overdue_day, oldest_day
from forge_assets.retention.holds import held_days
from forge_assets.retention.policy import effective_entries
from forge_assets.rollups.registry import ROLLUPS

# A table with more overdue days than this gets its archive runs dequeued first.
PRIORITY_BACKLOG_DAYS = 7
# A request whose run has not appeared after this long is considered lost and asked for again.
LOST_AFTER = timedelta(hours=1)
RUN_TAG_ATTEMPT = "forge/attempt"
RUN_TAG_SOURCE = "forge/source"
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
_UNFINISHED = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING,
               DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]
ONE_DAY = timedelta(days=1)
# Oldest days first, and within a day the catalog's order (children before the rows they reference).
_CATALOG_ORDER = {e.key: i for i, e in enumerate(effective_entries(include_disabled=True))}


@dataclass(frozen=True)
class TableState:
    """What one tick learned about a catalog entry's table: its oldest row's day, its overdue days that hold
    rows (oldest first), and the restored days still on hold (day -> end of the hold)."""

    entry: TableEntry
    oldest: date | None
    due: tuple[date, ...] = ()
    held: Mapping[date, datetime] = field(default_factory=dict)


@dataclass
class TickPlan:
    """The run requests of one tick, the cursor after it, why nothing else was requested, and the days that
    just started failing (alerted once)."""

    requests: list[RunRequest] = field(default_factory=list)
    cursor: dict = field(default_factory=dict)
    waiting: list[str] = field(default_factory=list)
    failing: list[str] = field(default_factory=list)


def _rollup_keys(source: str | None = None) -> list[AssetKey]:
    return [rollup_key(spec.name) for spec in ROLLUPS if source in (None, spec.source)]


def _range_tags(first: date, last: date) -> dict[str, str]:
    return {RANGE_START: first.isoformat(), RANGE_END: last.isoformat()}


def _ranges(days: list[date], blocked: set[date], longest: int) -> list[tuple[date, date]]:
    """Consecutive runs of `days` (sorted) with no blocked day between them, each at most `longest` days."""
    ranges: list[tuple[date, date]] = []
    for day in days:
        if ranges:
            first, last = ranges[-1]
            if (day - first).days < longest and not any(last < b < day for b in blocked):
                ranges[-1] = (first, day)
                continue
        ranges.append((day, day))
    return ranges


class _Attempts:
    """The cursor's record of requests per key ("<table>|<day>" or "rollups|<source>"): run key, time,
    consecutive failures, and when a failed one may be asked for again."""

    def __init__(self, records: Mapping, outcomes: Mapping[str, str], now: datetime, ops: Operations):
        self.records = {k: dict(v) for k, v in records.items()}
        self.outcomes, self.now, self.ops = outcomes, now, ops
        self.newly_failed: list[str] = []

    def blocked(self, ident: str) -> str | None:
        """Why `ident` may not be requested now, or None."""
        record = self.records.get(ident)
        if record is None:
            return None
        outcome = self.outcomes.get(record["key"], "pending")
        if outcome == "pending":
            if self.now - datetime.fromisoformat(record["at"]) < LOST_AFTER:
                return f"requested as {record['key']}"
            return None
        if outcome == "failure":
            if record.get("failed_key") != record["key"]:  # count each failed run once
                record["failures"] = record.get("failures", 0) + 1
                record["failed_key"] = record["key"]
                record["next"] = (self.now + self.ops.backoff(record["failures"])).isoformat()
                if record["failures"] == 1:
                    self.newly_failed.append(f"{ident} failed in run {record['key']}")
            if self.now < datetime.fromisoformat(record["next"]):
                return f"failed {record['failures']} time(s), next attempt after {record['next']}"
            return None
        record.pop("failures", None)  # it succeeded: rows that arrived later start afresh
        return None

    def attempt(self, ident: str) -> int:
        return self.records.get(ident, {}).get("failures", 0) + 1

    def requested(self, ident: str, run_key: str) -> None:
        previous = self.records.get(ident, {})
        self.records[ident] = {"key": run_key, "at": self.now.isoformat(),
                               **{k: previous[k] for k in ("failures", "failed_key", "next") if k in previous}}


def plan_tick(states: Iterable[TableState], materialized: Mapping[AssetKey, set[str]], cursor: Mapping,
              now: datetime, *, in_flight: frozenset = frozenset(), rollups_in_flight: frozenset = frozenset(),
              outcomes: Mapping[str, str] | None = None, ops: Operations | None = None) -> TickPlan:
    """Decide one tick (pure: everything it needs is passed in). `in_flight`: (table key, partition day) pairs
    that queued or running runs cover; `rollups_in_flight`: sources with a rollup run under way; `outcomes`:
    run key -> "success" | "failure" for the finished runs of the keys in the cursor."""
    ops = ops or effective_operations()
    states = list(states)
    first_day = first_partition()
    oldest = {(s.entry.source, s.entry.entry_name): s.oldest for s in states}
    days_log = _Attempts(cursor.get("days", {}), outcomes or {}, now, ops)
    rollups_log = _Attempts(cursor.get("rollups", {}), outcomes or {}, now, ops)
    stamp = now.strftime("%Y%m%dT%H%M%S")
    plan = TickPlan()
    still_due: set[str] = set()
    archive_ranges = []
    missing_rollups: dict[str, set[date]] = {}

    for state in states:
        entry = state.entry
        firsts = [oldest[(entry.source, name)] for name in entry.after if oldest.get((entry.source, name))]
        days = sorted({max(d, first_day) for d in state.due if not firsts or d < min(firsts)})
        blocked, ready = set(), []
        for day in days:
            ident = f"{entry.key}|{day}"
            still_due.add(ident)
            reason = None
            if (entry.key, day) in in_flight:
                reason = "a run covering it is queued or running"
            elif day in state.held and now < state.held[day]:
                reason = f"restored, on hold until {state.held[day]:%Y-%m-%d %H:%M} UTC"
            else:
                reason = days_log.blocked(ident)
            if reason is None:
                missing = [k for k in rollups_reading(entry) if day.isoformat() not in materialized.get(k, set())]
                if missing:
                    missing_rollups.setdefault(entry.source, set()).add(day)
                    reason = f"waits for rollups {', '.join(k.to_user_string() for k in missing)}"
            if reason is None:
                ready.append(day)
            else:
                blocked.add(day)
                plan.waiting.append(f"{entry.key} {day}: {reason}")
        for first, last in _ranges(ready, blocked, ops.archive_days_per_run):
            archive_ranges.append((first, _CATALOG_ORDER[entry.key], entry, last, len(days)))

    requests: list[RunRequest] = []
    for source in sorted(missing_rollups):
        ident = f"rollups|{source}"
        reason = "a rollup run is queued or running" if source in rollups_in_flight else rollups_log.blocked(ident)
        if reason is not None:
            plan.waiting.append(f"rollups of {source}: {reason}")
            continue
        first = min(missing_rollups[source])
        last = max(d for d in missing_rollups[source] if (d - first).days < ops.archive_days_per_run)
        run_key = f"rollups.{source}:{first}..{last}@{stamp}"
        requests.append(RunRequest(
            job_name=rollup_job.name, asset_selection=_rollup_keys(source), run_key=run_key,
            tags={**_range_tags(first, last), RUN_TAG_SOURCE: source, "dagster/priority": "2",
                  RUN_TAG_ATTEMPT: str(rollups_log.attempt(ident))}))
        rollups_log.requested(ident, run_key)

    archive_ranges.sort(key=lambda r: r[:2])
    for first, _, entry, last, backlog in archive_ranges:
        if len(requests) >= ops.sensor_max_runs:
            break
        days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        idents = [f"{entry.key}|{d}" for d in days]
        run_key = f"{entry.key}:{first}..{last}@{stamp}"
        tags = {RUN_TAG_TABLE: entry.key, **_range_tags(first, last),
                RUN_TAG_ATTEMPT: str(max(days_log.attempt(i) for i in idents))}
        if backlog > PRIORITY_BACKLOG_DAYS:
            tags["dagster/priority"] = "1"
        requests.append(RunRequest(
            job_name=archive_job_name(entry.source), asset_selection=[archive_key(entry)],
            asset_check_keys=archive_run_checks(entry), run_key=run_key, tags=tags))
        for ident in idents:
            days_log.requested(ident, run_key)

    plan.requests = requests[:ops.sensor_max_runs]
    in_flight_idents = {f"{key}|{day}" for key, day in in_flight}
    plan.failing = days_log.newly_failed + rollups_log.newly_failed
    plan.cursor = {
        "days": {k: v for k, v in days_log.records.items() if k in still_due or k in in_flight_idents},
        "rollups": {k: v for k, v in rollups_log.records.items() if k.split("|", 1)[1] in missing_rollups
                    or k.split("|", 1)[1] in rollups_in_flight},
    }
    return plan


def table_states(postgres: PostgresResource, cursor: Mapping, now: datetime, ops: Operations,
                 ) -> tuple[list[TableState], list[str]]:
    """Every catalog table's oldest day, its overdue days holding rows, and its restored days on hold.
    Sources that cannot be reached are reported by message instead."""
    states, unreachable = [], []
    recorded: dict[str, int] = {}
    for ident in cursor.get("days", {}):
        recorded[ident.split("|")[0]] = recorded.get(ident.split("|")[0], 0) + 1
    for source in (s for s in SOURCES if postgres.serves(s)):
        try:
            with postgres.read(source) as conn:
                for entry in (e for e in effective_entries() if e.source == source):
                    oldest = oldest_day(conn, entry)
                    if entry.selective and oldest is not None:  # rows kept longer by a rule do not count yet
                        oldest = next(iter(days_holding_rows(conn, entry, oldest, last_overdue_day(entry, now), 1,
                                                             now)), None)
                    held = held_days(conn, entry, now)
                    limit = 4 * ops.archive_days_per_run + recorded.get(entry.key, 0) + len(held)
                    due = days_holding_rows(conn, entry, oldest, last_overdue_day(entry, now), limit,
                                            now) if oldest else []
                    states.append(TableState(entry, oldest, tuple(due), held))
        except DatabaseUnavailable as exc:
            unreachable.append(str(exc))
    return states, unreachable


def purge_plan(postgres: PostgresResource, states: Iterable[TableState], now: datetime) -> list[str]:
    """What the sensor would archive on the sources whose purging is off (forge_assets/effective.py): per table, its overdue
    rows (due by their own rule, for an entry with rules), their oldest time and the first due days. It
    requests nothing for them."""
    states = list(states)
    lines, seen = [], set()
    for state in states:
        entry = state.entry
        days = sorted(d for s in states if s.entry.key == entry.key for d in s.due)
        if not days or entry.key in seen:
            continue
        seen.add(entry.key)
        last = last_overdue_day(entry, now)
        with postgres.read(entry.source) as conn:
            rows, oldest = conn.execute(compliance_query(entry, day_window(last, last)[1], now)).fetchone()
        lines.append(f"plan only (purging is off for {entry.source}: FORGE_PURGE, else the policy's purge): "
                     f"{entry.key} would archive "
                     f"{rows:,} rows up to {last}, oldest {oldest}, first days "
                     f"{', '.join(str(d) for d in days[:3])}")
    return lines


def _partition_days(run) -> list[date]:
    tags = run.tags
    if RANGE_START in tags and RANGE_END in tags:
        first, last = date.fromisoformat(tags[RANGE_START]), date.fromisoformat(tags[RANGE_END])
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]
    if "dagster/partition" in tags:
        return [date.fromisoformat(tags["dagster/partition"])]
    return []


def runs_in_flight(instance) -> tuple[frozenset, frozenset]:
    """(table key, day) pairs covered by unfinished archive runs, and sources with an unfinished rollup run."""
    tables, sources = set(), set()
    for run in instance.get_runs(RunsFilter(statuses=_UNFINISHED)):
        if RUN_TAG_TABLE in run.tags:
            tables |= {(run.tags[RUN_TAG_TABLE], d) for d in _partition_days(run)}
        elif run.job_name == rollup_job.name:
            sources.add(run.tags.get(RUN_TAG_SOURCE, "*"))
    if "*" in sources:  # a rollup run of every source (the schedule, a backfill)
        sources |= set(SOURCES)
    return frozenset(tables), frozenset(sources)


def run_outcomes(instance, cursor: Mapping) -> dict[str, str]:
    """"success" or "failure" for the finished runs of the run keys the cursor remembers."""
    keys = sorted({r["key"] for part in ("days", "rollups") for r in cursor.get(part, {}).values()})
    outcomes: dict[str, str] = {}
    for i in range(0, len(keys), 200):
        for run in instance.get_runs(RunsFilter(tags={"dagster/run_key": keys[i:i + 200]})):  # newest first
            key = run.tags["dagster/run_key"]
            if key not in outcomes and run.is_finished:  # an automatic retry's outcome wins over its original's
                outcomes[key] = "success" if run.is_success else "failure"
    return outcomes


def build_retention_sensor(clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
                           ops: Operations | None = None):
    """The retention sensor (`clock` and `ops` are parameters so tests can pin them)."""
    ops = ops or effective_operations()

    @sensor(
        name="retention_sensor",
        jobs=[rollup_job, *archive_jobs],
        minimum_interval_seconds=ops.sensor_interval_seconds,
        default_status=DefaultSensorStatus.RUNNING,
        description=(f"Every {ops.sensor_interval_seconds} s: reconciles the archive ledger into Dagster, then "
                     f"requests archive runs for ranges of up to {ops.archive_days_per_run} overdue days per table "
                     f"(rollups first), at most {ops.sensor_max_runs} runs a tick; failed days back off, days in "
                     "flight are never requested twice."),
    )
    def retention_sensor(context: SensorEvaluationContext, postgres: PostgresResource):
        cursor = json.loads(context.cursor) if context.cursor else {}
        now = clock()
        in_flight, rollups_in_flight = runs_in_flight(context.instance)
        reconciled = 0
        for source in (s for s in SOURCES if postgres.serves(s)):
            try:
                with postgres.read(source) as conn:
                    entries = [e for e in effective_entries() if e.source == source
                               and not any(key == e.key for key, _ in in_flight)]
                    reconciled += reconcile(context.instance, conn, entries)
            except DatabaseUnavailable:
                pass  # reported below, once, by table_states
        if reconciled:
            context.log.info(f"reported {reconciled} ledgered days that Dagster did not show as materialized")
        states, unreachable = table_states(postgres, cursor, now, ops)
        for message in unreachable:
            context.log.error(message)
        planned = purge_plan(postgres, [s for s in states if not postgres.purges(s.entry.source)], now)
        states = [s for s in states if postgres.purges(s.entry.source)]
        for line in planned:
            context.log.info(line)
        materialized = {k: context.instance.get_materialized_partitions(k) for k in _rollup_keys()}
        plan = plan_tick(states, materialized, cursor, now, in_flight=in_flight, rollups_in_flight=rollups_in_flight,
                         outcomes=run_outcomes(context.instance, cursor), ops=ops)
        for line in plan.failing:
            context.log.error(f"{line}; backing off ({', '.join(str(b) for b in ops.retry_backoff)})")
        for line in plan.waiting[:50]:
            context.log.info(line)
        if plan.requests:
            return SensorResult(run_requests=plan.requests, cursor=json.dumps(plan.cursor, sort_keys=True))
        context.update_cursor(json.dumps(plan.cursor, sort_keys=True))
        reasons = unreachable + planned + plan.waiting[:5]
        return SkipReason("; ".join(reasons) if reasons else
                          f"nothing overdue: {len(states)} tables checked, none holds a day older than its keep_days")

    return retention_sensor


retention_sensor = build_retention_sensor()

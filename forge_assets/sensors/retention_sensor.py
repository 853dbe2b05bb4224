"""The overdue-retention sensor: one archive run per (table, day) past its keep_days, oldest days first.

Each tick asks every catalog table for the overdue days that hold rows (one indexed `min()` per day found),
turns them into run requests with run_key `<source>.<table>:<day>`, and remembers in its cursor the last day
it requested per table, so no day is requested twice and a capped tick picks up where the last one stopped. A day whose rollups are missing gets a rollup run first (rollups before purge); a table that must be
archived after others (`after` in the catalog) waits until they hold nothing on that day. Only days older
than keep_days are ever requested: backlog size raises a run's priority, never shortens retention.
"""

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from dagster import (
    AssetKey,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from forge_assets.assets.checks import archive_run_checks
from forge_assets.assets.names import RUN_TAG_TABLE, archive_job_name, archive_key, rollup_key, rollups_reading
from forge_assets.assets.partitions import DAILY
from forge_assets.config import SOURCES
from forge_assets.days import day_window
from forge_assets.db import DatabaseUnavailable
from forge_assets.jobs.asset_jobs import archive_jobs, rollup_job
from forge_assets.quality.compliance import compliance_query
from forge_assets.resources.postgres import PostgresResource
from forge_assets.retention.catalog import CATALOG, TableEntry
from forge_assets.retention.engine import days_holding_rows, last_overdue_day, oldest_day
from forge_assets.rollups.registry import ROLLUPS

INTERVAL_SECONDS = 180
MAX_RUNS_PER_TICK = 10
# A table with more overdue days than this gets its archive runs dequeued first.
PRIORITY_BACKLOG_DAYS = 7
ONE_DAY = timedelta(days=1)


@dataclass(frozen=True)
class TableState:
    """What one tick learned about a catalog entry's table: its oldest row's day, and the overdue days after
    the cursor that hold rows (at most a tick's worth), oldest first."""

    entry: TableEntry
    oldest: date | None
    due: tuple[date, ...] = ()


@dataclass
class TickPlan:
    """The run requests of one tick, the cursor after it, and why nothing else was requested."""

    requests: list[RunRequest] = field(default_factory=list)
    cursor: dict = field(default_factory=dict)
    waiting: list[str] = field(default_factory=list)


def _rollup_keys(source: str | None = None) -> list[AssetKey]:
    return [rollup_key(spec.name) for spec in ROLLUPS if source in (None, spec.source)]


def _first_partition() -> date:
    return DAILY.start.date()


def plan_tick(states: Iterable[TableState], materialized: Mapping[AssetKey, set[str]], cursor: Mapping,
              max_runs: int = MAX_RUNS_PER_TICK) -> TickPlan:
    """Decide one tick: the oldest due (table, day) pairs, at most `max_runs` run requests, rollups first."""
    states = list(states)
    oldest = {(s.entry.source, s.entry.entry_name): s.oldest for s in states}
    requested = dict(cursor.get("archive", {}))
    rollups_requested = dict(cursor.get("rollups", {}))
    plan = TickPlan()

    candidates = []
    for state in states:
        entry = state.entry
        if state.oldest is not None and state.oldest < _first_partition():
            plan.waiting.append(f"{entry.key} holds rows from {state.oldest}, before the first partition "
                                f"{_first_partition()}: archive them with `forge-assets archive --until`")
        # Never before the tables that must go first (`after`) have left that day.
        firsts = [oldest[(entry.source, name)] for name in entry.after if oldest.get((entry.source, name))]
        due = [d for d in state.due if not firsts or d < min(firsts)]
        candidates += [(day, CATALOG.index(entry), entry, len(state.due)) for day in due]
    candidates.sort(key=lambda c: c[:2])

    blocked: set[str] = set()
    for day, _, entry, backlog in candidates:
        if len(plan.requests) >= max_runs:
            break
        if entry.key in blocked:
            continue
        key = day.isoformat()
        missing = [k for k in rollups_reading(entry) if key not in materialized.get(k, set())]
        if missing:
            blocked.add(entry.key)
            plan.waiting.append(f"{entry.key} {day} waits for rollups {', '.join(k.to_user_string() for k in missing)}")
            if rollups_requested.get(entry.source, "") < key:
                keys = [k for k in _rollup_keys(entry.source) if key not in materialized.get(k, set())]
                plan.requests.append(RunRequest(
                    job_name=rollup_job.name, partition_key=key, asset_selection=keys,
                    run_key=f"rollups.{entry.source}:{day}", tags={"forge/source": entry.source}))
                rollups_requested[entry.source] = key
            continue
        tags = {RUN_TAG_TABLE: entry.key}
        if backlog > PRIORITY_BACKLOG_DAYS:
            tags["dagster/priority"] = "1"
        plan.requests.append(RunRequest(
            job_name=archive_job_name(entry.source), partition_key=key, asset_selection=[archive_key(entry)],
            asset_check_keys=archive_run_checks(entry), run_key=f"{entry.key}:{day}", tags=tags))
        requested[entry.key] = key
    plan.cursor = {"archive": requested, "rollups": rollups_requested}
    return plan


def table_states(postgres: PostgresResource, cursor: Mapping, now: datetime, limit: int,
                 ) -> tuple[list[TableState], list[str]]:
    """Every catalog table's oldest day and its due days: overdue, after the cursor, in a partition, holding
    rows. Sources that cannot be reached are reported by message instead."""
    states, unreachable = [], []
    requested = cursor.get("archive", {})
    for source in (s for s in SOURCES if postgres.serves(s)):
        try:
            with postgres.read(source) as conn:
                for entry in (e for e in CATALOG if e.source == source):
                    oldest = oldest_day(conn, entry)
                    since = max(oldest or date.max, _first_partition())
                    if entry.key in requested:
                        since = max(since, date.fromisoformat(requested[entry.key]) + ONE_DAY)
                    due = days_holding_rows(conn, entry, since, last_overdue_day(entry, now), limit)
                    states.append(TableState(entry, oldest, tuple(due)))
        except DatabaseUnavailable as exc:
            unreachable.append(str(exc))
    return states, unreachable


def purge_plan(postgres: PostgresResource, states: Iterable[TableState], now: datetime) -> list[str]:
    """What the sensor would archive on the sources whose purging is off (FORGE_PURGE): per table, its overdue
    rows, their oldest time and the first due days. It requests nothing for them."""
    lines = []
    for state in states:
        if not state.due:
            continue
        entry, last = state.entry, last_overdue_day(state.entry, now)
        with postgres.read(entry.source) as conn:
            rows, oldest = conn.execute(compliance_query(entry, day_window(last, last)[1])).fetchone()
        lines.append(f"plan only (purging is off for {entry.source}: FORGE_PURGE): {entry.key} would archive "
                     f"{rows:,} rows up to {last}, oldest {oldest}, first days "
                     f"{', '.join(str(d) for d in state.due[:3])}")
    return lines


def build_retention_sensor(
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc), max_runs: int = MAX_RUNS_PER_TICK,
):
    """The retention sensor (`clock` and `max_runs` are parameters so tests can pin them)."""

    @sensor(
        name="retention_sensor",
        jobs=[rollup_job, *archive_jobs],
        minimum_interval_seconds=INTERVAL_SECONDS,
        default_status=DefaultSensorStatus.RUNNING,
        description=(f"Every {INTERVAL_SECONDS // 60} minutes: one archive run per catalog table and overdue UTC "
                     f"day (run key <source>.<table>:<day>), oldest first, at most {max_runs} runs a tick; "
                     "missing rollups are requested before the day's purge."),
    )
    def retention_sensor(context: SensorEvaluationContext, postgres: PostgresResource):
        cursor = json.loads(context.cursor) if context.cursor else {}
        now = clock()
        states, unreachable = table_states(postgres, cursor, now, max_runs)
        for message in unreachable:
            context.log.error(message)
        planned = purge_plan(postgres, [s for s in states if not postgres.purges(s.entry.source)], now)
        states = [s for s in states if postgres.purges(s.entry.source)]
        for line in planned:
            context.log.info(line)
        materialized = {k: context.instance.get_materialized_partitions(k) for k in _rollup_keys()}
        plan = plan_tick(states, materialized, cursor, max_runs)
        for line in plan.waiting:
            context.log.info(line)
        if plan.requests:
            return SensorResult(run_requests=plan.requests, cursor=json.dumps(plan.cursor, sort_keys=True))
        reasons = unreachable + planned + plan.waiting[:5]
        return SkipReason("; ".join(reasons) if reasons else
                          f"nothing overdue: {len(states)} tables checked, none holds a day older than its keep_days "
                          "that was not already requested")

    return retention_sensor


retention_sensor = build_retention_sensor()

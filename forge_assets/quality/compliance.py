"""Retention compliance: no row of a catalog table older than its keep_days plus a grace period (unfinished
work, never purged, does not count; with the
entry's rules: no row whose own keep_days, plus the grace period, has passed), and the backlog of overdue
days with whether it is draining (archived rows in the last day: a warning with the expected time to
clear) or stuck (nothing archived for a day: an error)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import psycopg
from psycopg import sql

from forge_assets.days import day_window
from forge_assets.quality.outcome import Outcome, broken
from forge_assets.quality.sql_evaluator import table_rows
from forge_assets.retention.catalog import TableEntry, due_filter, slice_filter
from forge_assets.retention.engine import last_overdue_day, unfinished_filter
from forge_assets.retention.history import archived_since, backlog

PROGRESS_WINDOW = timedelta(days=1)

GRACE_DAYS = 2  # the built-in default; a policy file sets it under operations (or per entry)
ENGINE = "sql"


def compliance_cutoff(entry: TableEntry, now: datetime, grace_days: int = GRACE_DAYS) -> datetime:
    """Rows before this instant (UTC midnight) are past keep_days + grace_days: the purge is behind."""
    if grace_days < 0:
        raise ValueError(f"grace_days must be >= 0 (got {grace_days})")
    last_allowed_overdue = last_overdue_day(entry, now - timedelta(days=grace_days))
    return day_window(last_allowed_overdue, last_allowed_overdue)[1]


def compliance_query(entry: TableEntry, cutoff: datetime, due_at: datetime | None = None) -> sql.Composed:
    """Count and oldest time of the rows older than `cutoff` (an indexed range on the time column) that, for
    an entry with rules, were due at `due_at`."""
    bound = sql.Literal(cutoff.replace(tzinfo=None) if entry.naive_utc else cutoff)
    query = sql.SQL("SELECT count(*), min({c}) FROM {t} t WHERE {c} < {b} AND {s}").format(
        c=sql.Identifier(entry.time_column), t=sql.Identifier(entry.table), b=bound, s=slice_filter(entry))
    if entry.unfinished:  # never purged, however old: not a retention failure
        query = sql.SQL("{} AND NOT ({})").format(query, unfinished_filter(entry))
    if due_at is not None and entry.selective:
        query = sql.SQL("{} AND {}").format(query, due_filter(entry, due_at))
    return query


def retention_compliance(conn: psycopg.Connection, entry: TableEntry, now: datetime,
                         grace_days: int | None = None) -> Outcome:
    """Fails with the number of overdue rows and the oldest timestamp among them. The grace period is
    `grace_days` when given, else the entry's (from the policy file), else GRACE_DAYS."""
    check = "retention_compliance"
    grace_days = grace_days if grace_days is not None else entry.grace_days if entry.grace_days is not None \
        else GRACE_DAYS
    cutoff = compliance_cutoff(entry, now, grace_days)
    query = compliance_query(entry, cutoff, now - timedelta(days=grace_days))
    text = query.as_string(conn)
    started = time.perf_counter()
    try:
        with conn.transaction():
            failing, oldest = conn.execute(query).fetchone()
            total = table_rows(conn, entry.table)
        waiting = backlog(conn, entry, now)
        progress = archived_since(conn, entry, now - PROGRESS_WINDOW)
    except psycopg.Error as exc:
        return broken(check, text, ENGINE, exc, time.perf_counter() - started)
    state = backlog_state(failing, waiting.rows, progress)
    details = {"keep_days": entry.keep_days, "grace_days": grace_days, "cutoff": cutoff.isoformat(),
               "oldest": oldest.isoformat() if oldest is not None else "none", "state": state,
               "backlog_days": waiting.days, "backlog_rows": waiting.rows,
               "backlog_oldest_day": waiting.oldest.isoformat() if waiting.oldest else "none",
               "archived_rows_last_24h": progress}
    if state == "draining":
        details["expected_hours_to_clear"] = round(waiting.rows / progress * 24, 1)
    return Outcome(check=check, passed=failing == 0, failing=failing, total=total, query=text, engine=ENGINE,
                   samples=(oldest,) if oldest is not None else (), seconds=time.perf_counter() - started,
                   details=details)


def backlog_state(failing: int, backlog_rows: int, archived_last_day: int) -> str:
    """"clear" (nothing overdue), "within grace" (overdue rows, none past the grace), "draining" (rows past the
    grace, but rows were archived in the last day) or "stuck" (rows past the grace, nothing archived for a day)."""
    if failing == 0:
        return "clear" if backlog_rows == 0 else "within grace"
    return "draining" if archived_last_day > 0 else "stuck"

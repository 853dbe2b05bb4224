"""Retention compliance: no row of a catalog table older than its keep_days plus a grace period (with the
entry's rules: no row whose own keep_days, plus the grace period, has passed)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import psycopg
from psycopg import sql

from forge_assets.days import day_window
from forge_assets.quality.outcome import Outcome, broken
from forge_assets.quality.sql_evaluator import table_rows
from forge_assets.retention.catalog import TableEntry, due_filter, slice_filter
from forge_assets.retention.engine import last_overdue_day

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
    query = sql.SQL("SELECT count(*), min({c}) FROM {t} WHERE {c} < {b} AND {s}").format(
        c=sql.Identifier(entry.time_column), t=sql.Identifier(entry.table), b=bound, s=slice_filter(entry))
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
    except psycopg.Error as exc:
        return broken(check, text, ENGINE, exc, time.perf_counter() - started)
    return Outcome(check=check, passed=failing == 0, failing=failing, total=total, query=text, engine=ENGINE,
                   samples=(oldest,) if oldest is not None else (), seconds=time.perf_counter() - started,
                   details={"keep_days": entry.keep_days, "grace_days": grace_days, "cutoff": cutoff.isoformat(),
                            "oldest": oldest.isoformat() if oldest is not None else "none"})

"""Retention compliance: no row of a catalog table older than its keep_days plus a grace period (unfinished
work, which is never purged, does not count)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import psycopg
from psycopg import sql

from forge_assets.catalog import TableEntry
from forge_assets.days import day_window
from forge_assets.quality.outcome import Outcome, broken
from forge_assets.quality.plain import table_rows
from forge_assets.retention.engine import last_overdue_day, unfinished_filter

GRACE_DAYS = 2
ENGINE = "sql"


def compliance_cutoff(entry: TableEntry, now: datetime, grace_days: int = GRACE_DAYS) -> datetime:
    """Rows before this instant (UTC midnight) are past keep_days + grace_days: the purge is behind."""
    if grace_days < 0:
        raise ValueError(f"grace_days must be >= 0 (got {grace_days})")
    last_allowed_overdue = last_overdue_day(entry, now - timedelta(days=grace_days))
    return day_window(last_allowed_overdue, last_allowed_overdue)[1]


def _slice(entry: TableEntry) -> sql.Composable:
    if not entry.slice_column:
        return sql.SQL("true")
    return sql.SQL("{}::text = ANY({})").format(sql.Identifier(entry.slice_column), sql.Literal(list(entry.slice_values)))


def compliance_query(entry: TableEntry, cutoff: datetime) -> sql.Composed:
    """Count and oldest time of the rows older than `cutoff` (an indexed range on the time column)."""
    bound = sql.Literal(cutoff.replace(tzinfo=None) if entry.naive_utc else cutoff)
    keep = sql.SQL(" AND NOT ({})").format(unfinished_filter(entry)) if entry.unfinished else sql.SQL("")
    return sql.SQL("SELECT count(*), min({c}) FROM {t} t WHERE {c} < {b} AND {s}{keep}").format(
        c=sql.Identifier(entry.time_column), t=sql.Identifier(entry.table), b=bound, s=_slice(entry), keep=keep)


def retention_compliance(conn: psycopg.Connection, entry: TableEntry, now: datetime,
                         grace_days: int = GRACE_DAYS) -> Outcome:
    """Fails with the number of overdue rows and the oldest timestamp among them."""
    check = "retention_compliance"
    cutoff = compliance_cutoff(entry, now, grace_days)
    query = compliance_query(entry, cutoff)
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

"""What the ledger says happened, per (entry, day), and what is still waiting: read-only queries that the
Dagster layer turns into materializations, sensor decisions and compliance verdicts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import psycopg
from psycopg import sql

from forge_assets.days import day_window
from forge_assets.retention.catalog import TableEntry, slice_filter
from forge_assets.retention.engine import FIRST_DAY, LAST_DAY, first_day, last_overdue_day


@dataclass(frozen=True)
class LedgerDay:
    """The live (not restored) ledger rows of one (entry, day), summed over the runs that wrote them."""

    day: date
    rows: int
    bytes: int
    files: int
    runs: int
    last_run_id: str
    archived_at: datetime


def ledgered_days(conn: psycopg.Connection, entry: TableEntry) -> list[LedgerDay]:
    """Every day of `entry` that the ledger holds live rows for, oldest first."""
    found = conn.execute(
        "SELECT day, sum(row_count), sum(bytes), count(path), count(DISTINCT run_id), "
        "(array_agg(run_id ORDER BY id DESC))[1], max(archived_at) FROM forge_retention.archive_ledger "
        "WHERE entry = %s AND restored_at IS NULL GROUP BY day ORDER BY day", (entry.key,)).fetchall()
    conn.rollback()
    return [LedgerDay(day, int(rows), int(size), files, runs, run_id, at)
            for day, rows, size, files, runs, run_id, at in found]


@dataclass(frozen=True)
class Backlog:
    """The overdue days of an entry that still hold rows: how many, their rows, the oldest day."""

    days: int
    rows: int
    oldest: date | None


def backlog(conn: psycopg.Connection, entry: TableEntry, now: datetime) -> Backlog:
    """Overdue days holding rows and their rows: one grouped count over the indexed overdue range."""
    last = last_overdue_day(entry, now)
    first = first_day(conn, entry, FIRST_DAY, LAST_DAY)
    if first is None or first > last:
        conn.rollback()
        return Backlog(0, 0, None)
    end = day_window(last, last)[1]
    column = sql.Identifier(entry.time_column)
    bound = sql.Literal(end.replace(tzinfo=None) if entry.naive_utc else end)
    day_of = (sql.SQL("({}::date)").format(column) if entry.naive_utc
              else sql.SQL("(({} AT TIME ZONE 'UTC')::date)").format(column))
    days, rows = conn.execute(sql.SQL("SELECT count(DISTINCT {d}), count(*) FROM {t} WHERE {c} < {b} AND {s}").format(
        d=day_of, t=sql.Identifier(entry.table), c=column, b=bound, s=slice_filter(entry))).fetchone()
    conn.rollback()
    return Backlog(int(days), int(rows), first)


def archived_since(conn: psycopg.Connection, entry: TableEntry, since: datetime) -> int:
    """Rows of `entry` the ledger recorded since `since` (progress, whichever path archived them)."""
    rows = conn.execute("SELECT coalesce(sum(row_count), 0) FROM forge_retention.archive_ledger "
                        "WHERE entry = %s AND archived_at >= %s", (entry.key, since)).fetchone()[0]
    conn.rollback()
    return int(rows)


def day_range(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]

"""Restored days on hold: `forge-assets restore --hold-days N` keeps a restored day out of retention until the
ledger's `held_until` (migration forge_retention/006); the sensor and every archive run read it here."""

from __future__ import annotations

from datetime import date, datetime

import psycopg

from forge_assets.retention.catalog import TableEntry


def held_days(conn: psycopg.Connection, entry: TableEntry, now: datetime, day: date | None = None,
              ) -> dict[date, datetime]:
    """Restored days of `entry` (or just `day`) still on hold at `now`: day -> the end of its hold. A day stays
    held while any of its restored files (not archived again since) has a hold that has not passed."""
    found = conn.execute(
        "SELECT day, max(held_until) FROM forge_retention.archive_ledger WHERE entry = %s AND path IS NOT NULL "
        "AND restored_at IS NOT NULL AND held_until > %s AND (%s::date IS NULL OR day = %s) GROUP BY day",
        (entry.key, now, day, day)).fetchall()
    conn.rollback()
    return dict(found)

"""UTC days: the unit every rollup partition and every archive run works in."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone


def day_window(first_day: date, last_day: date) -> tuple[datetime, datetime]:
    """The half-open UTC interval [first_day 00:00, last_day + 1 00:00)."""
    start = datetime.combine(first_day, time(0), tzinfo=timezone.utc)
    end = datetime.combine(last_day + timedelta(days=1), time(0), tzinfo=timezone.utc)
    return start, end

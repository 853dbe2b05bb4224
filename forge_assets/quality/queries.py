"""SQL for the rules: the window predicate, the violating-row predicate, and count and sample queries.

Every identifier is quoted with psycopg.sql. Windowed rules select `time_column >= start AND time_column <
end`, which an index on the time column serves; naive-UTC columns compare against the window's UTC wall time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone

from psycopg import sql

from forge_assets.days import day_window
from forge_assets.quality.outcome import MAX_SAMPLES
from forge_assets.quality.rules import Rule


@dataclass(frozen=True)
class Window:
    """A half-open UTC interval [start, end) of whole days: the rows a windowed rule looks at."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("a window needs timezone-aware bounds")
        if self.end <= self.start:
            raise ValueError(f"empty window {self.start} .. {self.end}")

    @classmethod
    def days(cls, first: date, last: date) -> Window:
        """The UTC days first .. last, both included."""
        return cls(*day_window(first, last))

    def describe(self) -> str:
        return f"[{self.start.astimezone(timezone.utc):%Y-%m-%d %H:%M}, {self.end.astimezone(timezone.utc):%Y-%m-%d %H:%M}) UTC"


def _bound(value: datetime, naive_utc: bool) -> sql.Composable:
    literal = sql.Literal(value)
    return sql.SQL("({} AT TIME ZONE 'UTC')").format(literal) if naive_utc else literal


def window_filter(column: str, window: Window, naive_utc: bool = False) -> sql.Composed:
    """`column >= start AND column < end`, with literal bounds (query text that GX can run as is)."""
    return sql.SQL("{col} >= {start} AND {col} < {end}").format(
        col=sql.Identifier(column), start=_bound(window.start, naive_utc), end=_bound(window.end, naive_utc))


def checked_value(rule: Rule) -> sql.Composable:
    """The expression a rule tests: its SQL expression, or its column."""
    return sql.SQL(rule.expression) if rule.expression else sql.Identifier(rule.column)


def violation(rule: Rule, alias: str | None = None) -> sql.Composable:
    """Predicate true for the rows that break `rule` (not defined for `unique`, a property of groups)."""
    def col(name: str) -> sql.Composable:
        return sql.Identifier(alias, name) if alias else sql.Identifier(name)

    value = sql.SQL(rule.expression) if rule.expression else col(rule.column)
    if rule.kind == "in_set":
        values = sql.SQL(", ").join(sql.Literal(v) for v in rule.values)
        return sql.SQL("{}::text NOT IN ({})").format(value, values)
    if rule.kind == "not_null":
        return sql.SQL("{} IS NULL").format(value)
    if rule.kind == "between":
        parts = []
        if rule.low is not None:
            parts.append(sql.SQL("{} < {}").format(value, sql.Literal(rule.low)))
        if rule.high is not None:
            parts.append(sql.SQL("{} > {}").format(value, sql.Literal(rule.high)))
        return sql.SQL("({})").format(sql.SQL(" OR ").join(parts))
    if rule.kind == "ordered":
        return sql.SQL("{} < {}").format(value, col(rule.other))
    if rule.kind == "not_future":
        now = sql.SQL("(now() AT TIME ZONE 'UTC')" if rule.naive_utc else "now()")
        return sql.SQL("{} > {}").format(value, now)
    if rule.kind == "references":
        table, column = rule.target
        return sql.SQL("{v} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {t} AS r WHERE r.{c} = {v})").format(
            v=value, t=sql.Identifier(table), c=sql.Identifier(column))
    raise ValueError(f"{rule.name}: no row predicate for a {rule.kind} rule")


def scope(rule: Rule, window: Window | None) -> sql.Composable:
    """The rows a rule looks at: its window of days, or the whole table (window None, or an unwindowed rule)."""
    if window is None or not rule.windowed:
        return sql.SQL("true")
    return window_filter(rule.time_column, window, rule.naive_utc)


def count_query(rule: Rule, window: Window | None = None) -> sql.Composed:
    """One number: how many rows break `rule` (for `unique`: rows beyond the first of each repeated value)."""
    table = sql.Identifier(rule.table)
    if rule.kind == "unique":
        return sql.SQL("SELECT count({c}) - count(DISTINCT {c}) FROM {t} WHERE {s}").format(
            c=sql.Identifier(rule.column), t=table, s=scope(rule, window))
    return sql.SQL("SELECT count(*) FROM {t} WHERE {s} AND {p}").format(
        t=table, s=scope(rule, window), p=violation(rule))


def sample_query(rule: Rule, window: Window | None = None, limit: int = MAX_SAMPLES) -> sql.Composed:
    """Up to `limit` offending values (for `unique`: the repeated values)."""
    table = sql.Identifier(rule.table)
    if rule.kind == "unique":
        return sql.SQL("SELECT {c} FROM {t} WHERE {s} GROUP BY {c} HAVING count(*) > 1 ORDER BY {c} LIMIT {n}").format(
            c=sql.Identifier(rule.column), t=table, s=scope(rule, window), n=sql.Literal(limit))
    shown = [checked_value(rule)]
    if rule.kind == "ordered":
        shown.append(sql.Identifier(rule.other))
    return sql.SQL("SELECT {v} FROM {t} WHERE {s} AND {p} LIMIT {n}").format(
        v=sql.SQL(", ").join(shown), t=table, s=scope(rule, window), p=violation(rule), n=sql.Literal(limit))


def total_query(table: str, rule: Rule | None = None, window: Window | None = None) -> sql.Composed:
    """How many rows the rule looks at."""
    where = scope(rule, window) if rule is not None else sql.SQL("true")
    return sql.SQL("SELECT count(*) FROM {} WHERE {}").format(sql.Identifier(table), where)

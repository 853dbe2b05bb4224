"""Rules evaluated with hand-written SQL: one scan per table and window for the row predicates, an anti-join
or a grouping query for the rest. The reference the GX evaluator is measured against, and the evaluator of
the whole-table rules."""

from __future__ import annotations

import time
from collections.abc import Iterable

import psycopg
from psycopg import sql

from forge_assets.quality.outcome import Outcome, broken
from forge_assets.quality.queries import (
    Window,
    count_query,
    sample_query,
    scope,
    total_query,
    violation,
)
from forge_assets.quality.rules import Rule

ENGINE = "sql"
_ESTIMATED_ROWS = (
    "SELECT coalesce(sum(c.reltuples) FILTER (WHERE c.reltuples > 0), 0)::bigint "
    "FROM pg_partition_tree(to_regclass(format('%%I', %(t)s::text))) p JOIN pg_class c ON c.oid = p.relid "
    "WHERE p.isleaf"
)


def table_rows(conn: psycopg.Connection, table: str) -> int:
    """Rows of a whole table: the planner's estimate when there is one (no full scan), else an exact count."""
    estimate = conn.execute(_ESTIMATED_ROWS, {"t": table}).fetchone()[0]
    return estimate if estimate > 0 else conn.execute(total_query(table)).fetchone()[0]


def _samples(conn: psycopg.Connection, rule: Rule, window: Window | None) -> tuple:
    rows = conn.execute(sample_query(rule, window)).fetchall()
    return tuple(row[0] if len(row) == 1 else tuple(row) for row in rows)


def _scan(conn: psycopg.Connection, rules: list[Rule], window: Window | None) -> list[Outcome]:
    """Every row predicate of one table over one window in a single scan."""
    first = rules[0]
    counts = sql.SQL(", ").join(sql.SQL("count(*) FILTER (WHERE {})").format(violation(r)) for r in rules)
    query = sql.SQL("SELECT count(*), {} FROM {} WHERE {}").format(counts, sql.Identifier(first.table),
                                                                   scope(first, window))
    text = query.as_string(conn)
    started = time.perf_counter()
    try:
        with conn.transaction():
            total, *failing = conn.execute(query).fetchone()
            samples = [_samples(conn, r, window) if n else () for r, n in zip(rules, failing, strict=True)]
    except psycopg.Error as exc:
        return [broken(r.name, text, ENGINE, exc, time.perf_counter() - started) for r in rules]
    seconds = time.perf_counter() - started
    return [Outcome(check=r.name, passed=n == 0, failing=n, total=total, query=text, engine=ENGINE, samples=s,
                    seconds=seconds) for r, n, s in zip(rules, failing, samples, strict=True)]


def _single(conn: psycopg.Connection, rule: Rule, window: Window | None) -> Outcome:
    query = count_query(rule, window)
    text = query.as_string(conn)
    started = time.perf_counter()
    try:
        with conn.transaction():
            failing = conn.execute(query).fetchone()[0]
            if rule.windowed and window is not None:
                total = conn.execute(total_query(rule.table, rule, window)).fetchone()[0]
            else:
                total = table_rows(conn, rule.table)
            samples = _samples(conn, rule, window) if failing else ()
    except psycopg.Error as exc:
        return broken(rule.name, text, ENGINE, exc, time.perf_counter() - started)
    return Outcome(check=rule.name, passed=failing == 0, failing=failing, total=total, query=text, engine=ENGINE,
                   samples=samples, seconds=time.perf_counter() - started)


def scannable(rule: Rule) -> bool:
    """Whether a rule is a per-row predicate over its window (evaluated in the table's shared scan)."""
    return rule.windowed and rule.kind not in ("references", "unique")


def evaluate_sql(conn: psycopg.Connection, rules: Iterable[Rule], window: Window | None) -> list[Outcome]:
    """Evaluate rules with plain SQL over `window` (None: whole tables); one outcome per rule, in order."""
    rules = list(rules)
    found: dict[str, Outcome] = {}
    groups: dict[tuple, list[Rule]] = {}
    for rule in rules:
        if scannable(rule):
            groups.setdefault((rule.table, rule.time_column, rule.naive_utc), []).append(rule)
        else:
            found[rule.name] = _single(conn, rule, window)
    for group in groups.values():
        found.update((o.check, o) for o in _scan(conn, group, window))
    return [found[r.name] for r in rules]

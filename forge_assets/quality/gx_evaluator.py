"""Rules evaluated by Great Expectations 1.x on PostgreSQL, in an ephemeral context (no files, no network).

Memory stays bounded whatever the window size and however many rows fail: PostgreSQL counts, GX fetches at
most MAX_SAMPLES values per rule. Per table and window there are two GX suites:

- plain-column rules (allowed set, not-null, range, ordering of two columns) are GX's own column
  expectations on a **table asset**, windowed by a GX row condition (`time >= start AND time < end`, an
  indexed range; never `add_batch_definition_daily`, which scans the whole table), in result format BASIC:
  GX computes the exact unexpected count in SQL and fetches `partial_unexpected_count` values;
- membership in another table and rules over SQL expressions are `UnexpectedRowsExpectation`s on a **query
  asset** of the window, in result format COMPLETE: each query returns at most MAX_SAMPLES violating rows,
  each carrying the exact number of violating rows (`failing_rows`, a scalar subquery PostgreSQL evaluates
  only when a row is returned).

Why not column expectations on the query asset: GX 1.x reads a query asset's column names by running the
whole query and buffering every row (`column_reflection_fallback`, great_expectations/expectations/metrics/
util.py), about 1.1 KB per window row. Why not SUMMARY: it fetches every distinct unexpected value with its
count. Why not plain unexpected-rows queries: GX buffers every row they return, to count them.

GX is imported here, lazily, so loading the code location stays fast; its progress bars are off. A GX
`exception_info` marks the check broken, not the data bad.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Iterable
from datetime import timezone

import psycopg
from psycopg import sql

from forge_assets.conninfo import redact, sqlalchemy_url
from forge_assets.quality.outcome import MAX_SAMPLES, Outcome, broken
from forge_assets.quality.queries import Window, checked_value, scope, total_query, violation
from forge_assets.quality.rules import Rule

ENGINE = "great_expectations"
FAILING = "failing_rows"
COLUMN_KINDS = ("in_set", "not_null", "between", "ordered")


def _import_gx():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import great_expectations as gx
        import great_expectations.expectations as gxe
        from great_expectations.data_context.types.base import ProgressBarsConfig
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    return gx, gxe, ProgressBarsConfig


def column_rule(rule: Rule) -> bool:
    """Whether GX's own column expectations express `rule` (a plain column, no SQL expression)."""
    return rule.kind in COLUMN_KINDS and not rule.expression


def _window_condition(rule: Rule, window: Window | None):
    """GX's row condition selecting the rule's window (None: the whole table)."""
    if window is None or not rule.windowed:
        return None
    from great_expectations.expectations.row_conditions import Column

    start, end = window.start, window.end
    if rule.naive_utc:
        start, end = (t.astimezone(timezone.utc).replace(tzinfo=None) for t in (start, end))
    column = Column(rule.time_column)
    return (column >= start) & (column < end)


def _column_expectation(gxe, rule: Rule, window: Window | None):
    """GX's column expectation of a plain-column rule, tagged with the rule's name (GX returns results out of
    order)."""
    options = {"meta": {"rule": rule.name}}
    condition = _window_condition(rule, window)
    if condition is not None:
        options["row_condition"] = condition
    if rule.kind == "in_set":
        return gxe.ExpectColumnValuesToBeInSet(column=rule.column, value_set=list(rule.values), **options)
    if rule.kind == "not_null":
        return gxe.ExpectColumnValuesToNotBeNull(column=rule.column, **options)
    if rule.kind == "between":
        return gxe.ExpectColumnValuesToBeBetween(column=rule.column, min_value=rule.low, max_value=rule.high,
                                                 **options)
    return gxe.ExpectColumnPairValuesAToBeGreaterThanB(
        column_A=rule.column, column_B=rule.other, or_equal=True, ignore_row_if="either_value_is_missing", **options)


def unexpected_rows_query(rule: Rule) -> sql.Composed:
    """The UnexpectedRowsExpectation query of a rule; `{batch}` is GX's placeholder for the window's rows.

    It returns at most MAX_SAMPLES violating rows, each carrying the exact number of violating rows in a
    `failing_rows` column: PostgreSQL counts (a scalar subquery, evaluated only when a row is returned), GX
    fetches at most MAX_SAMPLES rows. Membership is a LEFT JOIN anti-join (GX then substitutes `({batch})`
    and leaves the aliasing to us); the other rules are the plain-SQL evaluator's violation predicates."""
    if rule.kind == "references":
        table, column = rule.target
        violating = sql.SQL("SELECT b.{c} FROM {{batch}} b LEFT JOIN {t} r ON r.{rc} = b.{c} "
                            "WHERE b.{c} IS NOT NULL AND r.{rc} IS NULL").format(
            c=sql.Identifier(rule.column), t=sql.Identifier(table), rc=sql.Identifier(column))
    else:
        shown = [checked_value(rule)] + ([sql.Identifier(rule.other)] if rule.kind == "ordered" else [])
        violating = sql.SQL("SELECT {v} FROM {{batch}} WHERE {p}").format(v=sql.SQL(", ").join(shown),
                                                                         p=violation(rule))
    return sql.SQL("WITH violating AS NOT MATERIALIZED ({v}) SELECT violating.*, "
                   "(SELECT count(*) FROM violating) AS {f} FROM violating LIMIT {n}").format(
        v=violating, f=sql.Identifier(FAILING), n=sql.Literal(MAX_SAMPLES))


def _exception(result) -> str | None:
    info = result.exception_info or {}
    entries = [info] if "raised_exception" in info else list(info.values())
    for entry in entries:
        if isinstance(entry, dict) and entry.get("raised_exception"):
            return str(entry.get("exception_message") or "GX raised an exception")
    return None


def _outcome(rule: Rule, result, text: str, total: int, seconds: float) -> Outcome:
    error = _exception(result)
    if error is not None:
        return broken(rule.name, text, ENGINE, error, seconds)
    values = result.result or {}
    if "unexpected_count" in values:  # a column expectation
        failing = int(values["unexpected_count"] or 0)
        samples = tuple(values.get("partial_unexpected_list") or ())[:MAX_SAMPLES]
    else:  # an unexpected-rows expectation: up to MAX_SAMPLES rows, each with the exact count
        rows = (values.get("details") or {}).get("unexpected_rows") or []
        failing = int(rows[0][FAILING]) if rows else 0
        shown = [tuple(v for k, v in row.items() if k != FAILING) for row in rows[:MAX_SAMPLES]]
        samples = tuple(v[0] if len(v) == 1 else v for v in shown)
    return Outcome(check=rule.name, passed=bool(result.success) and failing == 0, failing=failing, total=total,
                   query=text, engine=ENGINE, samples=samples, seconds=seconds)


def _suites(gx, gxe, context, datasource, conn: psycopg.Connection, group: list[Rule], window: Window | None,
            index: int, asset_text: str, texts: dict[str, str]) -> list:
    """(batch, suite, result format) of a group: column rules on the windowed table, the others on the
    window's query asset. Fills `texts` with the query shown for each rule."""
    first = group[0]
    validations = []
    columns = [r for r in group if column_rule(r)]
    if columns:
        table = datasource.add_table_asset(name=f"t{index}_{first.table}",  # quoted: GX folds bare names
                                           table_name=sql.Identifier(first.table).as_string(conn))
        suite = context.suites.add(gx.ExpectationSuite(name=f"c{index}_{first.table}"))
        for rule in columns:
            expectation = _column_expectation(gxe, rule, window)
            texts[rule.name] = f"{type(expectation).__name__}({rule.column}) ON ({asset_text})"
            suite.add_expectation(expectation)
        validations.append((table.add_batch_definition_whole_table("table").get_batch(), suite,
                            {"result_format": "BASIC", "partial_unexpected_count": MAX_SAMPLES}))
    others = [r for r in group if not column_rule(r)]
    if others:
        asset = datasource.add_query_asset(name=f"q{index}_{first.table}", query=asset_text)
        suite = context.suites.add(gx.ExpectationSuite(name=f"r{index}_{first.table}"))
        for rule in others:
            rows_sql = unexpected_rows_query(rule).as_string(conn)
            texts[rule.name] = rows_sql.replace("{batch}", f"({asset_text})")
            suite.add_expectation(gxe.UnexpectedRowsExpectation(unexpected_rows_query=rows_sql,
                                                                meta={"rule": rule.name}))
        validations.append((asset.add_batch_definition_whole_table("window").get_batch(), suite, "COMPLETE"))
    return validations


def evaluate_gx(conninfo: str, rules: Iterable[Rule], window: Window | None) -> list[Outcome]:
    """Evaluate per-row and membership rules with GX over `window` (None: whole tables); one outcome per rule.

    `unique` rules are not GX's: they are evaluated with plain SQL (see `evaluate`)."""
    rules = list(rules)
    unsupported = [r.name for r in rules if r.kind == "unique"]
    if unsupported:
        raise ValueError(f"GX evaluator does not take unique rules: {', '.join(unsupported)}")
    gx, gxe, progress_bars = _import_gx()
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = progress_bars(globally=False)
    found: dict[str, Outcome] = {}
    groups: dict[tuple, list[Rule]] = {}
    for rule in rules:
        groups.setdefault((rule.table, rule.time_column if window else None, rule.naive_utc), []).append(rule)
    with psycopg.connect(conninfo) as conn:
        conn.read_only = True
        datasource = context.data_sources.add_postgres("source", connection_string=sqlalchemy_url(conninfo, "psycopg"))
        for index, group in enumerate(groups.values()):
            first = group[0]
            asset_sql = sql.SQL("SELECT * FROM {} WHERE {}").format(sql.Identifier(first.table), scope(first, window))
            asset_text = asset_sql.as_string(conn)
            started = time.perf_counter()
            texts: dict[str, str] = {}
            try:
                total = conn.execute(total_query(first.table, first, window)).fetchone()[0]
                conn.rollback()
                results = [result for batch, suite, result_format in
                           _suites(gx, gxe, context, datasource, conn, group, window, index, asset_text, texts)
                           for result in batch.validate(suite, result_format=result_format).results]
            except Exception as exc:  # GX wraps driver and config errors in many types: the check is broken
                seconds = time.perf_counter() - started
                found.update((r.name, broken(r.name, texts.get(r.name, asset_text), ENGINE, redact(str(exc)), seconds))
                             for r in group)
                conn.rollback()
                continue
            seconds = time.perf_counter() - started
            for result in results:
                rule = next(r for r in group if r.name == result.expectation_config.meta["rule"])
                found[rule.name] = _outcome(rule, result, texts[rule.name], total, seconds)
    return [found[r.name] for r in rules]

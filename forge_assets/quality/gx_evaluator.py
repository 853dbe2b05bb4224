"""Rules evaluated by Great Expectations 1.x on PostgreSQL, in an ephemeral context (no files, no network).

Each table's window becomes one GX query asset (`SELECT * FROM t WHERE time >= start AND time < end`, an
indexed range: never `add_batch_definition_daily`, which scans the whole table) and one suite of
`UnexpectedRowsExpectation`s, one per rule, validated with result format COMPLETE so GX's result carries the
rows its query returned. Each query returns at most MAX_SAMPLES violating rows plus the exact count of
violating rows, computed by PostgreSQL: memory stays bounded whatever the window size and however many rows
fail. GX's column expectations are not used: on a query asset, GX 1.x reads the batch's column names by
running the whole query and buffering every row (`column_reflection_fallback` in
great_expectations/expectations/metrics/util.py), about 1.1 KB of memory per window row; its SUMMARY format
also fetches every distinct unexpected value. GX is imported here, lazily, so loading the code location
stays fast; its progress bars are off. A GX `exception_info` marks the check broken, not the data bad.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Iterable

import psycopg
from psycopg import sql

from forge_assets.conninfo import redact, sqlalchemy_url
from forge_assets.quality.outcome import MAX_SAMPLES, Outcome, broken
from forge_assets.quality.queries import Window, checked_value, scope, total_query, violation
from forge_assets.quality.rules import Rule

ENGINE = "great_expectations"


def _import_gx():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import great_expectations as gx
        import great_expectations.expectations as gxe
        from great_expectations.data_context.types.base import ProgressBarsConfig
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    return gx, gxe, ProgressBarsConfig


FAILING = "failing_rows"


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
    rows = ((result.result or {}).get("details") or {}).get("unexpected_rows") or []
    failing = int(rows[0][FAILING]) if rows else 0
    values = [tuple(v for k, v in row.items() if k != FAILING) for row in rows[:MAX_SAMPLES]]
    samples = tuple(v[0] if len(v) == 1 else v for v in values)
    return Outcome(check=rule.name, passed=bool(result.success) and failing == 0, failing=failing, total=total,
                   query=text, engine=ENGINE, samples=samples, seconds=seconds)


def evaluate_gx(conninfo: str, rules: Iterable[Rule], window: Window | None) -> list[Outcome]:
    """Evaluate per-row and membership rules with GX over `window` (None: whole tables); one outcome per rule.

    `unique` and unwindowed rules are not GX's here: they are evaluated with plain SQL (see `evaluate`)."""
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
            texts = {}
            try:
                total = conn.execute(total_query(first.table, first, window)).fetchone()[0]
                conn.rollback()
                asset = datasource.add_query_asset(name=f"q{index}_{first.table}", query=asset_text)
                batch = asset.add_batch_definition_whole_table("window").get_batch()
                suite = context.suites.add(gx.ExpectationSuite(name=f"s{index}_{first.table}"))
                for rule in group:
                    rows_sql = unexpected_rows_query(rule).as_string(conn)
                    texts[rule.name] = rows_sql.replace("{batch}", f"({asset_text})")
                    suite.add_expectation(gxe.UnexpectedRowsExpectation(unexpected_rows_query=rows_sql,
                                                                        meta={"rule": rule.name}))
                results = batch.validate(suite, result_format="COMPLETE")
            except Exception as exc:  # GX wraps driver and config errors in many types: the check is broken
                seconds = time.perf_counter() - started
                found.update((r.name, broken(r.name, texts.get(r.name, asset_text), ENGINE, redact(str(exc)), seconds))
                             for r in group)
                conn.rollback()
                continue
            seconds = time.perf_counter() - started
            for result in results.results:
                rule = next(r for r in group if r.name == result.expectation_config.meta["rule"])
                found[rule.name] = _outcome(rule, result, texts[rule.name], total, seconds)
    return [found[r.name] for r in rules]

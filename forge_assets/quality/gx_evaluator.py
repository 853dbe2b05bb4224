"""Rules evaluated by Great Expectations 1.x on PostgreSQL, in an ephemeral context (no files, no network).

Each table's window becomes one GX query asset (`SELECT * FROM t WHERE time >= start AND time < end`, an
indexed range: never `add_batch_definition_daily`, which scans the whole table). Allowed sets, not-null,
ranges and column orderings are GX's own column expectations, computed in PostgreSQL; membership in another
table and expressions over several columns or JSON are `UnexpectedRowsExpectation` anti-joins (never large
value sets). Nothing is loaded into pandas. GX is imported here, lazily, so loading the code location stays
fast; its progress bars are off. A GX `exception_info` marks the check broken, not the data bad.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg import sql

from forge_assets.conninfo import redact, sqlalchemy_url
from forge_assets.quality.outcome import MAX_SAMPLES, Outcome, broken
from forge_assets.quality.queries import Window, checked_value, sample_query, scope, total_query, violation
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


def _expectation(gxe, rule: Rule, batch_sql: str, meta: dict[str, Any]):
    """The GX expectation of a rule, tagged with the rule's name (GX returns results out of order)."""
    if rule.kind == "in_set" and not rule.expression:
        return gxe.ExpectColumnValuesToBeInSet(column=rule.column, value_set=list(rule.values), meta=meta)
    if rule.kind == "not_null" and not rule.expression:
        return gxe.ExpectColumnValuesToNotBeNull(column=rule.column, meta=meta)
    if rule.kind == "between" and not rule.expression:
        return gxe.ExpectColumnValuesToBeBetween(column=rule.column, min_value=rule.low, max_value=rule.high,
                                                 meta=meta)
    if rule.kind == "ordered" and not rule.expression:
        return gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A=rule.column, column_B=rule.other, or_equal=True, ignore_row_if="either_value_is_missing",
            meta=meta)
    return gxe.UnexpectedRowsExpectation(unexpected_rows_query=batch_sql, meta=meta)


def unexpected_rows_query(rule: Rule) -> sql.Composed:
    """The UnexpectedRowsExpectation query of a rule; `{batch}` is GX's placeholder for the window's rows.

    Membership is a LEFT JOIN anti-join (GX then substitutes `({batch})` and leaves the aliasing to us)."""
    if rule.kind == "references":
        table, column = rule.target
        return sql.SQL("SELECT b.{c} FROM {{batch}} b LEFT JOIN {t} r ON r.{rc} = b.{c} "
                       "WHERE b.{c} IS NOT NULL AND r.{rc} IS NULL").format(
            c=sql.Identifier(rule.column), t=sql.Identifier(table), rc=sql.Identifier(column))
    return sql.SQL("SELECT {v} FROM {{batch}} WHERE {p}").format(v=checked_value(rule), p=violation(rule))


def _exception(result) -> str | None:
    info = result.exception_info or {}
    entries = [info] if "raised_exception" in info else list(info.values())
    for entry in entries:
        if isinstance(entry, dict) and entry.get("raised_exception"):
            return str(entry.get("exception_message") or "GX raised an exception")
    return None


def _outcome(rule: Rule, result, text: str, total: int, conn: psycopg.Connection, window: Window | None,
             seconds: float) -> Outcome:
    error = _exception(result)
    if error is not None:
        return broken(rule.name, text, ENGINE, error, seconds)
    values = result.result or {}
    if "unexpected_count" in values:
        failing = int(values["unexpected_count"] or 0)
        samples = tuple(values.get("partial_unexpected_list") or ())[:MAX_SAMPLES]
    else:
        failing = int(values.get("observed_value") or 0)
        samples = ()
        if failing:
            samples = tuple(r[0] if len(r) == 1 else tuple(r) for r in conn.execute(sample_query(rule, window)))
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
                    expectation = _expectation(gxe, rule, rows_sql, {"rule": rule.name})
                    texts[rule.name] = (rows_sql.replace("{batch}", f"({asset_text})")
                                        if isinstance(expectation, gxe.UnexpectedRowsExpectation)
                                        else f"{type(expectation).__name__}({rule.column}) ON {asset_text}")
                    suite.add_expectation(expectation)
                results = batch.validate(suite, result_format={"result_format": "SUMMARY",
                                                               "partial_unexpected_count": MAX_SAMPLES})
            except Exception as exc:  # GX wraps driver and config errors in many types: the check is broken
                seconds = time.perf_counter() - started
                found.update((r.name, broken(r.name, texts.get(r.name, asset_text), ENGINE, redact(str(exc)), seconds))
                             for r in group)
                conn.rollback()
                continue
            seconds = time.perf_counter() - started
            for result in results.results:
                rule = next(r for r in group if r.name == result.expectation_config.meta["rule"])
                found[rule.name] = _outcome(rule, result, texts[rule.name], total, conn, window, seconds)
            conn.rollback()
    return [found[r.name] for r in rules]

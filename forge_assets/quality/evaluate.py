"""Choosing the evaluator of each rule: GX for the windowed rules, plain SQL for whole-table ones."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from forge_assets.db import connect
from forge_assets.quality.gx_evaluator import evaluate_gx
from forge_assets.quality.outcome import Outcome
from forge_assets.quality.queries import Window
from forge_assets.quality.rules import Rule
from forge_assets.quality.sql_evaluator import evaluate_sql

Engine = Literal["auto", "gx", "sql"]


def uses_gx(rule: Rule, engine: Engine = "auto") -> bool:
    """Whether `engine` evaluates `rule` with GX. `auto`: windowed per-row and membership rules go to GX;
    whole-table rules (indexed future-timestamp probes, small dimension tables) and uniqueness go to SQL,
    where one indexed query answers what GX would answer with several scans (see bench/results)."""
    if engine not in ("auto", "gx", "sql"):
        raise ValueError(f"unknown engine {engine!r}: auto, gx or sql")
    if rule.kind == "unique" or engine == "sql":
        return False
    return engine == "gx" or rule.windowed


def evaluate(conninfo: str, rules: Iterable[Rule], window: Window | None, engine: Engine = "auto") -> list[Outcome]:
    """Evaluate rules of one source database over `window` (None: whole tables); one outcome per rule, in order."""
    rules = list(rules)
    with_gx = [r for r in rules if uses_gx(r, engine)]
    with_sql = [r for r in rules if not uses_gx(r, engine)]
    found = {o.check: o for o in evaluate_gx(conninfo, with_gx, window)} if with_gx else {}
    if with_sql:
        with connect(conninfo) as conn:
            conn.read_only = True
            found.update((o.check, o) for o in evaluate_sql(conn, with_sql, window))
    return [found[r.name] for r in rules]

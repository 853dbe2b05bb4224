"""The operator's retention policy: a YAML file (FORGE_POLICY) over the built-in catalog, validated at load.

The built-in catalog (catalog.py) is the default; the file overrides and extends it without Python:

```yaml
forge:                          # a source: enabled (bool), purge (bool), then its entries by name
  main_jobevent: {keep_days: 30}
  main_job:
    keep_days: 90
    keep_last: 5                # the newest 5 jobs of every job template stay, whatever their age
    rules:                      # the first rule whose `where` matches a row gives its keep_days
      - {where: {status: [failed, error]}, keep_days: 365}
      - {where: {job_template: ["Patch production"]}, keep_days: 730}
goforge:
  enabled: false
operations:
  rollup_schedule: "00:30"
  sensor_max_runs_per_tick: 4
```

An entry takes `keep_days`, `enabled`, `strategy`, `sensitive` (columns added to the built-in ones, never
removed), `grace_days`, `keep_last` (forge.main_job only) and `rules`. A rule's `where` names the table's
own columns (text, integer, boolean, enum and uuid columns; a value or a list of values, `null` for NULL)
and, on Forge's job tables (main_job, main_jobevent, main_jobhostsummary), the job's `job_template` and
`organization` (by name), `launch_type` and `status`. Every problem of a file is reported at once, one line
each (`<file>:<line>: <key path>: <problem>`), before anything runs. Column names and types are those of
the stand-in schemas (sql/migrations): the live schema is checked again before each archive run.

Nothing here imports Dagster: the CLI, the engine's callers and the Dagster definitions read the same
effective policy (`current_policy()`), loaded once per process.
"""

from __future__ import annotations

import itertools
import os
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path

import yaml

from forge_assets.config import SOURCES
from forge_assets.operations import KNOB_BY_KEY, KNOBS, Operations, parse_knob, show_knob
from forge_assets.quality.rules import RULES, rules_for
from forge_assets.retention.catalog import (
    CATALOG,
    JOB_PREDICATES,
    JOB_TABLE,
    SENSITIVE,
    CatalogError,
    Predicate,
    RetentionRule,
    TableEntry,
    job_link,
    unfinished_values,
)
from forge_assets.sql_files import sql_root

POLICY_VARIABLE = "FORGE_POLICY"
BUILT_IN = "built-in"
MAX_KEEP_DAYS = 36_500
STRATEGIES = ("archive", "drop_partition", "delete")

# AWX's launch types (the stand-in seeds five of them).
LAUNCH_TYPES = ("manual", "relaunch", "callback", "scheduled", "dependency", "workflow", "webhook", "sync", "scm")


class PolicyError(ValueError):
    """The policy file is unusable; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class SourcePolicy:
    """A source's switches: `enabled` (its entries exist at all) and `purge` (None: the file does not say)."""

    enabled: bool = True
    purge: bool | None = None


@dataclass(frozen=True)
class Policy:
    """The effective policy: every catalog entry with the file's overrides (disabled ones too), the
    sources' switches, the operational knobs, and where each value came from."""

    path: Path | None = None
    entries: tuple[TableEntry, ...] = CATALOG
    disabled: frozenset[str] = frozenset()
    sources: Mapping[str, SourcePolicy] = field(default_factory=lambda: {s: SourcePolicy() for s in SOURCES})
    operations: Operations = Operations()
    origins: Mapping[str, str] = field(default_factory=dict)

    def origin(self, key: str) -> str:
        """Where the value at `key` (e.g. `forge.main_job.keep_days`, `operations.grace_days`) came from."""
        return self.origins.get(key, BUILT_IN)

    def enabled(self, entry: TableEntry) -> bool:
        return self.sources[entry.source].enabled and entry.key not in self.disabled

    @property
    def enabled_sources(self) -> tuple[str, ...]:
        return tuple(s for s in SOURCES if self.sources[s].enabled)

    def effective_entries(self, source: str | None = None, name: str | None = None,
                          include_disabled: bool = False) -> list[TableEntry]:
        """Entries of a source (all when None) in catalog order, switched-off ones left out unless
        `include_disabled`; or the one named (a disabled one only with `include_disabled`)."""
        if source is not None and source not in SOURCES:
            raise CatalogError(f"unknown source {source!r}; known sources: {', '.join(SOURCES)}")
        selected = [e for e in self.entries if source in (None, e.source)]
        if name is None:
            return [e for e in selected if include_disabled or self.enabled(e)]
        named = [e for e in selected if name in (e.entry_name, e.table)]
        if not named:
            known = ", ".join(e.entry_name for e in selected)
            raise CatalogError(f"{source or 'the catalog'} has no table or entry {name!r}; known: {known}")
        off = [e for e in named if not self.enabled(e)]
        if off and not include_disabled:
            switch = f"{off[0].key}.enabled" if off[0].key in self.disabled else f"{off[0].source}.enabled"
            raise CatalogError(f"{off[0].key} is switched off by the policy file ({self.origin(switch)})")
        return named

    def sensitive_columns(self, source: str, table: str) -> tuple[str, ...]:
        """A table's sensitive columns: built-in ones and those the file adds to any of its entries."""
        found: dict[str, None] = {}
        for entry in self.entries:
            if (entry.source, entry.table) == (source, table):
                found.update(dict.fromkeys(entry.sensitive_columns))
        return tuple(found) if found else SENSITIVE.get((source, table), ())


# --- the stand-in schemas, read from the migrations --------------------------------------------------------

@dataclass(frozen=True)
class _Table:
    columns: Mapping[str, str]  # name -> kind: integer, boolean, text, uuid, enum:<type>, other:<type>
    partitioned: bool


_INTEGER = {"smallint", "integer", "int", "int2", "int4", "int8", "bigint", "serial", "bigserial", "smallserial"}
_TEXT = re.compile(r"(text|citext|varchar|character varying|char|character|bpchar)(\s*\(\s*\d+\s*\))?")
_TYPE_END = re.compile(r"\s+(NOT|NULL|DEFAULT|PRIMARY|REFERENCES|CHECK|UNIQUE|GENERATED|COLLATE|CONSTRAINT)\b", re.I)
_SKIP = {"PRIMARY", "UNIQUE", "CHECK", "CONSTRAINT", "FOREIGN", "EXCLUDE", "LIKE"}


def _unquote(name: str) -> str:
    name = name.strip()
    return name[1:-1].replace('""', '"') if name.startswith('"') else name.lower()


def _split_top(body: str) -> list[str]:
    """Split at commas outside parentheses and quotes."""
    parts, depth, quote, current = [], 0, None, []
    for char in body:
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def _kind(type_text: str, enums: set[str]) -> str:
    text = " ".join(type_text.split())
    if text.startswith('"') or text.lower() in enums:
        return f"enum:{_unquote(text)}"
    lowered = text.lower()
    if lowered in _INTEGER:
        return "integer"
    if lowered in ("boolean", "bool"):
        return "boolean"
    if lowered == "uuid":
        return "uuid"
    if _TEXT.fullmatch(lowered):
        return "text"
    return f"other:{lowered}"


def _column_def(item: str, enums: set[str]) -> tuple[str, str] | None:
    match = re.match(r'\s*("(?:[^"]|"")+"|\w+)\s+(.*)', item, re.S)
    if not match or match[1].upper() in _SKIP:
        return None
    rest = match[2].strip()
    end = _TYPE_END.search(" " + rest)
    type_text = (" " + rest)[: end.start()] if end else rest
    return _unquote(match[1]), _kind(type_text.strip(), enums)


@cache
def declared_schema() -> tuple[dict[tuple[str, str], _Table], dict[tuple[str, str], tuple[str, ...]]]:
    """Tables (columns and their kind, partitioned or not) and enum types of every source, from its migrations."""
    tables: dict[tuple[str, str], _Table] = {}
    enum_values: dict[tuple[str, str], tuple[str, ...]] = {}
    for source in SOURCES:
        text = "\n".join(re.sub(r"--[^\n]*", "", p.read_text(encoding="utf-8"))
                         for p in sorted((sql_root() / "migrations" / source).glob("*.sql")))
        for name, values in re.findall(r'CREATE TYPE\s+("?[\w]+"?)\s+AS\s+ENUM\s*\(([^)]*)\)', text, re.I):
            enum_values[(source, _unquote(name))] = tuple(re.findall(r"'((?:[^']|'')*)'", values))
        enums = {t for (s, t) in enum_values if s == source}
        for match in re.finditer(r'CREATE TABLE\s+(?:IF NOT EXISTS\s+)?("(?:[^"]|"")+"|\w+)\s*\(', text, re.I):
            depth, position = 1, match.end()
            while depth and position < len(text):
                depth += {"(": 1, ")": -1}.get(text[position], 0)
                position += 1
            tail = text[position: text.find(";", position)]
            columns = dict(filter(None, (_column_def(i, enums) for i in _split_top(text[match.end(): position - 1]))))
            tables[(source, _unquote(match[1]))] = _Table(columns, "PARTITION BY" in tail.upper())
        for table, column, type_text in re.findall(
                r'ALTER TABLE\s+("?\w+"?)\s+ADD COLUMN\s+(?:IF NOT EXISTS\s+)?("?\w+"?)\s+([^;]*);', text, re.I):
            key = (source, _unquote(table))
            if key in tables:
                name, kind = _column_def(f"{column} {type_text}", enums) or (None, None)
                if name:
                    tables[key] = _Table({**tables[key].columns, name: kind}, tables[key].partitioned)
    return tables, enum_values


def _known_values(source: str, table: str, column: str, kind: str) -> tuple[str, ...] | None:
    """The values a column can hold, when the schema or the data-quality rules say."""
    if kind.startswith("enum:"):
        return declared_schema()[1].get((source, kind[5:]))
    for rule in RULES:
        if (rule.source, rule.table, rule.column, rule.kind) == (source, table, column, "in_set"):
            return rule.values
    return None


# --- reading the file, keeping line numbers ------------------------------------------------------------------

class _Loader(yaml.SafeLoader):
    pass


@dataclass
class _Doc:
    """A composed YAML document: plain values, and per key path its line and its scalar's raw text."""

    lines: dict[tuple, int] = field(default_factory=dict)
    raw: dict[tuple, str] = field(default_factory=dict)
    problems: list[tuple[tuple, str]] = field(default_factory=list)

    def plain(self, node: yaml.Node, path: tuple, loader: yaml.SafeLoader):
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            result: dict = {}
            for key_node, value_node in node.value:
                key = loader.construct_object(key_node) if isinstance(key_node, yaml.ScalarNode) else None
                if not isinstance(key, str):
                    self.lines[path + (str(key),)] = key_node.start_mark.line + 1
                    self.problems.append((path + (str(key),), "keys are names (text)"))
                    continue
                if key in result:
                    self.lines[path + (key,)] = key_node.start_mark.line + 1
                    self.problems.append((path + (key,), "given twice"))
                    continue
                result[key] = self.plain(value_node, path + (key,), loader)
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.plain(item, path + (i,), loader) for i, item in enumerate(node.value)]
        self.raw[path] = node.value
        return loader.construct_object(node)


def _show(path: tuple) -> str:
    shown = ""
    for part in path:
        shown += f"[{part}]" if isinstance(part, int) else (f".{part}" if shown else str(part))
    return shown or "(top level)"


class _Checker:
    """Collects problems as `<file>:<line>: <key path>: <problem>`."""

    def __init__(self, path: Path, doc: _Doc):
        self.path, self.doc, self.problems = path, doc, []

    def where(self, path: tuple) -> str:
        probe = path
        while probe and probe not in self.doc.lines:
            probe = probe[:-1]
        return f"{self.path}:{self.doc.lines.get(probe, 1)}"

    def add(self, path: tuple, problem: str) -> None:
        self.problems.append(f"{self.where(path)}: {_show(path)}: {problem}")

    def mapping(self, value, path: tuple) -> dict | None:
        if isinstance(value, dict):
            return value
        self.add(path, f"must be a mapping of keys to values (got {_describe(value)})")
        return None

    def whole(self, value, path: tuple, low: int, high: int) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(path, f"must be a whole number (got {_describe(value)})")
            return None
        if not low <= value <= high:
            self.add(path, f"must be between {low} and {high} (got {value})")
            return None
        return value

    def boolean(self, value, path: tuple) -> bool | None:
        if isinstance(value, bool):
            return value
        self.add(path, f"must be true or false (got {_describe(value)})")
        return None


def _describe(value) -> str:
    if value is None:
        return "nothing"
    kind = {bool: "true/false", int: "a number", float: "a number", str: "text", list: "a list", dict: "a mapping"}
    return f"{kind.get(type(value), type(value).__name__)} {value!r}" if not isinstance(value, dict | list) \
        else kind[type(value)]


# --- validating and applying ---------------------------------------------------------------------------------

_ENTRY_KEYS = ("keep_days", "enabled", "strategy", "sensitive", "grace_days", "keep_last", "rules")
_SOURCE_KEYS = ("enabled", "purge")


def load_policy(path: str | Path | None) -> Policy:
    """The effective policy: the built-in catalog, overridden by the file at `path` when given. Raises
    PolicyError with every problem of the file."""
    if path is None:
        return Policy()
    path = Path(path).expanduser().absolute()
    if path.is_dir():
        raise PolicyError([f"{path}: the policy file ({POLICY_VARIABLE}) is a directory"])
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise PolicyError([f"{path}: cannot read the policy file ({POLICY_VARIABLE}): {reason}"]) from None
    loader = _Loader(text)
    doc = _Doc()
    try:
        node = loader.get_single_node()
        data = doc.plain(node, (), loader) if node is not None else {}
    except RecursionError:
        raise PolicyError([f"{path}: does not parse as YAML: nested too deep (a recursive alias?)"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise PolicyError([f"{at}: does not parse as YAML: {problem}"]) from None
    finally:
        loader.dispose()
    check = _Checker(path, doc)
    for problem_path, problem in doc.problems:
        check.add(problem_path, problem)
    return _apply(path, check, data)


def _apply(path: Path, check: _Checker, data) -> Policy:
    origins: dict[str, str] = {}

    def mark(key: str, at: tuple) -> None:
        origins[key] = check.where(at)

    if data is None:
        data = {}
    top = check.mapping(data, ())
    sources = {s: SourcePolicy() for s in SOURCES}
    operations = Operations()
    overrides: dict[str, dict] = {}
    if top is not None:
        for key, value in top.items():
            if key == "operations":
                operations = _operations(check, value, mark)
            elif key in SOURCES:
                sources[key] = _source(check, key, value, overrides, mark)
            else:
                check.add((key,), f"unknown source; known: {', '.join(SOURCES)} (and operations)")
    entries, disabled = [], set()
    for entry in CATALOG:
        changes = overrides.get(entry.key, {})
        if changes.pop("enabled", True) is False:
            disabled.add(entry.key)
        entries.append(_entry(check, entry, changes, operations, origins))
    policy = Policy(path=path, entries=tuple(entries), disabled=frozenset(disabled), sources=sources,
                    operations=operations, origins=origins)
    if not check.problems:
        _check_order(check, policy)
    if check.problems:
        raise PolicyError(check.problems)
    return policy


def _operations(check: _Checker, value, mark) -> Operations:
    body = check.mapping(value, ("operations",))
    if body is None:
        return Operations()
    changes = {}
    for key, item in body.items():
        at = ("operations", key)
        knob = KNOB_BY_KEY.get(key)
        if knob is None:
            check.add(at, f"unknown operations setting; known: {', '.join(KNOB_BY_KEY)}")
            continue
        raw = check.doc.raw.get(at)  # raw text: YAML 1.1 reads an unquoted 00:30 as the number 30
        try:
            if isinstance(item, list | dict) or item is None:
                raise ValueError(f"must be a single value (got {_describe(item)})")
            changes[knob.name] = parse_knob(knob, item if knob.kind == "whole" else raw)
        except ValueError as exc:
            check.add(at, str(exc))
            continue
        mark(f"operations.{key}", at)
    return replace(Operations(), **changes)


def _source(check: _Checker, source: str, value, overrides: dict, mark) -> SourcePolicy:
    body = check.mapping(value, (source,))
    if body is None:
        return SourcePolicy()
    switches = {}
    catalog = [e for e in CATALOG if e.source == source]
    for key, item in body.items():
        at = (source, key)
        if key in _SOURCE_KEYS:
            flag = check.boolean(item, at)
            if flag is not None:
                switches[key] = flag
                mark(f"{source}.{key}", at)
            continue
        named = [e for e in catalog if e.entry_name == key] or [e for e in catalog if e.table == key]
        if len(named) != 1:
            known = ", ".join(e.entry_name for e in catalog)
            problem = (f"names {len(named)} entries ({', '.join(e.entry_name for e in named)}): use one of them"
                       if named else f"unknown table or entry of {source}; known: {known} (and enabled, purge)")
            check.add(at, problem)
            continue
        overrides[named[0].key] = _entry_changes(check, named[0], item, at, mark)
    return SourcePolicy(**switches)


def _entry_changes(check: _Checker, entry: TableEntry, value, at: tuple, mark) -> dict:
    body = check.mapping(value, at)
    if body is None:
        return {}
    table = declared_schema()[0].get((entry.source, entry.table))
    columns = table.columns if table else {}
    changes: dict = {}
    for key, item in body.items():
        here = at + (key,)
        if key == "keep_days":
            found = check.whole(item, here, 1, MAX_KEEP_DAYS)
        elif key in ("enabled",):
            found = check.boolean(item, here)
        elif key == "strategy":
            found = item if item in STRATEGIES else None
            if found is None:
                check.add(here, f"must be one of {', '.join(STRATEGIES)} (got {_describe(item)})")
            elif found == "drop_partition" and table and not table.partitioned:
                check.add(here, f"{entry.table} is not a partitioned table: use archive")
                found = None
        elif key == "grace_days":
            found = check.whole(item, here, 0, 3_650)
        elif key == "keep_last":
            if (entry.source, entry.table) != ("forge", JOB_TABLE):
                check.add(here, "keep_last (the newest N jobs of each job template) applies to forge.main_job only")
                found = None
            else:
                found = check.whole(item, here, 1, 1_000_000)
        elif key == "sensitive":
            found = _sensitive(check, entry, item, here, columns)
        elif key == "rules":
            found = _rules(check, entry, item, here, columns)
        else:
            check.add(here, f"unknown setting; an entry takes {', '.join(_ENTRY_KEYS)}")
            continue
        if found is not None:
            changes[key] = found
            mark(f"{entry.key}.{key}", here)
            for i in range(len(found) if key == "rules" else 0):
                mark(f"{entry.key}.rules[{i}]", here + (i,))
    return changes


def _names(check: _Checker, item, here: tuple) -> list[str] | None:
    values = item if isinstance(item, list) else [item]
    if not values or not all(isinstance(v, str) and v for v in values):
        check.add(here, f"must be a column name or a list of them (got {_describe(item)})")
        return None
    return values


def _sensitive(check: _Checker, entry: TableEntry, item, here: tuple, columns: Mapping[str, str]):
    names = _names(check, item, here)
    if names is None:
        return None
    needed = {entry.time_column, *entry.key_columns, entry.slice_column, entry.tenant_column}
    readers = {c: r.name for r in rules_for(entry.source, entry.table) for c in (r.column, r.other, r.time_column) if c}
    good = []
    for i, name in enumerate(names):
        at = here + (i,) if isinstance(item, list) else here
        if columns and name not in columns:
            check.add(at, f"{entry.table} has no column {name!r}")
        elif name in needed:
            check.add(at, f"{name} identifies or dates the rows of {entry.key}: it cannot be left out of the archive")
        elif name in readers:
            check.add(at, f"{name} is read by the data-quality check {readers[name]}: a sensitive column is "
                          "not readable by forge_reader")
        else:
            good.append(name)
    return tuple(good) if len(good) == len(names) else None


def _rules(check: _Checker, entry: TableEntry, item, here: tuple, columns: Mapping[str, str]):
    if not isinstance(item, list):
        check.add(here, f"must be a list of rules like {{where: {{column: [values]}}, keep_days: N}} (got {_describe(item)})")
        return None
    rules, failed = [], False
    for i, raw_rule in enumerate(item):
        at = here + (i,)
        body = check.mapping(raw_rule, at)
        if body is None:
            failed = True
            continue
        unknown = sorted(set(body) - {"where", "keep_days"})
        for key in unknown:
            check.add(at + (key,), "unknown rule setting; a rule takes where and keep_days")
        keep = check.whole(body["keep_days"], at + ("keep_days",), 1, MAX_KEEP_DAYS) if "keep_days" in body else None
        if "keep_days" not in body:
            check.add(at, "a rule needs keep_days")
        where = _where(check, entry, body.get("where"), at + ("where",), columns) if "where" in body else None
        if "where" not in body:
            check.add(at, "a rule needs where (a mapping of columns to values)")
        if unknown or keep is None or where is None:
            failed = True
            continue
        rules.append(RetentionRule(where=where, keep_days=keep))
    return None if failed else tuple(rules)


def _where(check: _Checker, entry: TableEntry, value, here: tuple, columns: Mapping[str, str]):
    body = check.mapping(value, here)
    if body is None:
        return None
    if not body:
        check.add(here, "names no column: a rule without a condition would replace keep_days; set keep_days instead")
        return None
    link = job_link(entry.source, entry.table)
    predicates, failed = [], False
    sensitive = set(entry.sensitive_columns)
    for name, item in body.items():
        at = here + (name,)
        on_job = link is not False and name in JOB_PREDICATES
        if not on_job and name not in columns:
            extra = f"; on Forge's job tables also {', '.join(JOB_PREDICATES)}" if entry.source == "forge" else ""
            check.add(at, f"unknown column of {entry.table}{extra}")
            failed = True
            continue
        if not on_job and name in sensitive:
            check.add(at, f"{name} is sensitive: a rule cannot read it")
            failed = True
            continue
        values = _values(check, entry, name, item, at, "text" if on_job else columns[name], on_job)
        if values is None:
            failed = True
            continue
        predicates.append(Predicate(column=name, values=values, job=on_job))
    return None if failed else tuple(predicates)


def _values(check: _Checker, entry: TableEntry, name: str, item, at: tuple, kind: str, on_job: bool):
    items = item if isinstance(item, list) else [item]
    if not items:
        check.add(at, "an empty list matches nothing")
        return None
    raws = [check.doc.raw.get(at + (i,) if isinstance(item, list) else at) for i in range(len(items))]
    values, failed = [], False
    for value, raw in zip(items, raws, strict=True):
        shown = _describe(value)
        if value is None:
            values.append(None)
        elif isinstance(value, list | dict):
            check.add(at, f"values are single values or a flat list of them (got {shown} inside)")
            failed = True
        elif kind == "integer":
            if isinstance(value, bool) or not isinstance(value, int):
                check.add(at, f"{name} is an integer column: {shown} is not a whole number")
                failed = True
            else:
                values.append(str(value))
        elif kind == "boolean":
            if not isinstance(value, bool):
                check.add(at, f"{name} is a boolean column: use true or false (got {shown})")
                failed = True
            else:
                values.append("true" if value else "false")
        elif kind in ("text", "uuid") or kind.startswith("enum:"):
            text = raw if raw is not None else str(value)  # as written: an unquoted 2024 or yes is that text
            if kind == "uuid":
                try:
                    uuid.UUID(text)
                except ValueError:
                    check.add(at, f"{name} is a uuid column: {text!r} is not a UUID")
                    failed = True
                    continue
            values.append(text)
        else:
            check.add(at, f"{name} is of type {kind.split(':', 1)[1]}: rules compare text, integer, boolean, enum "
                          "and uuid columns only")
            return None
    if failed:
        return None
    known = _job_values(name) if on_job else _known_values(entry.source, entry.table, name, kind)
    if known is not None:
        unknown = [v for v in values if v is not None and v not in known]
        if unknown:
            check.add(at, f"unknown value(s) {', '.join(map(repr, unknown))} of {name}; known: {', '.join(known)}")
            return None
    if not on_job and name == entry.slice_column:
        outside = [v for v in values if v not in entry.slice_values]
        if outside:
            check.add(at, f"{entry.key} archives only rows with {name} in ({', '.join(entry.slice_values)}): "
                          f"{', '.join(map(repr, outside))} never reach it")
            return None
    scope = ("forge", JOB_TABLE, name) if on_job else (entry.source, entry.table, name)
    unfinished = [v for v in values if v in unfinished_values(*scope)]  # the catalog's list, no copy here
    if unfinished:
        check.add(at, f"would archive unfinished work ({', '.join(unfinished)}): rows still in progress are never "
                      "given a retention of their own")
        return None
    return tuple(dict.fromkeys(values))


def _job_values(name: str) -> tuple[str, ...] | None:
    if name == "status":
        return _known_values("forge", JOB_TABLE, "status", "text")
    return LAUNCH_TYPES if name == "launch_type" else None  # templates and organizations: any name


def _entry(check: _Checker, entry: TableEntry, changes: dict, operations: Operations, origins: dict) -> TableEntry:
    if "grace_days" not in changes and "operations.grace_days" in origins:
        changes["grace_days"] = operations.grace_days
        origins[f"{entry.key}.grace_days"] = origins["operations.grace_days"]
    if "sensitive" in changes:
        changes["extra_sensitive"] = changes.pop("sensitive")
    try:
        return replace(entry, **changes) if changes else entry
    except CatalogError as exc:  # defensive: the checks above already refuse what TableEntry refuses
        check.add((entry.source, entry.entry_name), str(exc))
        return entry


_OTHER = "\0other"


def _dimension(entry: TableEntry, predicate: Predicate) -> tuple[str, str]:
    return ("job", predicate.column) if predicate.job else (entry.table, predicate.column)


def _keep_for(entry: TableEntry, row: Mapping[tuple[str, str], str | None]) -> int:
    for rule in entry.rules:
        if all(row.get(_dimension(entry, p), _OTHER) in p.values for p in rule.where):
            return rule.keep_days
    return entry.keep_days


def _check_order(check: _Checker, policy: Policy) -> None:
    """An entry archived after others (`after`: their rows reference its rows) must stay on while they are, and
    keep every row at least as long as they may keep the rows referencing it: else those days could never
    be purged (the engine refuses to delete rows that are still referenced). main_job likewise keeps each job
    as long as rules on the job keep its events, which would otherwise lose the job their rule reads."""
    by_key = {e.key: e for e in policy.entries}
    for parent in policy.entries:
        if not policy.enabled(parent):
            continue
        # rules on the job of an event need the job to be there as long as its event is
        by_job = [e.entry_name for e in policy.entries if job_link(e.source, e.table) and e.table != JOB_TABLE
                  and any(p.job for r in e.rules for p in r.where)] if parent.table == JOB_TABLE else []
        for name in dict.fromkeys([*parent.after, *by_job]):
            child = by_key[f"{parent.source}.{name}"]
            at = (child.source, child.entry_name)
            if not policy.enabled(child):
                if name in parent.after:
                    check.add(at + ("enabled",), f"{parent.key} references its rows and is archived after it: "
                                                 f"switch {parent.key} off too, or keep this one on")
                continue
            dims: dict[tuple[str, str], set] = {}
            for entry in (parent, child):
                for rule in entry.rules:
                    for p in rule.where:
                        dims.setdefault(_dimension(entry, p), set()).update(p.values)
            choices = [[*sorted(v, key=str), _OTHER] for v in dims.values()]
            if sum(len(c) for c in choices) > 60 or len(choices) > 8:  # too many to try: the simple bound
                rows = [dict()] if max(child.keeps) <= min(parent.keeps) else [None]
            else:
                rows = [dict(zip(dims, combo, strict=True)) for combo in itertools.product(*choices)]
            for row in rows:
                if row is not None and _keep_for(child, row) <= _keep_for(parent, row):
                    continue
                example = ""
                if row is not None:
                    shown = ", ".join(f"{'job.' if scope == 'job' else ''}{column}="
                                      f"{'any other value' if value == _OTHER else value}"
                                      for (scope, column), value in row.items())
                    example = (f" (rows{' with ' + shown if shown else ''}: {_keep_for(child, row)} days here, "
                               f"{_keep_for(parent, row)} in {parent.key})")
                check.add(at, f"keeps rows longer than {parent.key} keeps the rows they reference{example}; "
                              f"{parent.key} is archived after this entry: give it a rule at least as long")
                break


# --- the process's policy -----------------------------------------------------------------------------------

def policy_path() -> Path | None:
    """The file FORGE_POLICY names, or None."""
    value = os.environ.get(POLICY_VARIABLE)
    return Path(value).expanduser().absolute() if value else None


@cache
def _cached(path: Path | None, stamp: tuple[int, int] | None) -> Policy:
    return load_policy(path)


def current_policy() -> Policy:
    """The policy named by FORGE_POLICY (the built-in catalog when unset), loaded once per file version."""
    path = policy_path()
    try:
        stat = path.stat() if path else None
    except OSError:
        stat = None
    return _cached(path, (stat.st_mtime_ns, stat.st_size) if stat else None)


def effective_entries(source: str | None = None, name: str | None = None,
                      include_disabled: bool = False) -> list[TableEntry]:
    """The current policy's entries (see Policy.effective_entries)."""
    return current_policy().effective_entries(source, name, include_disabled)


# --- showing it ---------------------------------------------------------------------------------------------

def describe_policy(policy: Policy, settings_text: str | None = None) -> str:
    """The effective policy as text: every value and where it came from (built-in, or file:line). The
    operational knobs and purge switches are `settings_text` when given (the environment's part included:
    forge_assets/effective.py), else the file's and the built-in ones."""
    lines = ["Retention policy: the built-in catalog (forge_assets/retention/catalog.py)"
             + (f" with {policy.path} ({POLICY_VARIABLE})" if policy.path else f"; {POLICY_VARIABLE} is not set"),
             ""]
    if settings_text is None:
        lines.append("operations (policy file, else built-in)")
        for knob in KNOBS:
            lines.append(f"  {knob.key:26s} {show_knob(knob, getattr(policy.operations, knob.name)):40s} "
                         f"{policy.origin('operations.' + knob.key)}")
    else:
        lines += settings_text.rstrip("\n").splitlines()
    for source in SOURCES:
        switches = policy.sources[source]
        purge = "not set" if switches.purge is None else ("on" if switches.purge else "off")
        lines += ["", f"{source}: {'enabled' if switches.enabled else 'DISABLED'} "
                      f"({policy.origin(source + '.enabled')}), purge in the file {purge} "
                      f"({policy.origin(source + '.purge')})"]
        for entry in (e for e in policy.entries if e.source == source):
            state = "on" if policy.enabled(entry) else "off"
            lines.append(f"  {entry.key} [{state}]")
            values = [
                ("enabled", "yes" if entry.key not in policy.disabled else "no"),
                ("keep_days", str(entry.keep_days)),
                ("strategy", entry.strategy),
                ("sensitive", ", ".join(entry.sensitive_columns) or "-"),
                ("grace_days", str(entry.grace_days)),
                ("keep_last", f"newest {entry.keep_last} jobs of each template" if entry.keep_last else "-"),
            ]
            for name, shown in values:
                lines.append(f"    {name:12s} {shown:52s} {policy.origin(f'{entry.key}.{name}')}")
            for i, rule in enumerate(entry.rules, 1):
                lines.append(f"    {'rule ' + str(i):12s} {rule.describe():52s} "
                             f"{policy.origin(f'{entry.key}.rules[{i - 1}]')}")
    return "\n".join(lines) + "\n"

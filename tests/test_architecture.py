"""The layers the README promises: domain packages that import no Dagster, and no import cycle anywhere."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "forge_assets"

# The Dagster layer: everything else in forge_assets must import (and run) without Dagster installed.
DAGSTER_LAYER = ("assets", "jobs", "sensors", "resources", "definitions", "instance", "demo")


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _dagster_free(module: str) -> bool:
    return module.split(".")[1] not in DAGSTER_LAYER if "." in module else True


def test_domain_modules_import_without_dagster_or_forge_environment():
    """Every module outside the Dagster layer imports with `dagster` blocked and no FORGE_* variable set."""
    modules = [m for m in _modules() if _dagster_free(m)]
    assert {"forge_assets.retention.engine", "forge_assets.rollups.registry", "forge_assets.quality.evaluate",
            "forge_assets.retention.catalog", "forge_assets.cli", "forge_assets.docs"} <= set(modules)
    script = (
        "import importlib, sys\n"
        "for name in ('dagster', 'dagster_postgres', 'dagster_webserver'):\n"
        "    sys.modules[name] = None\n"
        f"for module in {modules!r}:\n"
        "    importlib.import_module(module)\n"
        "from forge_assets.docs import checks_reference, retention_reference, rollup_reference\n"
        "assert checks_reference() and retention_reference() and rollup_reference()\n"
        "print('imported', len(sys.modules))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORGE_") and k != "DAGSTER_HOME"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300,
                          cwd=PACKAGE.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("imported")


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """forge_assets modules that `module` imports anywhere in its body (lazy imports inside functions too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module if node.level == 0 else ".".join(module.split(".")[: -node.level] + [node.module])
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module and name != "forge_assets":
                found.add(name)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return components


def test_no_import_cycles_inside_forge_assets():
    modules = _modules()
    graph = {name: _imports(name, path, set(modules)) for name, path in modules.items()}
    assert graph["forge_assets.demo"], "the import graph was read"
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_engine_leaves_pandas_unimported_after_skip_pandas_probe():
    """`forge-assets archive` and `restore` keep pyarrow from importing pandas (~30 MB of peak RSS): after
    `skip_pandas_probe`, hashing and binary-COPY encoding of every column kind import no pandas, and pyarrow
    still gives pandas to a caller that asks for it."""
    script = (
        "import sys\n"
        "import pyarrow as pa\n"
        "from forge_assets.retention.stream import skip_pandas_probe\n"
        "skip_pandas_probe()\n"
        "from forge_assets.retention import content, load\n"
        "kinds = {'text': pa.array(['x', None]), 'bigint': pa.array([1, None]),\n"
        "         'double precision': pa.array([1.5, None]), 'boolean': pa.array([True, None]),\n"
        "         'timestamp with time zone': pa.array([0, None], pa.timestamp('us', tz='UTC'))}\n"
        "for pg_type, column in kinds.items():\n"
        "    content.column_hashes(column, pg_type, 1)\n"
        "assert len(load._binary_rows(pa.RecordBatch.from_arrays(list(kinds.values()), list(kinds)))) > 0\n"
        "assert 'pandas' not in sys.modules, 'pandas was imported'\n"
        "assert pa.table({'a': [1]}).to_pandas().shape == (1, 1)\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=PACKAGE.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "ok"

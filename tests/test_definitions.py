"""The Definitions object loads, validates, and every asset carries what the UI needs."""

import subprocess
import sys
from pathlib import Path

from dagster import AssetSpec, Definitions

from forge_assets.definitions import defs
from forge_assets.rollups.registry import ROLLUPS

ROOT = Path(__file__).resolve().parents[1]


def test_definitions_validate():
    Definitions.validate_loadable(defs)


def test_every_asset_has_group_kinds_and_description():
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.group_name, key
        assert node.kinds, key
        assert node.description, key


def test_rollups_depend_on_the_tables_they_read():
    graph = defs.resolve_asset_graph()
    for spec in ROLLUPS:
        node = next(n for n in graph.asset_nodes if n.key.path == [spec.name])
        assert {tuple(k.path) for k in node.parent_keys} == {(spec.source, t) for t in spec.reads}, spec.name
        assert node.partitions_def is not None and node.backfill_policy is not None


def test_secrets_are_not_in_resource_config(monkeypatch):
    """A URL given through the environment reaches the resource as an EnvVar (shown in the UI by name);
    Dagster resolves the value only inside the run."""
    monkeypatch.setenv("FORGE_PULSE_URL", "postgresql://reader:hunter2@pulse.internal/pulse")
    from forge_assets.conninfo import describe
    from forge_assets.resources.postgres import PostgresResource

    configured = PostgresResource.from_environment()
    assert configured.reader_urls == {"pulse": "FORGE_PULSE_URL"}
    assert "hunter2" not in repr(configured)
    with configured.process_config_and_initialize_cm() as resource:
        assert describe(resource.conninfo("pulse")) == "reader@pulse.internal/pulse"


def test_workspace_and_dg_load_the_code_location():
    """`dg check defs` (the dg CLI, configured in pyproject's [tool.dg]) loads the definitions."""
    dg = Path(sys.executable).with_name("dg")
    result = subprocess.run([str(dg), "check", "defs"], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr


def test_source_tables_are_external_assets():
    specs = [a for a in defs.assets if isinstance(a, AssetSpec)]
    assert specs and all(s.group_name.endswith("_source") for s in specs)


def test_generated_references_are_current():
    from forge_assets.docs import checks_reference, retention_reference, rollup_reference

    for name, text in (("rollups.md", rollup_reference()), ("retention.md", retention_reference()),
                       ("checks.md", checks_reference())):
        assert (ROOT / "docs" / name).read_text(encoding="utf-8") == text, f"docs/{name} is stale: run forge-assets docs"

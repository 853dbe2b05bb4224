"""Hostile and malformed input: each rejected with one clear message, and nothing changed by it."""

from dataclasses import replace
from datetime import timedelta

import pytest
from dagster import DagsterInstance, materialize
from helpers import NOW, conn_to, content

from forge_assets.assets.archive import build_archive_asset
from forge_assets.cli import main
from forge_assets.lake import LakePathError, lake_path
from forge_assets.resources.parquet_lake import ParquetLake
from forge_assets.resources.postgres import PostgresResource
from forge_assets.retention.catalog import CatalogError, entries
from forge_assets.retention.engine import archive_day

EVENTS = entries("orchestry", "events")[0]
OLD_DAY = (NOW - timedelta(days=60)).date()


def state(settings):
    """What any of these inputs could change: the events table, the ledger, the lake."""
    with conn_to(settings, "orchestry") as conn:
        rows = content(conn, EVENTS)
        ledger = conn.execute("SELECT count(*) FROM forge_retention.archive_ledger").fetchone()[0]
    lake = sorted(str(p) for p in settings.lake_root.rglob("*")) if settings.lake_root.exists() else []
    return rows, ledger, lake


HOSTILE_TABLES = ["events; DROP TABLE events; --", 'events"', "events'", "../../etc/passwd", "events/../metrics",
                  "", "Events"]


@pytest.mark.parametrize(
    "args",
    [
        *(["archive", "--source", "orchestry", "--table", t, "--day", "2026-01-01"] for t in HOSTILE_TABLES),
        *(["restore", "--source", "orchestry", "--table", t, "--day", "2026-01-01"] for t in HOSTILE_TABLES[:4]),
        ["archive", "--source", "orchestry; DROP DATABASE orchestry", "--day", "2026-01-01"],
        ["archive", "--source", "../orchestry", "--day", "2026-01-01"],
        ["archive", "--source", "orchestry", "--day", "2026-01-01'; DROP TABLE events; --"],
        ["archive", "--source", "orchestry", "--day", "../2026-01-01"],
        ["archive", "--source", "orchestry", "--day", "2026-1-1"],
        ["archive", "--source", "orchestry", "--until", "2026-13-01"],
        ["archive", "--source", "orchestry", "--day", "2026-01-01", "--until", "2026-01-02"],
        ["restore", "--source", "orchestry", "--table", "events", "--day", "20260101"],
    ],
    ids=lambda args: " ".join(args)[:60],
)
def test_cli_rejects_hostile_arguments_with_one_message(seeded, settings, args, capsys):
    """In-process `forge-assets` (tests/test_cli.py runs the installed command the same way end to end)."""
    before = state(settings)
    try:
        code = main(args)
    except SystemExit as exit:  # argparse: usage, then one error line
        code = exit.code
    out, err = capsys.readouterr()
    errors = [line for line in err.splitlines() if "error:" in line]
    assert code == 2 and len(errors) == 1 and not out, err
    assert any(word in errors[0] for word in ("no table or entry", "invalid choice", "malformed day",
                                                 "not allowed with", "no archived file")), errors[0]
    assert state(settings) == before


@pytest.mark.parametrize("key", ["2026-02-30", "../../etc", "2026-01-01'; DROP TABLE events; --", "2099-01-01"])
def test_malformed_or_unknown_partition_keys_are_refused(seeded, settings, tmp_path, key):
    resources = {"postgres": PostgresResource(home=str(settings.home)), "lake": ParquetLake(root=str(tmp_path))}
    before = state(settings)
    with pytest.raises(Exception, match="partition") as refused:
        materialize([build_archive_asset(EVENTS)], partition_key=key, resources=resources,
                    instance=DagsterInstance.ephemeral())
    assert key in str(refused.value) and "\n" not in str(refused.value).strip()
    assert state(settings) == before and not any(tmp_path.iterdir())


@pytest.mark.parametrize("keep_days", [0, -1, -365])
def test_zero_or_negative_keep_days_are_rejected(keep_days):
    with pytest.raises(CatalogError, match=f"keep_days must be at least 1 \\(got {keep_days}\\)"):
        replace(EVENTS, keep_days=keep_days)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"table": 'events"; DROP TABLE events; --'}, "does not exist"),
        ({"time_column": "timestamp; DELETE FROM events"}, "missing from 'events'"),
        ({"key_columns": ("id) OR (true",)}, "missing from 'events'"),
        ({"name": "../../../outside"}, "invalid lake path component"),
        ({"source": "orchestry/../forge"}, "unknown source"),
    ],
)
def test_hostile_identifiers_in_the_catalog_change_nothing(seeded, settings, change, expected):
    before = state(settings)
    with pytest.raises((CatalogError, LakePathError, ValueError), match=expected):
        entry = replace(EVENTS, **change)
        with conn_to(settings, "orchestry") as conn:
            archive_day(conn, entry, OLD_DAY, settings.lake_root, NOW)
    assert state(settings) == before


def test_lake_paths_never_escape_the_root(tmp_path):
    root = tmp_path / "lake"
    (root / "archive").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "archive" / "orchestry").symlink_to(outside)
    for parts, expected in [(("..", "x"), "invalid lake path component '..'"),
                            (("/etc",), "invalid lake path component '/etc'"),
                            (("a/../../b",), "invalid lake path component"),
                            (("archive", "orchestry", "events"), "is outside the lake root")]:
        with pytest.raises(LakePathError, match=expected):
            lake_path(root, *parts)


def test_archive_refuses_a_day_directory_that_leads_outside_the_lake(seeded, settings, tmp_path):
    """A symlink planted in the lake: the run stops before it deletes or writes anything, there or here."""
    lake = tmp_path / "lake"
    (lake / "archive" / "orchestry").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (lake / "archive" / "orchestry" / "events").symlink_to(outside)
    before = state(settings)
    with conn_to(settings, "orchestry") as conn, pytest.raises(LakePathError, match="outside the lake root"):
        archive_day(conn, EVENTS, OLD_DAY, lake, NOW)
    assert state(settings) == before and not any(outside.iterdir())

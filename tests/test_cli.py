"""The forge-assets command: idempotent migrate, one clear line for bad input, nothing changed by it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

CLI = str(Path(sys.executable).with_name("forge-assets"))


def run(*args, **env):
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=300, env={**os.environ, **env})


def test_migrate_twice_is_a_no_op(settings):
    first = run("migrate")
    second = run("migrate")
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert second.stdout.count("up to date") == 5


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["migrate"], {"FORGE_PG_URL": "http://db/x"}, "FORGE_PG_URL must be a PostgreSQL URL"),
        (["migrate"], {"FORGE_ORCHESTRY_URL": "postgresql://nobody@127.0.0.1:1/none"}, "cannot connect to nobody@127.0.0.1:1/none"),
        (["seed", "--source", "pulse"], {}, "already holds data"),
    ],
)
def test_bad_input_is_one_clear_line(seeded, args, env, expected):
    result = run(*args, **env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["seed", "--days", "0"], "must be between 1 and 3650"),
        (["seed", "--scale", "-1"], "must be above 0"),
        (["seed", "--anchor", "yesterday"], "not an ISO 8601 date-time"),
        (["migrate", "--source", "forge; DROP DATABASE forge"], "invalid choice"),
    ],
)
def test_bad_arguments_are_rejected_before_anything_runs(args, expected):
    result = run(*args)
    assert result.returncode == 2 and expected in result.stderr


def test_password_never_printed(settings):
    result = run("migrate", FORGE_GOFORGE_URL="postgresql://admin:hunter2@127.0.0.1:1/goforge")
    assert result.returncode == 2
    assert "hunter2" not in result.stdout + result.stderr
    assert "admin@127.0.0.1:1/goforge" in result.stderr


def test_purge_of_a_volatile_table_and_its_refusals(seeded, connect):
    table = "main_webauthnregistrationchallenge"
    with connect("forge") as conn:
        before = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    dry = run("archive", "--source", "forge", "--table", table, "--until", "2099-01-01", "--dry-run")
    assert dry.returncode == 0 and "would move" in dry.stdout
    done = run("archive", "--source", "forge", "--table", table, "--until", "2099-01-01")
    assert done.returncode == 0, done.stderr
    moved = int(done.stdout.split("moved")[1].split("rows")[0].replace(",", ""))
    with connect("forge") as conn:
        after = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    assert moved > 0 and after == before - moved, "only overdue challenges (older than a day) are purged"
    assert after > 0
    nothing = run("restore", "--source", "forge", "--table", table, "--day", "2026-01-01")
    assert nothing.returncode == 2 and "no archived file to restore" in nothing.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["archive", "--source", "forge", "--table", "../../etc", "--day", "2026-01-01"], "no table or entry '../../etc'"),
        (["archive", "--source", "forge", "--day", "2026-02-30"], "malformed day '2026-02-30'"),
        (["archive", "--source", "forge", "--day", "yesterday"], "malformed day 'yesterday'"),
        (["archive", "--source", "pulse", "--table", "telemetry", "--day", "2999-01-01"], "is not overdue"),
    ],
)
def test_archive_rejects_bad_input(seeded, args, expected):
    result = run(*args)
    assert result.returncode == 2 and expected in result.stderr, result.stderr

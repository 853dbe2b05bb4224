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

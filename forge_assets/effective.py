"""The effective settings: the one place where the environment, the operator's policy file (FORGE_POLICY) and
the built-in defaults combine, with where each value came from. For every operational knob and for purging,
the first of these that says something wins:

1. the environment variable (FORGE_SENSOR_MAX_RUNS, ... — see forge_assets/operations.py — and FORGE_PURGE);
2. the policy file (`operations:`, and a source's `purge: true|false`);
3. the built-in default (purging: on for the embedded demo's own databases, off for a database of yours).

config.py (the environment) and retention/policy.py (the file) do not import each other; this module sees both.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from forge_assets.config import SOURCES, ConfigError, Settings
from forge_assets.operations import KNOBS, Operations, environment_operations, load_operations, show_knob
from forge_assets.retention.policy import BUILT_IN, Policy, current_policy

ENVIRONMENT = "environment"


@dataclass(frozen=True)
class Setting:
    """One effective value, shown as text, and where it came from (`FORGE_X (environment)`, `file:line`,
    `built-in`)."""

    name: str
    shown: str
    origin: str


def effective_operations(environ: Mapping[str, str] | None = None, policy: Policy | None = None) -> Operations:
    """Every knob: the environment's value, else the policy file's, else the built-in default."""
    return load_operations(environ, base=(policy or current_policy()).operations)


def operation_settings(environ: Mapping[str, str] | None = None, policy: Policy | None = None) -> list[Setting]:
    """Every knob's effective value and its origin, in the order of the knob table."""
    policy = policy or current_policy()
    from_environment = environment_operations(environ)
    effective = load_operations(environ, base=policy.operations)
    return [Setting(knob.key, show_knob(knob, getattr(effective, knob.name)),
                    f"{knob.variable} ({ENVIRONMENT})" if knob.name in from_environment
                    else policy.origin(f"operations.{knob.key}"))
            for knob in KNOBS]


def purge_setting(settings: Settings, source: str, policy: Policy | None = None) -> tuple[bool, str]:
    """Whether archive runs may purge `source`, and why: FORGE_PURGE when set, else the policy file's
    `<source>.purge`, else the default (on for the embedded demo's own databases, off otherwise)."""
    policy = policy or current_policy()
    if source not in settings.sources:
        return False, "not configured (FORGE_SOURCES or its logins)"
    if settings.purge_explicit:
        return source in settings.purge_sources, f"FORGE_PURGE ({ENVIRONMENT})"
    switch = policy.sources[source].purge
    if switch is not None:
        return switch, policy.origin(f"{source}.purge")
    default = "on: the embedded demo's database" if source in settings.purge_sources else \
        "off until turned on: not the embedded demo's database"
    return source in settings.purge_sources, f"{BUILT_IN} ({default})"


def purges(settings: Settings, source: str, policy: Policy | None = None) -> bool:
    """Whether archive runs may purge `source` (see purge_setting)."""
    return purge_setting(settings, source, policy)[0]


def purge_sources(settings: Settings, policy: Policy | None = None) -> tuple[str, ...]:
    """The configured sources archive runs may purge."""
    return tuple(s for s in settings.sources if purges(settings, s, policy))


def require_purge(settings: Settings, source: str, policy: Policy | None = None) -> None:
    """Raise ConfigError unless purging is on for `source`."""
    on, origin = purge_setting(settings, source, policy)
    if not on:
        raise ConfigError(
            f"purging is off for {source} ({origin}). See the plan with `forge-assets archive --source {source} "
            f"--until <day> --dry-run`, then set FORGE_PURGE={source} (or all), or `purge: true` under {source} in "
            "the policy file; nothing was archived or deleted")


def describe_settings(settings: Settings, policy: Policy | None = None) -> str:
    """The knobs and the purge switches as `forge-assets policy` prints them before the retention entries."""
    policy = policy or current_policy()
    lines = ["operations (environment variable, else policy file, else built-in)"]
    lines += [f"  {s.name:26s} {s.shown:40s} {s.origin}" for s in operation_settings(os.environ, policy)]
    lines += ["", "purging (FORGE_PURGE, else the policy file's <source>.purge, else built-in)"]
    for source in SOURCES:
        on, origin = purge_setting(settings, source, policy)
        lines.append(f"  {source:26s} {'on' if on else 'off':40s} {origin}")
    return "\n".join(lines) + "\n"

"""Configuration from environment variables, validated once, with one clear error line per bad value."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

SOURCES: tuple[str, ...] = ("forge", "goforge", "orchestry", "pulse", "openorchestrator")
"""The source systems, each with its own database (named after it by default)."""

DEFAULT_START_DATE = "2025-01-01"
# Written by `forge-assets demo` (its first seeded day); read when FORGE_START_DATE is not set.
START_DATE_FILE = "start_date"
_URL_SCHEMES = ("postgresql", "postgres")
_DB_PREFIX_PATTERN = re.compile(r"[a-z_][a-z0-9_]{0,30}")
_KNOWN_URL_VARIABLES = {"FORGE_PG_URL", *(f"FORGE_{source.upper()}_URL" for source in SOURCES)}


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the variable and what is expected."""


@dataclass(frozen=True)
class Settings:
    """Everything forge_assets reads from the environment."""

    home: Path
    lake_root: Path
    server_url: str | None = None
    source_urls: Mapping[str, str] = field(default_factory=dict)
    database_prefix: str = ""
    start_date: str = DEFAULT_START_DATE

    @property
    def pgdata(self) -> Path:
        """Data directory of the embedded PostgreSQL server."""
        return self.home / "pgdata"

    @property
    def dagster_home(self) -> Path:
        """DAGSTER_HOME used by `forge-assets dev` and `demo`."""
        return self.home / "dagster"

    @property
    def embedded(self) -> bool:
        """True when no server is configured and the embedded one serves the sources without an own URL."""
        return self.server_url is None and any(s not in self.source_urls for s in SOURCES)

    def database_name(self, source: str) -> str:
        """Default database of a source on the shared server."""
        return f"{self.database_prefix}{check_source(source)}"


def check_source(source: str) -> str:
    """Return `source` when it names a known source system, else raise ConfigError."""
    if source not in SOURCES:
        raise ConfigError(f"unknown source {source!r}; known sources: {', '.join(SOURCES)}")
    return source


def _check_url(variable: str, value: str) -> str:
    from forge_assets.db import parse_conninfo  # db imports this module

    try:
        parts = urlsplit(value)
    except ValueError as exc:
        raise ConfigError(f"{variable} is not a valid URL ({exc})") from None
    if parts.scheme not in _URL_SCHEMES:
        raise ConfigError(
            f"{variable} must be a PostgreSQL URL like postgresql://user@host:5432/db "
            f"(got a value with scheme {parts.scheme or 'none'!r})"
        )
    try:
        parse_conninfo(value)
    except ConfigError as exc:
        raise ConfigError(f"{variable}: {exc}") from None
    return value


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate FORGE_* variables; raise ConfigError naming the first bad one."""
    env = os.environ if environ is None else environ

    unknown = sorted(k for k in env if k.startswith("FORGE_") and k.endswith("_URL") and k not in _KNOWN_URL_VARIABLES)
    if unknown:
        raise ConfigError(
            f"{unknown[0]} is not a known variable; per-source URLs are "
            + ", ".join(sorted(_KNOWN_URL_VARIABLES - {"FORGE_PG_URL"}))
        )

    home_value = env.get("FORGE_HOME") or ".forge"
    home = Path(home_value).expanduser().absolute()
    if home.exists() and not home.is_dir():
        raise ConfigError(f"FORGE_HOME must be a directory; {home} is a file")

    lake_value = env.get("FORGE_LAKE_URI") or str(home / "lake")
    lake_root = _lake_root(lake_value)

    server_url = env.get("FORGE_PG_URL") or None
    if server_url is not None:
        _check_url("FORGE_PG_URL", server_url)

    source_urls: dict[str, str] = {}
    for source in SOURCES:
        variable = f"FORGE_{source.upper()}_URL"
        if env.get(variable):
            source_urls[source] = _check_url(variable, env[variable])

    prefix = env.get("FORGE_DB_PREFIX", "")
    if prefix and not _DB_PREFIX_PATTERN.fullmatch(prefix):
        raise ConfigError(
            f"FORGE_DB_PREFIX must be lower-case letters, digits and underscores, at most 31 characters (got {prefix!r})"
        )

    start_date, origin = env.get("FORGE_START_DATE"), "FORGE_START_DATE"
    if not start_date and (home / START_DATE_FILE).is_file():
        start_date, origin = (home / START_DATE_FILE).read_text().strip(), str(home / START_DATE_FILE)
    start_date = start_date or DEFAULT_START_DATE
    try:
        if date.fromisoformat(start_date) > date.today() or len(start_date) != 10:
            raise ValueError
    except ValueError:
        raise ConfigError(f"{origin} must be a past date as YYYY-MM-DD (got {start_date!r})") from None

    return Settings(
        home=home, lake_root=lake_root, server_url=server_url, source_urls=source_urls, database_prefix=prefix,
        start_date=start_date,
    )


def _lake_root(value: str) -> Path:
    parts = urlsplit(value)
    if parts.scheme in ("", "file"):
        path = Path(parts.path if parts.scheme == "file" else value).expanduser().absolute()
        if path.exists() and not path.is_dir():
            raise ConfigError(f"FORGE_LAKE_URI must name a directory; {path} is a file")
        return path
    raise ConfigError(
        f"FORGE_LAKE_URI must be a local path or a file:// URI (got scheme {parts.scheme!r}); "
        "object stores are not supported yet"
    )

"""Configuration from environment variables, validated once, with one clear error line per bad value."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

from forge_assets.conninfo import ConninfoError, parse_conninfo
from forge_assets.lake import OBJECT_SCHEMES, Location, ObjectPath

SOURCES: tuple[str, ...] = ("forge", "goforge", "orchestry", "pulse", "openorchestrator")
"""The source systems, each with its own database (named after it by default)."""

ROLES: tuple[str, ...] = ("reader", "retention", "owner")
"""The logins of a source: reader (rollups, checks, sensor probes), retention (archive and purge, the ledger),
owner (restore, partition DDL, forge_assets' own schema)."""

DEFAULT_START_DATE = "2025-01-01"
# Written by `forge-assets demo` (its first seeded day); read when FORGE_START_DATE is not set.
START_DATE_FILE = "start_date"
_URL_SCHEMES = ("postgresql", "postgres")
_DB_PREFIX_PATTERN = re.compile(r"[a-z_][a-z0-9_]{0,30}")
_ROLE_SUFFIX = {"reader": "URL", "retention": "RETENTION_URL", "owner": "OWNER_URL"}


def login_variable(source: str, role: str) -> str:
    """The environment variable of a source's login: FORGE_<SOURCE>_URL (reader), FORGE_<SOURCE>_RETENTION_URL,
    FORGE_<SOURCE>_OWNER_URL."""
    return f"FORGE_{check_source(source).upper()}_{_ROLE_SUFFIX[role]}"


def _known_url_variables() -> set[str]:
    return {"FORGE_PG_URL", *(login_variable(s, r) for s in SOURCES for r in ROLES)}


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the variable and what is expected."""


@dataclass(frozen=True)
class Settings:
    """Everything forge_assets reads from the environment. `purge_sources`: FORGE_PURGE's list, or (not set:
    `purge_explicit` False) the default, every source on the embedded server and none elsewhere; the policy
    file may still decide when FORGE_PURGE is not set (forge_assets/effective.py combines them)."""

    home: Path
    lake_root: Location  # a local directory, or an object-store prefix (ObjectPath)
    server_url: str | None = None
    source_urls: Mapping[str, str] = field(default_factory=dict)
    database_prefix: str = ""
    start_date: str = DEFAULT_START_DATE
    retention_urls: Mapping[str, str] = field(default_factory=dict)
    owner_urls: Mapping[str, str] = field(default_factory=dict)
    sources: tuple[str, ...] = SOURCES
    purge_sources: tuple[str, ...] = SOURCES
    purge_explicit: bool = False

    @property
    def pgdata(self) -> Path:
        """Data directory of the embedded PostgreSQL server."""
        return pgdata_directory(self.home)

    @property
    def dagster_home(self) -> Path:
        """DAGSTER_HOME used by `forge-assets dev` and `demo`."""
        return self.home / "dagster"

    @property
    def embedded(self) -> bool:
        """True when no server is configured and the embedded one serves the sources without an own URL."""
        return self.server_url is None and not all(self.has_own_database(s) for s in self.sources)

    def login_url(self, source: str, role: str) -> str | None:
        """The URL of a source's own login for `role`, or None (see db.source_conninfo for the fallbacks)."""
        urls = {"reader": self.source_urls, "retention": self.retention_urls, "owner": self.owner_urls}[role]
        return urls.get(check_source(source))

    def has_own_database(self, source: str) -> bool:
        """Whether a login URL names the source's database (else it is a database on the shared server)."""
        return any(self.login_url(source, role) for role in ROLES)

    def database_name(self, source: str) -> str:
        """Default database of a source on the shared server."""
        return database_name(self.database_prefix, source)


def pgdata_directory(home: Path) -> Path:
    """Data directory of the embedded PostgreSQL server under FORGE_HOME."""
    return home / "pgdata"


def database_name(prefix: str, source: str) -> str:
    """Default database of a source on the shared server: FORGE_DB_PREFIX + the source's name."""
    return f"{prefix}{check_source(source)}"


def check_source(source: str) -> str:
    """Return `source` when it names a known source system, else raise ConfigError."""
    if source not in SOURCES:
        raise ConfigError(f"unknown source {source!r}; known sources: {', '.join(SOURCES)}")
    return source


def _check_url(variable: str, value: str) -> str:
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
    except ConninfoError as exc:
        raise ConfigError(f"{variable}: {exc}") from None
    return value


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate FORGE_* variables; raise ConfigError naming the first bad one."""
    env = os.environ if environ is None else environ

    known = _known_url_variables()
    unknown = sorted(k for k in env if k.startswith("FORGE_") and k.endswith("_URL") and k not in known)
    if unknown:
        raise ConfigError(
            f"{unknown[0]} is not a known variable; per-source URLs are FORGE_<SOURCE>_URL (reader), "
            "FORGE_<SOURCE>_RETENTION_URL and FORGE_<SOURCE>_OWNER_URL for <SOURCE> in "
            + ", ".join(s.upper() for s in SOURCES)
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

    logins: dict[str, dict[str, str]] = {role: {} for role in ROLES}
    for source in SOURCES:
        for role in ROLES:
            variable = login_variable(source, role)
            if env.get(variable):
                logins[role][source] = _check_url(variable, env[variable])
    configured = tuple(s for s in SOURCES if any(s in logins[role] for role in ROLES))
    sources = _source_list(env, "FORGE_SOURCES", default=configured or SOURCES)
    own_server = server_url is None and not configured
    purge_sources = _source_list(env, "FORGE_PURGE", default=sources if own_server else ())

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
        home=home, lake_root=lake_root, server_url=server_url, source_urls=logins["reader"], database_prefix=prefix,
        start_date=start_date, retention_urls=logins["retention"], owner_urls=logins["owner"], sources=sources,
        purge_sources=tuple(s for s in purge_sources if s in sources),
        purge_explicit=bool((env.get("FORGE_PURGE") or "").strip()),
    )


def _source_list(env: Mapping[str, str], variable: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """A comma-separated list of sources, or `all` / `none`; unset: `default`."""
    value = (env.get(variable) or "").strip()
    if not value:
        return default
    if value in ("all", "none"):
        return SOURCES if value == "all" else ()
    names = [name.strip() for name in value.split(",")]
    unknown = [name for name in names if name not in SOURCES]
    if unknown:
        raise ConfigError(f"{variable} names unknown source {unknown[0]!r}; use all, none or a comma-separated "
                          f"list of {', '.join(SOURCES)}")
    return tuple(s for s in SOURCES if s in names)


def _lake_root(value: str) -> Location:
    parts = urlsplit(value)
    if parts.scheme in OBJECT_SCHEMES:
        if not parts.netloc or parts.query or parts.fragment or parts.username or parts.password:
            raise ConfigError(f"FORGE_LAKE_URI must be {parts.scheme}://bucket/prefix, without credentials or "
                              "options (the store's endpoint and credentials come from its own environment "
                              "variables, e.g. AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID)")
        return ObjectPath.from_uri(value)
    if parts.scheme in ("", "file"):
        path = Path(parts.path if parts.scheme == "file" else value).expanduser().absolute()
        if path.exists() and not path.is_dir():
            raise ConfigError(f"FORGE_LAKE_URI must name a directory; {path} is a file")
        return path
    raise ConfigError(
        f"FORGE_LAKE_URI must be a local path, a file:// URI or an object-store URI "
        f"({', '.join(f'{s}://' for s in OBJECT_SCHEMES)}); got scheme {parts.scheme!r}"
    )

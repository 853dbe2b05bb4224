"""PostgreSQL resource: psycopg pools per source and login, read-only for rollups and checks, read-write for purges."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from dagster import ConfigurableResource, EnvVar, InitResourceContext
from psycopg_pool import ConnectionPool, PoolTimeout
from pydantic import PrivateAttr

from forge_assets.config import ROLES, SOURCES, load_settings, login_variable
from forge_assets.conninfo import describe
from forge_assets.db import DatabaseUnavailable, connection_lost, resolve_source_conninfo
from forge_assets.effective import purge_sources


def _read_only(conn: psycopg.Connection) -> None:
    conn.read_only = True


class PostgresResource(ConfigurableResource):
    """The source databases, a login per role and source: `reader_urls` (FORGE_<SOURCE>_URL: rollups, checks,
    sensor probes), `retention_urls` (FORGE_<SOURCE>_RETENTION_URL: archive and purge), `owner_urls`
    (FORGE_<SOURCE>_OWNER_URL: restore). URLs come from environment variables (shown in the UI by name, never
    by value); a role without its own login uses the source's reader login; sources without any live on
    FORGE_PG_URL's server, or on the embedded server under `home`."""

    home: str
    server_url: str | None = None
    reader_urls: dict[str, str] = {}
    retention_urls: dict[str, str] = {}
    owner_urls: dict[str, str] = {}
    database_prefix: str = ""
    sources: list[str] | None = None
    purge_sources: list[str] | None = None
    max_connections: int = 4
    connect_timeout_seconds: float = 30.0

    _pools: dict = PrivateAttr(default_factory=dict)

    @classmethod
    def from_environment(cls) -> PostgresResource:
        """Configure from FORGE_* variables; set variables are passed as EnvVar so values stay out of the UI."""
        settings = load_settings()
        logins = {f"{role}_urls": {s: EnvVar(login_variable(s, role)) for s in SOURCES if settings.login_url(s, role)}
                  for role in ROLES}
        return cls(
            home=str(settings.home),
            server_url=EnvVar("FORGE_PG_URL") if settings.server_url else None,
            database_prefix=settings.database_prefix,
            sources=list(settings.sources),
            purge_sources=list(purge_sources(settings)),
            **logins,
        )

    def serves(self, source: str) -> bool:
        """Whether `source` is configured at all (FORGE_SOURCES or its logins: `sources`; None: every source)."""
        return self.sources is None or source in self.sources

    def purges(self, source: str) -> bool:
        """Whether archive runs may purge `source`: `purge_sources` (FORGE_PURGE, else the policy file, else the
        default: forge_assets/effective.py; None: every source)."""
        return self.purge_sources is None or source in self.purge_sources

    def conninfo(self, source: str, role: str = "reader") -> str:
        """Connection string of a source's `role` login (contains secrets: never log it; use `describe`)."""
        logins = {"reader": self.reader_urls.get(source), "retention": self.retention_urls.get(source),
                  "owner": self.owner_urls.get(source)}
        return resolve_source_conninfo(source, role, logins, self.server_url, Path(self.home), self.database_prefix)

    def _pool(self, source: str, role: str, read_only: bool) -> ConnectionPool:
        key = (source, role, read_only)
        if key not in self._pools:
            self._pools[key] = ConnectionPool(
                self.conninfo(source, role), min_size=0, max_size=self.max_connections, open=True,
                configure=_read_only if read_only else None, name=f"{source}-{role}-{'ro' if read_only else 'rw'}",
            )
        return self._pools[key]

    @contextmanager
    def _connection(self, source: str, role: str, read_only: bool) -> Iterator[psycopg.Connection]:
        pool = self._pool(source, role, read_only)
        try:
            with pool.connection(timeout=self.connect_timeout_seconds) as conn:
                try:
                    yield conn
                except psycopg.OperationalError as exc:
                    unavailable = connection_lost(exc, conn, self.conninfo(source, role))
                    if unavailable is None:
                        raise
                    raise unavailable from None
        except PoolTimeout:
            raise DatabaseUnavailable(
                f"no connection to source {source} ({describe(self.conninfo(source, role))}) "
                f"within {self.connect_timeout_seconds:.0f} s"
            ) from None

    @contextmanager
    def read(self, source: str) -> Iterator[psycopg.Connection]:
        """A reader connection whose transactions are read-only (rollups, checks); the transaction ends on exit."""
        with self._connection(source, "reader", read_only=True) as conn:
            yield conn

    @contextmanager
    def write(self, source: str) -> Iterator[psycopg.Connection]:
        """A read-write connection as the retention login (archive and purge); commits on clean exit, rolls back
        on error."""
        with self._connection(source, "retention", read_only=False) as conn:
            yield conn

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()



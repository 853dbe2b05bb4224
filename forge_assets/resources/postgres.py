"""PostgreSQL resource: per-source psycopg pools, read-only for rollups and checks, read-write for purges."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from dagster import ConfigurableResource, EnvVar, InitResourceContext
from psycopg_pool import ConnectionPool, PoolTimeout
from pydantic import PrivateAttr

from forge_assets.config import load_settings
from forge_assets.conninfo import describe
from forge_assets.db import DatabaseUnavailable, connection_lost, resolve_source_conninfo


def _read_only(conn: psycopg.Connection) -> None:
    conn.read_only = True


class PostgresResource(ConfigurableResource):
    """The source databases. URLs come from environment variables (shown in the UI by name, never by
    value); sources without one live on FORGE_PG_URL's server, or on the embedded server under `home`."""

    home: str
    server_url: str | None = None
    forge_url: str | None = None
    goforge_url: str | None = None
    orchestry_url: str | None = None
    pulse_url: str | None = None
    openorchestrator_url: str | None = None
    database_prefix: str = ""
    max_connections: int = 4
    connect_timeout_seconds: float = 30.0

    _pools: dict = PrivateAttr(default_factory=dict)

    @classmethod
    def from_environment(cls) -> PostgresResource:
        """Configure from FORGE_* variables; set variables are passed as EnvVar so values stay out of the UI."""
        settings = load_settings()
        urls = {f"{s}_url": EnvVar(f"FORGE_{s.upper()}_URL") for s in settings.source_urls}
        return cls(
            home=str(settings.home),
            server_url=EnvVar("FORGE_PG_URL") if settings.server_url else None,
            database_prefix=settings.database_prefix,
            **urls,
        )

    def conninfo(self, source: str) -> str:
        """Connection string of a source (contains secrets: never log it; use `describe`)."""
        return resolve_source_conninfo(source, getattr(self, f"{source}_url"), self.server_url, Path(self.home),
                                       self.database_prefix)

    def _pool(self, source: str, read_only: bool) -> ConnectionPool:
        key = (source, read_only)
        if key not in self._pools:
            self._pools[key] = ConnectionPool(
                self.conninfo(source), min_size=0, max_size=self.max_connections, open=True,
                configure=_read_only if read_only else None, name=f"{source}-{'ro' if read_only else 'rw'}",
            )
        return self._pools[key]

    @contextmanager
    def _connection(self, source: str, read_only: bool) -> Iterator[psycopg.Connection]:
        pool = self._pool(source, read_only)
        try:
            with pool.connection(timeout=self.connect_timeout_seconds) as conn:
                try:
                    yield conn
                except psycopg.OperationalError as exc:
                    unavailable = connection_lost(exc, conn, self.conninfo(source))
                    if unavailable is None:
                        raise
                    raise unavailable from None
        except PoolTimeout:
            raise DatabaseUnavailable(
                f"no connection to source {source} ({describe(self.conninfo(source))}) "
                f"within {self.connect_timeout_seconds:.0f} s"
            ) from None

    @contextmanager
    def read(self, source: str) -> Iterator[psycopg.Connection]:
        """A connection whose transactions are read-only (rollups, checks); the transaction ends on exit."""
        with self._connection(source, read_only=True) as conn:
            yield conn

    @contextmanager
    def write(self, source: str) -> Iterator[psycopg.Connection]:
        """A read-write connection (archive and purge); commits on clean exit, rolls back on error."""
        with self._connection(source, read_only=False) as conn:
            yield conn

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()



"""Where each source database lives, how to reach it, and how to name it in messages without secrets."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

from forge_assets.config import ROLES, SOURCES, Settings, check_source, database_name, login_variable, pgdata_directory
from forge_assets.conninfo import describe, normalized, redact
from forge_assets.embedded import ServerNotReady, ensure_embedded_server


class DatabaseUnavailable(RuntimeError):
    """A source database cannot be reached; the message names it without its password."""


def server_conninfo(settings: Settings) -> str:
    """The shared server: FORGE_PG_URL, or the embedded server (started when needed)."""
    return _server(settings.server_url, settings.pgdata)


def source_conninfo(settings: Settings, source: str, role: str = "reader") -> str:
    """Connection string of one source's login for `role` (see `resolve_source_conninfo`)."""
    logins = {r: settings.login_url(source, r) for r in ROLES}
    return resolve_source_conninfo(source, role, logins, settings.server_url, settings.home, settings.database_prefix)


def resolve_source_conninfo(source: str, role: str, logins: Mapping[str, str | None], server_url: str | None,
                            home: Path, database_prefix: str) -> str:
    """The role's own login (FORGE_<SOURCE>_RETENTION_URL, ..._OWNER_URL); else the source's reader login
    (FORGE_<SOURCE>_URL: one login in every role, e.g. an owner's); else any login the source has; else its
    database on the shared server.
    The Dagster resource calls it with its EnvVar-backed fields, everything else through `source_conninfo`."""
    check_source(source)
    url = logins.get(role) or logins.get("reader") or next((u for u in logins.values() if u), None)
    if url:
        return normalized(url)
    return normalized(_server(server_url, pgdata_directory(home)), dbname=database_name(database_prefix, source))


def missing_login_note(settings: Settings, source: str, role: str) -> str:
    """Why `role` runs as another login, for error messages ('' when it has its own or shares the server's)."""
    if role == "reader" or settings.login_url(source, role) or not settings.login_url(source, "reader"):
        return ""
    return (f" ({login_variable(source, role)} is unset, so the {role} work ran as the reader login "
            f"{login_variable(source, 'reader')}; set it to a login with the {role} role)")


def _server(server_url: str | None, pgdata: Path) -> str:
    if server_url is not None:
        return normalized(server_url)
    try:
        return normalized(ensure_embedded_server(pgdata))
    except ServerNotReady as exc:
        raise DatabaseUnavailable(str(exc)) from None


def connect(conninfo: str, **kwargs) -> psycopg.Connection:
    """Open a connection, turning connection failures into DatabaseUnavailable with a redacted message."""
    try:
        return psycopg.connect(conninfo, **kwargs)
    except (psycopg.OperationalError, psycopg.ProgrammingError) as exc:  # unreachable, or a bad parameter
        reason = " ".join(redact(str(exc)).split())
        raise DatabaseUnavailable(f"cannot connect to {describe(conninfo)}: {reason}") from None


def ensure_source_databases(settings: Settings, sources: tuple[str, ...] = SOURCES) -> list[str]:
    """Create the missing default databases of `sources` on the shared server; return the names created.

    Sources with their own FORGE_<SOURCE>_URL are left alone: their database is someone else's to create.
    """
    wanted = [settings.database_name(s) for s in sources if not settings.has_own_database(s)]
    if not wanted:
        return []
    created = []
    with connect(server_conninfo(settings), autocommit=True) as conn:
        existing = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
        for name in wanted:
            if name not in existing:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                created.append(name)
    return created


def drop_source_databases(settings: Settings) -> None:
    """Drop the default databases of every source on the shared server (tests and `clean` only)."""
    with connect(server_conninfo(settings), autocommit=True) as conn:
        for source in SOURCES:
            if not settings.has_own_database(source):
                name = sql.Identifier(settings.database_name(source))
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))


def connection_lost(exc: BaseException, conn: psycopg.Connection, conninfo: str) -> DatabaseUnavailable | None:
    """DatabaseUnavailable for an error that broke the connection (server restarted or gone), else None.

    The server rolled back whatever the connection had not committed.
    """
    if not isinstance(exc, psycopg.OperationalError) or not conn.broken:
        return None
    reason = " ".join(redact(str(exc)).split())
    return DatabaseUnavailable(f"lost the connection to {describe(conninfo)} ({reason}); its open transaction was "
                               "rolled back by the server: run again when it is back")


@contextmanager
def source_connection(settings: Settings, source: str, role: str = "reader", **kwargs) -> Iterator[psycopg.Connection]:
    """A connection to one source database as its `role` login, closed on exit; a connection lost on the way is
    DatabaseUnavailable."""
    conninfo = source_conninfo(settings, source, role)
    with connect(conninfo, **kwargs) as conn:
        try:
            yield conn
        except psycopg.OperationalError as exc:
            unavailable = connection_lost(exc, conn, conninfo)
            if unavailable is None:
                raise
            raise unavailable from None

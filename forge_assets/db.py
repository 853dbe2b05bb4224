"""Where each source database lives, how to reach it, and how to name it in messages without secrets."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from forge_assets.config import SOURCES, ConfigError, Settings, check_source
from forge_assets.resources.embedded import ensure_embedded_server

_PASSWORD_IN_URL = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/?#@\s]*:)[^@/?#\s]*(?P<tail>@)", re.IGNORECASE)
_PASSWORD_IN_KV = re.compile(r"(?P<head>\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


class DatabaseUnavailable(RuntimeError):
    """A source database cannot be reached; the message names it without its password."""


def redact(text: str) -> str:
    """Remove passwords from connection URLs and key=value conninfo strings inside `text`."""
    text = _PASSWORD_IN_URL.sub(r"\g<head>***\g<tail>", text)
    return _PASSWORD_IN_KV.sub(r"\g<head>***", text)


def describe(conninfo: str) -> str:
    """A short, password-free description of a conninfo: user@host/dbname."""
    params = parse_conninfo(conninfo)
    host = params.get("host") or "localhost"
    port = f":{params['port']}" if params.get("port") else ""
    return f"{params.get('user', '')}@{host}{port}/{params.get('dbname', '')}"


def parse_conninfo(conninfo: str) -> dict:
    """The parameters of a URL or key=value conninfo. libpq quotes the offending text, password included,
    in its parse errors: the ConfigError raised instead never does."""
    try:
        return conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError as exc:
        password = urlsplit(conninfo).password if "://" in conninfo and "[" not in conninfo else None
        reason = " ".join(str(exc).split()).replace(conninfo, "<the URL>")
        reason = redact(reason.replace(password, "***") if password else reason)
        raise ConfigError(f"malformed PostgreSQL connection string ({describe_unparsed(conninfo)}): {reason}") from None


def describe_unparsed(conninfo: str) -> str:
    """What can safely be said about a conninfo that libpq cannot parse: its scheme and host part."""
    if "://" not in conninfo:
        return "key=value text"
    scheme, _, rest = conninfo.partition("://")
    return f"{scheme}://…@{rest.rpartition('@')[2].split('/')[0].split('?')[0]}/…"


def normalized(conninfo: str, **overrides: str) -> str:
    """A URL or key=value conninfo as key=value text, with `overrides` applied."""
    return make_conninfo("", **{**parse_conninfo(conninfo), **overrides})


def server_conninfo(settings: Settings) -> str:
    """The shared server: FORGE_PG_URL, or the embedded server (started when needed)."""
    if settings.server_url is not None:
        return normalized(settings.server_url)
    return normalized(ensure_embedded_server(settings.pgdata))


def source_conninfo(settings: Settings, source: str) -> str:
    """Connection string of one source's database: FORGE_<SOURCE>_URL, else its database on the shared server."""
    check_source(source)
    if source in settings.source_urls:
        return normalized(settings.source_urls[source])
    return normalized(server_conninfo(settings), dbname=settings.database_name(source))


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
    wanted = [settings.database_name(s) for s in sources if s not in settings.source_urls]
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
            if source not in settings.source_urls:
                name = sql.Identifier(settings.database_name(source))
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))


def lost(exc: BaseException, conn: psycopg.Connection, conninfo: str) -> DatabaseUnavailable | None:
    """DatabaseUnavailable for an error that broke the connection (server restarted or gone), else None.

    The server rolled back whatever the connection had not committed.
    """
    if not isinstance(exc, psycopg.OperationalError) or not conn.broken:
        return None
    reason = " ".join(redact(str(exc)).split())
    return DatabaseUnavailable(f"lost the connection to {describe(conninfo)} ({reason}); its open transaction was "
                               "rolled back by the server: run again when it is back")


@contextmanager
def source_connection(settings: Settings, source: str, **kwargs) -> Iterator[psycopg.Connection]:
    """A connection to one source database, closed on exit; a connection lost on the way is DatabaseUnavailable."""
    conninfo = source_conninfo(settings, source)
    with connect(conninfo, **kwargs) as conn:
        try:
            yield conn
        except psycopg.OperationalError as exc:
            unavailable = lost(exc, conn, conninfo)
            if unavailable is None:
                raise
            raise unavailable from None

"""PostgreSQL connection strings: parsing, password-free descriptions, redaction, SQLAlchemy URLs.

A leaf module (psycopg and the standard library only): configuration, connections, checks and the Dagster
instance all describe or convert connection strings through it, and none of them is imported here.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

_PASSWORD_IN_URL = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/?#@\s]*:)[^@/?#\s]*(?P<tail>@)", re.IGNORECASE)
_PASSWORD_IN_KV = re.compile(r"(?P<head>\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
_URL_KEYS = ("host", "port", "user", "password", "dbname")


class ConninfoError(ValueError):
    """A connection string libpq cannot parse; the message never contains its password."""


def redact(text: str) -> str:
    """Remove passwords from connection URLs and key=value conninfo strings inside `text`."""
    text = _PASSWORD_IN_URL.sub(r"\g<head>***\g<tail>", text)
    return _PASSWORD_IN_KV.sub(r"\g<head>***", text)


def parse_conninfo(conninfo: str) -> dict:
    """The parameters of a URL or key=value conninfo. libpq quotes the offending text, password included,
    in its parse errors: the ConninfoError raised instead never does."""
    try:
        return conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError as exc:
        password = urlsplit(conninfo).password if "://" in conninfo and "[" not in conninfo else None
        reason = " ".join(str(exc).split()).replace(conninfo, "<the URL>")
        reason = redact(reason.replace(password, "***") if password else reason)
        raise ConninfoError(f"malformed PostgreSQL connection string ({describe_unparsed(conninfo)}): {reason}") from None


def describe(conninfo: str) -> str:
    """A short, password-free description of a conninfo: user@host/dbname."""
    params = parse_conninfo(conninfo)
    host = params.get("host") or "localhost"
    port = f":{params['port']}" if params.get("port") else ""
    return f"{params.get('user', '')}@{host}{port}/{params.get('dbname', '')}"


def describe_unparsed(conninfo: str) -> str:
    """What can safely be said about a conninfo that libpq cannot parse: its scheme and host part."""
    if "://" not in conninfo:
        return "key=value text"
    scheme, _, rest = conninfo.partition("://")
    return f"{scheme}://…@{rest.rpartition('@')[2].split('/')[0].split('?')[0]}/…"


def normalized(conninfo: str, **overrides: str) -> str:
    """A URL or key=value conninfo as key=value text, with `overrides` applied."""
    return make_conninfo("", **{**parse_conninfo(conninfo), **overrides})


def sqlalchemy_url(conninfo: str, driver: str) -> str:
    """A `postgresql+<driver>://` URL for SQLAlchemy users (Great Expectations: psycopg; dagster-postgres:
    psycopg2, whose `NOTIFY run_events, %s` fails under psycopg 3). A unix-socket directory goes in
    `?host=` beside a nominal `localhost` (GX rejects a URL without a host); other libpq parameters go in the
    query string. Contains the password: never log it."""
    from sqlalchemy.engine import URL

    params = parse_conninfo(conninfo)
    host = params.get("host") or "localhost"
    query = {k: str(v) for k, v in params.items() if k not in _URL_KEYS}
    if host.startswith("/"):
        query["host"], host = host, "localhost"
    url = URL.create(f"postgresql+{driver}", username=params.get("user"), password=params.get("password") or None,
                     host=host, port=int(params["port"]) if params.get("port") else None,
                     database=params.get("dbname"), query=query)
    return url.render_as_string(hide_password=False)

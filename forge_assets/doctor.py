"""`forge-assets doctor`: connect as each configured login of a source and say, per role and table, what works
and the exact GRANT that would fix what does not. Reads privileges only (has_*_privilege); changes nothing."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from forge_assets.config import ROLES, Settings, login_variable
from forge_assets.conninfo import redact
from forge_assets.db import DatabaseUnavailable, source_connection
from forge_assets.retention.catalog import SENSITIVE
from forge_assets.retention.policy import effective_entries
from forge_assets.roles import OWNER, READER, RETENTION

LEDGER = ("forge_retention", "archive_ledger")
_GROUP = {"reader": READER, "retention": RETENTION, "owner": OWNER}
_LEDGER_PRIVILEGES = {"reader": ("SELECT",), "retention": ("SELECT", "INSERT"), "owner": ("SELECT", "UPDATE")}
_TABLE_PRIVILEGES = {"retention": ("SELECT", "DELETE"), "owner": ("SELECT", "INSERT")}


@dataclass(frozen=True)
class Finding:
    """One thing a login can or cannot do; `fix` is the statement (or step) that would make it work."""

    source: str
    role: str
    subject: str
    ok: bool
    fix: str = ""

    def line(self) -> str:
        head = f"{self.source:17s} {self.role:9s} {self.subject:52s}"
        return f"{head} ok" if self.ok else f"{head} MISSING  {self.fix}"


def diagnose(settings: Settings, source: str) -> list[Finding]:
    """Every role's findings for `source`: whether its login connects, and its privileges where it does."""
    findings = []
    for role in ROLES:
        try:
            with source_connection(settings, source, role) as conn:
                findings += _role_findings(conn, source, role, settings.login_url(source, role) is not None)
        except DatabaseUnavailable as exc:
            findings.append(Finding(source, role, "connect", False, f"{exc} ({login_variable(source, role)})"))
        except psycopg.Error as exc:  # a catalog query this login may not run: say so, check the next role
            findings.append(Finding(source, role, "inspect privileges", False, redact(" ".join(str(exc).split()))))
    return findings


def _role_findings(conn: psycopg.Connection, source: str, role: str, own_login: bool) -> list[Finding]:
    user = conn.execute("SELECT current_user").fetchone()[0]
    login = sql.Identifier(user).as_string(conn)
    shared = "" if own_login or role == "reader" else f" (no {login_variable(source, role)}: the reader login)"
    found = [Finding(source, role, f"connect as {user}{shared}", True)]
    exists, usage = conn.execute(
        "SELECT n.oid IS NOT NULL, coalesce(has_schema_privilege(n.oid, 'USAGE'), false) FROM (SELECT) x "
        "LEFT JOIN pg_namespace n ON n.nspname = 'forge_retention'").fetchone()
    if not exists:
        return [*found, Finding(source, role, "forge_retention schema", False,
                                f"forge-assets migrate --own-only --source {source} (as the owner login)")]
    found.append(Finding(source, role, "USAGE on schema forge_retention", usage, f"GRANT {_GROUP[role]} TO {login};"))
    ledger = sql.Identifier(*LEDGER).as_string(conn)
    for privilege in _LEDGER_PRIVILEGES[role] if usage else ():
        ok = conn.execute("SELECT has_table_privilege(%s, %s)", (".".join(LEDGER), privilege)).fetchone()[0]
        found.append(Finding(source, role, f"{privilege} on {'.'.join(LEDGER)}", ok,
                             f"GRANT {_GROUP[role]} TO {login}; -- or GRANT {privilege} ON {ledger} TO {login};"))
    tables = _tables(conn, source, role)
    schema = conn.execute("SELECT current_schema()").fetchone()[0]
    for table, privileges in tables.items():
        oid = conn.execute("SELECT to_regclass(format('%%I', %s::text))::oid", (table,)).fetchone()[0]
        name = sql.Identifier(schema, table).as_string(conn)
        if oid is None:
            found.append(Finding(source, role, table, False, f"the table {table} does not exist in this database"))
            continue
        missing = [p for p in privileges
                   if not conn.execute("SELECT has_table_privilege(%s::oid, %s)", (oid, p)).fetchone()[0]]
        found.append(Finding(source, role, f"{', '.join(privileges)} on {table}", not missing,
                             f"GRANT {_GROUP[role]} TO {login}; -- with `forge-assets grants --source {source}` "
                             f"applied, or GRANT {', '.join(missing)} ON {name} TO {login};"))
        sensitive = SENSITIVE.get((source, table), ())
        if role == "reader" and sensitive:
            readable = [c for c in sensitive if conn.execute(
                "SELECT has_column_privilege(%s::oid, %s, 'SELECT')", (oid, c)).fetchone()[0]]
            revoke = sql.SQL("REVOKE SELECT ON {} FROM {};").format(sql.Identifier(schema, table), sql.Identifier(user))
            found.append(Finding(source, role, f"cannot read sensitive {table}.{', '.join(sensitive)}", not readable,
                                 f"{revoke.as_string(conn)} then grant its other columns "
                                 f"(`forge-assets grants --source {source}`)"))
    if role in ("retention", "owner"):
        found += _ownership(conn, source, role, login)
    conn.rollback()
    return found


def _tables(conn: psycopg.Connection, source: str, role: str) -> dict[str, tuple[str, ...]]:
    """The tables a role works on and the privileges it needs on each."""
    if role in _TABLE_PRIVILEGES:
        return {e.table: _TABLE_PRIVILEGES[role] for e in effective_entries(source)}
    rows = conn.execute("SELECT c.relname FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace "
                        "AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1").fetchall()
    return {table: ("SELECT",) for (table,) in rows if not SENSITIVE.get((source, table))}


def _ownership(conn: psycopg.Connection, source: str, role: str, login: str) -> list[Finding]:
    """drop_partition entries (retention) and partition creation on restore (owner) need the table's owner."""
    found = []
    for table in dict.fromkeys(e.table for e in effective_entries(source) if e.strategy == "drop_partition"):
        owned = conn.execute(
            "SELECT bool_and(pg_has_role(current_user, c.relowner, 'USAGE')), min(c.relowner::regrole::text) "
            "FROM pg_class c WHERE c.oid = to_regclass(format('%%I', %s::text)) OR c.oid IN "
            "(SELECT inhrelid FROM pg_inherits WHERE inhparent = to_regclass(format('%%I', %s::text)))",
            (table, table)).fetchone()
        found.append(Finding(source, role, f"owns {table} and its partitions (drop_partition)", bool(owned[0]),
                             f"GRANT {owned[1]} TO {login}; -- or a shared owner group role "
                             f"(`forge-assets grants --source {source}` explains)"))
    return found

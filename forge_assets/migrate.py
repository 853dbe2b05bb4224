"""Numbered SQL migrations per schema, applied in order, each in its own transaction, guarded by checksums.

Layout: `sql/migrations/<schema>/NNN_name.sql`. `<schema>` is a source system (its stand-in operational
schema, for the demo and tests) or `forge_retention` (forge_assets' own schema, applied to every source
database where retention runs). Applied files are recorded in `forge_retention.schema_migrations`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from forge_assets.config import Settings
from forge_assets.db import ensure_source_databases, source_connection
from forge_assets.roles import apply_grants
from forge_assets.sql_files import sql_root

OWN_SCHEMA = "forge_retention"
_FILE_PATTERN = re.compile(r"(?P<version>\d{3})_(?P<name>[a-z0-9_]+)\.sql")
_LOCK_KEY = "forge_assets.migrate"

_BOOTSTRAP = """
CREATE SCHEMA IF NOT EXISTS forge_retention;
CREATE TABLE IF NOT EXISTS forge_retention.schema_migrations (
    schema_name text NOT NULL,
    version     integer NOT NULL,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schema_name, version)
);
"""


class MigrationError(RuntimeError):
    """A migration cannot be applied safely; nothing of the failing file was committed."""


@dataclass(frozen=True)
class Migration:
    """One numbered SQL file."""

    schema: str
    version: int
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()

    @property
    def label(self) -> str:
        return f"{self.schema}/{self.path.name}"


def discover(schema: str, root: Path | None = None) -> list[Migration]:
    """The migrations of `schema` in version order; bad file names and duplicate versions are errors."""
    directory = (root or sql_root() / "migrations") / schema
    if not directory.is_dir():
        return []
    migrations: dict[int, Migration] = {}
    for path in sorted(directory.iterdir()):
        if path.suffix != ".sql":
            continue
        match = _FILE_PATTERN.fullmatch(path.name)
        if match is None:
            raise MigrationError(f"{path}: migration files must be named NNN_lower_case_name.sql")
        version = int(match["version"])
        if version in migrations:
            raise MigrationError(f"{path}: version {version:03d} is also used by {migrations[version].path.name}")
        migrations[version] = Migration(schema, version, match["name"], path)
    return [migrations[v] for v in sorted(migrations)]


def applied_checksums(conn: psycopg.Connection, schema: str) -> dict[int, tuple[str, str]]:
    """Applied versions of `schema` in this database: version -> (name, checksum)."""
    rows = conn.execute(
        "SELECT version, name, checksum FROM forge_retention.schema_migrations WHERE schema_name = %s", (schema,)
    ).fetchall()
    return {version: (name, checksum) for version, name, checksum in rows}


def migrate(conn: psycopg.Connection, schemas: list[str], root: Path | None = None) -> list[Migration]:
    """Apply the pending migrations of `schemas` (in the given order) on `conn`; return those applied.

    Idempotent: applied files are skipped. An applied file whose content changed, or an applied version
    whose file is gone, stops the run before anything else is applied. Concurrent runs serialise on an
    advisory lock.
    """
    if not conn.autocommit:
        raise ValueError("migrate() needs an autocommit connection: each file gets its own transaction")
    conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (_LOCK_KEY,))
    try:
        _bootstrap(conn)
        plan = [(schema, discover(schema, root)) for schema in schemas]
        for schema, migrations in plan:
            _verify_applied(conn, schema, migrations)
        applied = []
        for schema, migrations in plan:
            done = applied_checksums(conn, schema)
            for migration in migrations:
                if migration.version not in done:
                    _apply(conn, migration)
                    applied.append(migration)
        return applied
    finally:
        conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (_LOCK_KEY,))


def _bootstrap(conn: psycopg.Connection) -> None:
    """The schema_migrations table; a login that may not create the schema is one MigrationError naming the GRANT."""
    try:
        conn.execute(_BOOTSTRAP)
    except psycopg.errors.InsufficientPrivilege:
        user, database = conn.execute("SELECT current_user, current_database()").fetchone()
        grant = sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(sql.Identifier(database), sql.Identifier(user))
        raise MigrationError(
            f"role {user} may not create the {OWN_SCHEMA} schema in database {database}: it needs CREATE on the "
            f"database ({grant.as_string(conn)}; run by the database's "
            f"owner), or run migrate as the owner login (FORGE_<SOURCE>_OWNER_URL)") from None


def _verify_applied(conn: psycopg.Connection, schema: str, migrations: list[Migration]) -> None:
    by_version = {m.version: m for m in migrations}
    for version, (name, checksum) in sorted(applied_checksums(conn, schema).items()):
        migration = by_version.get(version)
        if migration is None:
            raise MigrationError(
                f"{schema}/{version:03d}_{name}.sql was applied to this database but is missing from "
                f"sql/migrations/{schema}/; restore the file (applied migrations are never removed)"
            )
        if migration.checksum != checksum:
            raise MigrationError(
                f"{migration.label} changed after it was applied to this database "
                f"(recorded sha256 {checksum[:12]}, file now {migration.checksum[:12]}); "
                "revert the edit and add a new migration instead"
            )


def _apply(conn: psycopg.Connection, migration: Migration) -> None:
    try:
        with conn.transaction():
            conn.execute(migration.sql)
            conn.execute(
                "INSERT INTO forge_retention.schema_migrations (schema_name, version, name, checksum) "
                "VALUES (%s, %s, %s, %s)",
                (migration.schema, migration.version, migration.name, migration.checksum),
            )
    except psycopg.Error as exc:
        raise MigrationError(f"{migration.label} failed and was rolled back: {exc}".strip()) from exc


def run_migrations(settings: Settings, sources: tuple[str, ...], own_only: bool = False) -> None:
    """Create missing default databases, then apply pending migrations to each source; print what ran."""
    created = ensure_source_databases(settings, sources)
    for name in created:
        print(f"created database {name}")
    for source in sources:
        schemas = [OWN_SCHEMA] if own_only else [source, OWN_SCHEMA]
        with source_connection(settings, source, "owner", autocommit=True) as conn:
            applied = migrate(conn, schemas)
            if not own_only:  # the stand-ins are ours; a real source's owner runs `forge-assets grants`
                apply_grants(conn, source)
        print(f"{source}: " + (", ".join(m.label for m in applied) if applied else "up to date"))

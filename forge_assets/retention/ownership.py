"""Which lake files belong to which ledger: the ledger's identity, the marker that ties a lake prefix to it,
and the names of the files it writes.

A source database's `forge_retention.ledger_identity` holds one uuid, made by its migration. The first
archive of a source writes `archive/<source>/.forge-ledger.json` (create-only) naming that uuid; a
deployment whose ledger has another uuid (another database, prefix or server pointed at the same lake) is
refused before it writes anything. Every archive file a ledger writes is named `<id prefix>-<run id>…`
(ID_CHARS hex digits of the uuid), its temporary name is `.<that name>.<hex>.tmp`: the orphan sweep
removes only such names that the ledger does not list, never a file it does not recognise.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import psycopg

from forge_assets.lake import claim, file_exists, lake_path, read_bytes

MARKER = ".forge-ledger.json"
ID_CHARS = 12
_TEMPORARY = re.compile(r"\.(?P<final>.+\.parquet)\.[0-9a-f]{32}\.tmp")


class LakeOwnershipError(RuntimeError):
    """The lake prefix belongs to another ledger; nothing was written or deleted."""


@dataclass(frozen=True)
class Ledger:
    """The identity of one source database's ledger."""

    id: str
    database: str

    @property
    def prefix(self) -> str:
        """What every archive file name of this ledger starts with."""
        return self.id.replace("-", "")[:ID_CHARS]

    def file_name(self, run_id: str, part: str | None = None) -> str:
        return f"{self.prefix}-{run_id}{'-' + part if part else ''}.parquet"

    def owns(self, name: str) -> tuple[bool, bool]:
        """(the name is one this ledger writes, it is a temporary name) for a file name in a day folder."""
        temporary = _TEMPORARY.fullmatch(name)
        final = temporary["final"] if temporary else name
        return final.startswith(f"{self.prefix}-") and final.endswith(".parquet"), temporary is not None


def ledger_of(conn: psycopg.Connection) -> Ledger:
    """This database's ledger identity (the connection's transaction is left open)."""
    try:
        with conn.transaction():
            row = conn.execute("SELECT id::text, current_database() FROM forge_retention.ledger_identity").fetchone()
    except psycopg.errors.UndefinedTable:
        raise LakeOwnershipError(
            f"database {conn.info.dbname} has no forge_retention.ledger_identity: apply forge_assets' migrations "
            "(forge-assets migrate --own-only); nothing was written or deleted") from None
    if row is None:
        raise LakeOwnershipError(f"database {conn.info.dbname}: forge_retention.ledger_identity is empty; "
                                 "nothing was written or deleted")
    return Ledger(*row)


def marker_path(lake_root: Path, source: str) -> Path:
    return lake_path(lake_root, "archive", source, MARKER)


def _refusal(lake_root: Path, source: str, ledger: Ledger, found: dict) -> LakeOwnershipError:
    return LakeOwnershipError(
        f"{lake_path(lake_root, 'archive', source)} belongs to ledger {found.get('ledger')} (database "
        f"{found.get('database')!r}), not to this deployment's ledger {ledger.id} (database {ledger.database!r}): "
        "two deployments must not share an archive prefix; point FORGE_LAKE_URI elsewhere. "
        "Nothing was written or deleted")


def _read(text: bytes) -> dict:
    try:
        found = json.loads(text)
        return found if isinstance(found, dict) else {}
    except ValueError:
        return {}


def check_owner(lake_root: Path, source: str, ledger: Ledger) -> None:
    """Refuse when the source's archive prefix carries another ledger's marker (a missing marker is fine:
    nothing of this source has been archived there yet)."""
    path = marker_path(lake_root, source)
    if file_exists(path):
        found = _read(read_bytes(path))
        if found.get("ledger") != ledger.id:
            raise _refusal(lake_root, source, ledger, found)


def claim_lake(lake_root: Path, source: str, ledger: Ledger) -> None:
    """Make sure the source's archive prefix belongs to `ledger`: write the marker when there is none
    (create-only, so of two deployments racing one wins), refuse when it names another ledger."""
    path = marker_path(lake_root, source)
    if file_exists(path):
        found = _read(read_bytes(path))
    else:
        mine = {"ledger": ledger.id, "database": ledger.database,
                "claimed_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        found = _read(claim(path, json.dumps(mine, indent=1).encode()))
    if found.get("ledger") != ledger.id:
        raise _refusal(lake_root, source, ledger, found)

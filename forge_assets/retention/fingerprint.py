"""The schema of an archive file as the ledger records it: a canonical description and its digest, so that a
reader can tell which days share a schema (and what changed) without opening the files."""

from __future__ import annotations

import hashlib
import json

import pyarrow as pa


def schema_description(schema: pa.Schema) -> list[dict[str, str | None]]:
    """Each column in file order: name, Arrow type, and the PostgreSQL type kept as field metadata."""
    return [{"name": f.name, "arrow_type": str(f.type),
             "pg_type": (f.metadata or {}).get(b"pg_type", b"").decode() or None} for f in schema]


def schema_fingerprint(schema: pa.Schema) -> str:
    """SHA-256 (first 16 hex digits) of the canonical description: equal schemas, equal fingerprints."""
    canonical = json.dumps(schema_description(schema), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]

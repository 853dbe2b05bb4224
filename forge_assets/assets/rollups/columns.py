"""Short constructors for rollup column declarations."""

from __future__ import annotations

import pyarrow as pa

from forge_assets.assets.rollups.spec import UTC_TS, Column


def text(name: str, description: str) -> Column:
    return Column(name, pa.string(), description)


def integer(name: str, description: str) -> Column:
    return Column(name, pa.int64(), description)


def real(name: str, description: str) -> Column:
    return Column(name, pa.float64(), description)


def flag(name: str, description: str) -> Column:
    return Column(name, pa.bool_(), description)


def hour(description: str = "start of the UTC hour") -> Column:
    return Column("hour", UTC_TS, description)


def exact_seconds(name: str, description: str) -> Column:
    """A sum of PostgreSQL numeric(12,3) seconds, kept exact (sums over any range of days stay exact)."""
    return Column(name, pa.decimal128(18, 3), description)


def real4(name: str, description: str) -> Column:
    """A PostgreSQL real, kept as the same 32-bit float."""
    return Column(name, pa.float32(), description)

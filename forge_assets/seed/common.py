"""Building blocks of the data generator: vectorised random columns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg import sql

TS = pa.timestamp("us", tz="UTC")
NAIVE_TS = pa.timestamp("us")
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_UUID_HEX_POSITIONS = [*range(0, 8), *range(9, 13), *range(14, 18), *range(19, 23), *range(24, 36)]
US_PER_SECOND = 1_000_000
US_PER_DAY = 86_400 * US_PER_SECOND


@dataclass(frozen=True)
class SeedPlan:
    """What to generate: `days` whole UTC days up to `anchor`, `scale` times the default volume."""

    days: int
    scale: float
    seed: int
    anchor: datetime
    dirty: bool = False

    @property
    def first_day(self) -> datetime:
        """Midnight UTC of the first generated day."""
        end_day = self.anchor.replace(hour=0, minute=0, second=0, microsecond=0)
        return end_day - timedelta(days=self.days - 1)

    @property
    def anchor_us(self) -> int:
        return to_us(self.anchor)

    def rng(self, source: str) -> np.random.Generator:
        """An independent, reproducible random stream per source."""
        return np.random.default_rng([self.seed, sum(source.encode())])

    def count(self, per_day: float) -> int:
        """A per-day volume scaled by `scale` (at least 1)."""
        return max(1, round(per_day * self.scale))

    def day_starts_us(self) -> np.ndarray:
        """Microsecond timestamps of each generated day's midnight."""
        return to_us(self.first_day) + np.arange(self.days, dtype=np.int64) * US_PER_DAY


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch of an aware datetime."""
    return int((moment - datetime(1970, 1, 1, tzinfo=timezone.utc)) / timedelta(microseconds=1))


def timestamps(us: np.ndarray, naive: bool = False) -> pa.Array:
    """Arrow timestamps (UTC, or naive UTC wall time) from epoch microseconds; negative values are nulls."""
    us = np.asarray(us, dtype=np.int64)
    return pa.array(us, type=pa.int64(), mask=us < 0).cast(NAIVE_TS if naive else TS)


def uuid_strings(rng: np.random.Generator, n: int) -> pa.Array:
    """`n` random version-4 UUIDs as strings, vectorised."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    nibbles = np.empty((n, 32), dtype=np.uint8)
    nibbles[:, 0::2] = _HEX[raw >> 4]
    nibbles[:, 1::2] = _HEX[raw & 0x0F]
    text = np.full((n, 36), ord("-"), dtype=np.uint8)
    text[:, _UUID_HEX_POSITIONS] = nibbles
    return pa.array(text.view("S36").ravel()).cast(pa.string())


def diurnal_weights(hours: np.ndarray, peak_hour: float = 14.0, depth: float = 0.6) -> np.ndarray:
    """Relative activity by hour of day: a daily cosine with its peak at `peak_hour` UTC."""
    return 1.0 + depth * np.cos((hours - peak_hour) / 24.0 * 2 * np.pi)


def diurnal_offsets_us(rng: np.random.Generator, n: int, peak_hour: float = 14.0) -> np.ndarray:
    """`n` random offsets within a day (microseconds), denser around `peak_hour` UTC."""
    hours = np.arange(24)
    weights = diurnal_weights(hours + 0.5, peak_hour)
    chosen = rng.choice(24, size=n, p=weights / weights.sum())
    return (chosen * 3_600_000_000 + rng.integers(0, 3_600_000_000, size=n)).astype(np.int64)


def daily_batches(rng: np.random.Generator, plan: SeedPlan, per_day: float, build, peak_hour: float = 14.0):
    """Per generated day, a Poisson number (mean `per_day` x scale) of diurnal timestamps before the anchor,
    passed to `build(timestamps_us)`; yields what it returns (days without events are skipped)."""
    for day_start in plan.day_starts_us():
        at = day_start + np.sort(diurnal_offsets_us(rng, rng.poisson(plan.count(per_day)), peak_hour))
        at = at[at < plan.anchor_us]
        if len(at):
            yield build(at)


def pick(rng: np.random.Generator, values: list[str], n: int, p: list[float] | None = None) -> np.ndarray:
    """`n` draws from `values` with probabilities `p` (normalised)."""
    probs = None if p is None else np.asarray(p, dtype=float) / np.sum(p)
    return np.asarray(values, dtype=object)[rng.choice(len(values), size=n, p=probs)]


def concat(*parts) -> pa.Array:
    """Element-wise string concatenation of arrays and scalars (builds JSON/text columns without loops)."""
    arrays = [p if isinstance(p, str) else pc.cast(p, pa.string()) for p in parts]
    return pc.binary_join_element_wise(*arrays, "")


def reset_sequences(conn: psycopg.Connection) -> None:
    """Move every serial/identity sequence of the current schema past the ids loaded explicitly."""
    rows = conn.execute(
        "SELECT c.relname, a.attname FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid "
        "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition "
        "AND a.attnum > 0 AND NOT a.attisdropped "
        "AND pg_get_serial_sequence(format('%I', c.relname), a.attname) IS NOT NULL"
    ).fetchall()
    for table, column in rows:
        statement = sql.SQL(
            "SELECT setval(pg_get_serial_sequence(%s, %s), coalesce(max({column}), 0) + 1, false) FROM {table}"
        ).format(column=sql.Identifier(column), table=sql.Identifier(table))
        conn.execute(statement, (sql.Identifier(table).as_string(conn), column))

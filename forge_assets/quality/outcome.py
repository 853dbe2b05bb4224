"""What one check found: failing rows, their share, a few sample values, the query, or why it could not run."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from forge_assets.conninfo import redact

MAX_SAMPLES = 20


def sample_value(value: Any) -> str | int | float | bool | None:
    """A JSON-friendly rendering of one sampled value (timestamps and decimals as text)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list | tuple):
        return " | ".join(str(sample_value(v)) for v in value)
    if isinstance(value, dict):
        return " | ".join(f"{k}={sample_value(v)}" for k, v in value.items())
    return str(value)


@dataclass(frozen=True)
class Outcome:
    """The result of one check. `error` set means the check itself broke: its data verdict is unknown."""

    check: str
    passed: bool
    failing: int
    total: int | None
    query: str
    engine: str
    samples: tuple = ()
    error: str | None = None
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def broken(self) -> bool:
        return self.error is not None

    @property
    def percent(self) -> float | None:
        """Failing rows as a percentage of the rows looked at (None when that is unknown or zero)."""
        if not self.total:
            return None
        return round(100.0 * self.failing / self.total, 6)

    def metadata(self) -> dict[str, Any]:
        """Plain values for a check result: counts, percent, up to 20 samples, the query, the engine."""
        values: dict[str, Any] = {
            "failing_count": self.failing,
            "failing_percent": self.percent if self.percent is not None else 0.0,
            "rows_checked": self.total if self.total is not None else -1,
            "sample_values": [sample_value(v) for v in self.samples[:MAX_SAMPLES]],
            "query": self.query,
            "engine": self.engine,
            "seconds": round(self.seconds, 3),
            **self.details,
        }
        if self.error is not None:
            values["error"] = redact(self.error)
        return values


def broken(check: str, query: str, engine: str, error: BaseException | str, seconds: float = 0.0) -> Outcome:
    """An outcome for a check that could not run (the message is redacted of passwords)."""
    message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return Outcome(check=check, passed=False, failing=0, total=None, query=query, engine=engine,
                   error=redact(" ".join(message.split()))[:2000], seconds=seconds)

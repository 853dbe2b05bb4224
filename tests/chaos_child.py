"""One archive or restore of one (entry, day), in a process of its own, for the chaos test to kill.

Usage: python chaos_child.py '<json>' with keys mode (archive | restore), conninfo, entry, day, lake, now.
Exit 0 with rows on stdout, 3 with the error's type and message on stderr.
"""

import json
import sys
from datetime import date, datetime

import psycopg

from forge_assets.retention.catalog import CATALOG
from forge_assets.retention.engine import archive_day, restore_day


def main() -> int:
    spec = json.loads(sys.argv[1])
    entry = next(e for e in CATALOG if e.key == spec["entry"])
    try:
        with psycopg.connect(spec["conninfo"], application_name="forge-chaos-child") as conn:
            if spec["mode"] == "archive":
                rows = archive_day(conn, entry, date.fromisoformat(spec["day"]), spec["lake"],
                                   datetime.fromisoformat(spec["now"]), wait=True).rows
            else:
                rows = restore_day(conn, entry, date.fromisoformat(spec["day"]), spec["lake"])
    except Exception as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 3
    print(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

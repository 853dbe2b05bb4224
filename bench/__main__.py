"""python -m bench <benchmark> [options]: rollups, archive, checks."""

import sys

from bench import archive, checks, rollups

BENCHMARKS = {"rollups": rollups.main, "archive": archive.main, "checks": checks.main}


def main() -> None:
    name, *rest = sys.argv[1:] or ["rollups"]  # `make bench` runs both: see the Makefile
    if name not in BENCHMARKS:
        sys.exit(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
    BENCHMARKS[name](rest)


if __name__ == "__main__":
    main()

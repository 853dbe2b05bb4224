"""python -m bench <benchmark> [options]: rollups (more come with the retention engine)."""

import sys

from bench import rollups

BENCHMARKS = {"rollups": rollups.main}


def main() -> None:
    name, *rest = sys.argv[1:] or ["rollups"]
    if name not in BENCHMARKS:
        sys.exit(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
    BENCHMARKS[name](rest)


if __name__ == "__main__":
    main()

"""python -m bench <benchmark> [options]: rollups, archive, checks, catchup, checksum, s3, or all (`make bench`)."""

import importlib
import sys

# Imported only when chosen: the rollup benchmark pulls in pandas and Dagster (~75 MB), which must not
# count in the peak RSS of an archive benchmark's child process.
BENCHMARKS = ("rollups", "archive", "checks", "catchup", "checksum", "s3", "all")


def main() -> None:
    name, *rest = sys.argv[1:] or ["all"]
    if name not in BENCHMARKS:
        sys.exit(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
    importlib.import_module(f"bench.{name}").main(rest)


if __name__ == "__main__":
    main()

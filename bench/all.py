"""Every benchmark in one run and one results file: `make bench` (= `python -m bench all`).

    python -m bench all [--rollups "ARGS"] [--archive "ARGS"] [--checks "ARGS"] [--checksum "ARGS"]
                        [--s3 "ARGS"] [--only rollups archive ...]

Each benchmark runs as it does alone (`python -m bench <name> ARGS`, its methods in fresh child processes,
peers and ratios from the same run) but nothing is written per benchmark: the figures of all of them go
into bench/results/<date>-bench.{md,json,png}, with the machine (cores, RAM), the load average before and
after, the run's wall time and the largest peak RSS of any process of the run.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import time
from datetime import datetime, timezone
from importlib import import_module
from pathlib import Path

from bench.common import RESULTS, Section, machine

# Default sizes keep one `make bench` near 15 minutes on this 2-core machine; BENCH_ARGS takes bigger ones.
DEFAULTS = {
    "rollups": "--repeat 3",
    "archive": "--rows 1000000 --days 5 --repeat 3",  # a 200k-row day, as in issue 18
    "checks": "--rows 2000000 10000000 --repeat 1",  # pandas at 2M only (PANDAS_MAX_ROWS)
    "checksum": "--rows 1000000 --days 5 --repeat 3",  # the archive's table, reused
    "s3": "--rows 200000 --repeat 3",  # the same day to local disk and to SeaweedFS on localhost (issue 16)
}
RSS_LIMIT_MB = 256  # issue 18: every path's peak RSS
LIMITS = Path(__file__).with_name("LIMITS.md")  # what limits each miss: analysis kept by hand


def _memory_gb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024 / 1024
    return float("nan")


def _load() -> str:
    return " / ".join(f"{v:.1f}" for v in os.getloadavg())


def largest_peak_rss(value) -> float:
    """The largest `peak_rss_mb` anywhere in a benchmark's figures (each measured child reports its own)."""
    if isinstance(value, dict):  # `peak_rss_mb`, or per method (`sql_rss_mb`, `pandas_rss_mb`)
        own = [v for k, v in value.items() if str(k).endswith("rss_mb") and isinstance(v, (int, float))]
        found = [largest_peak_rss(v) for k, v in value.items() if not str(k).endswith("rss_mb")]
        return max([*found, *own, 0.0])
    if isinstance(value, list):
        return max([largest_peak_rss(v) for v in value] or [0.0])
    return 0.0


def _verdict(met: bool) -> str:
    return "met" if met else "**missed**"


def targets(sections: dict[str, Section]) -> list[str]:
    """One table of the issues' targets (18; 16 for S3) against this run's figures, met or missed."""
    rows = []
    if "archive" in sections:
        archive = sections["archive"].payload
        for scope, label in (("day", "one day"), ("table", "whole table")):
            found = archive["summary"][scope]
            ours, raw, duck = (found[m]["rows_per_s"] for m in ("archive", "raw", "duckdb"))
            rss = found["archive"]["peak_rss_mb"]
            rows.append(f"| archive + verify + purge, {label}: ≥ 0.45x raw, ≥ 1.2x DuckDB, ≤ {RSS_LIMIT_MB} MB | "
                        f"{ours / raw:.2f}x raw, {ours / duck:.2f}x DuckDB, {rss:.0f} MB | "
                        f"{_verdict(ours / raw >= 0.45 and ours / duck >= 1.2 and rss <= RSS_LIMIT_MB)} |")
        restore = archive["restore"]
        rows.append(f"| restore ≥ 1.0x the archive's rows/s, ≤ {RSS_LIMIT_MB} MB | {restore['vs_archive']:.2f}x, "
                    f"{restore['peak_rss_mb']:.0f} MB | "
                    f"{_verdict(restore['vs_archive'] >= 1.0 and restore['peak_rss_mb'] <= RSS_LIMIT_MB)} |")
    if "checksum" in sections:
        checksum = sections["checksum"].payload
        rows.append(f"| content checksum ≤ 15% of archive rows/s | {checksum['cost'] * 100:+.0f}% wall, "
                    f"{checksum['cpu_cost'] * 100:+.0f}% CPU | {_verdict(checksum['cost'] <= 0.15)} |")
    if "checks" in sections:
        peaks: dict[str, float] = {}
        for size in sections["checks"].payload["results"].values():
            for case in size["cases"].values():
                for method, summary in case["summary"].items():
                    if method != "pandas":  # the peer, not one of forge_assets' evaluators
                        peaks[method] = max(peaks.get(method, 0.0), summary["peak_rss_mb"])
        sizes = ", ".join(f"{int(r) / 1e6:g}M" for r in sections["checks"].payload["results"])
        for method, peak in peaks.items():
            rows.append(f"| checks ≤ {RSS_LIMIT_MB} MB ({sizes} rows, clean and all failing): {method} | "
                        f"{peak:,.0f} MB | {_verdict(peak <= RSS_LIMIT_MB)} |")
    if "rollups" in sections:
        rollups = sections["rollups"].payload
        compared = [r for r in rollups["results"] if "ratio" in r]
        slowest = min(compared, key=lambda r: r["ratio"])
        rows.append(f"| every rollup ≥ 2x pandas | lowest {slowest['ratio']:.1f}x ({slowest['rollup']}) | "
                    f"{_verdict(slowest['ratio'] >= 2.0)} |")
        total = rollups["postgres_seconds_all"]
        rows.append(f"| all rollups of a day < 5 s of PostgreSQL | {total:.2f} s | {_verdict(total < 5.0)} |")
    if "s3" in sections:
        s3 = sections["s3"].payload
        rss = s3["summary"]["s3"]["peak_rss_mb"]
        rows.append(f"| archive to S3 ≥ 0.8x local disk, ≤ {RSS_LIMIT_MB} MB (issue 16) | {s3['ratio']:.2f}x, "
                    f"{rss:.0f} MB | {_verdict(s3['ratio'] >= 0.8 and rss <= RSS_LIMIT_MB)} |")
    if not rows:
        return []
    return ["## Targets", "", "| target | this run | |", "|---|---|---|", *rows, "",
            "What limits each miss, profiled, and what was tried: the last section (bench/LIMITS.md).", ""]


def chart(sections: dict[str, Section], path: Path) -> None:
    """One PNG: archive rows/s by method, rollups pandas/SQL, check peak RSS, checksum cost."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [name for name in ("archive", "rollups", "checks", "checksum") if name in sections]
    if not panels:
        return
    figure, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 5), squeeze=False)
    for axis, name in zip(axes[0], panels, strict=True):
        payload = sections[name].payload
        if name == "archive":
            day = {**payload["summary"]["day"], "restore": payload["restore"]}  # restore: the archived day back
            labels = list(day)
            values = [day[m]["rows_per_s"] / 1000 for m in labels]
            axis.set_xlabel("thousand rows/s, one day (median)")
            axis.set_title("archive: one day")
        elif name == "rollups":
            compared = [r for r in payload["results"] if "ratio" in r]
            labels = [r["rollup"] for r in compared]
            values = [r["ratio"] for r in compared]
            axis.axvline(2.0, color="#c0392b", linestyle="--", linewidth=1)
            axis.set_xlabel("pandas seconds / SQL seconds (target ≥ 2)")
            axis.set_title(f"rollups: PostgreSQL {payload['postgres_seconds_all']:.1f} s for the day")
        elif name == "checks":
            labels, values = [], []
            for rows, size in payload["results"].items():
                for case, found in size["cases"].items():
                    for method, summary in found["summary"].items():
                        labels.append(f"{method}, {int(rows) / 1e6:g}M {case}")
                        values.append(summary["peak_rss_mb"])
            axis.axvline(RSS_LIMIT_MB, color="#c0392b", linestyle="--", linewidth=1)
            axis.set_xlabel("peak RSS MB (target ≤ 256)")
            axis.set_title("checks: memory")
        else:
            labels = ["without content checksum", "with content checksum"]
            values = [payload["cpu"]["without"], payload["cpu"]["with"]]
            axis.set_xlabel("CPU s, client + PostgreSQL (median)")
            axis.set_title(f"checksum: {payload['cpu_cost'] * 100:+.0f}% CPU")
        axis.barh(labels[::-1], values[::-1], color="#2a7ab9")
        axis.tick_params(axis="y", labelsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench all")
    for name, default in DEFAULTS.items():
        parser.add_argument(f"--{name}", default=default, metavar="ARGS",
                            help=f"arguments of `python -m bench {name}` (default: {default})")
    parser.add_argument("--only", nargs="+", choices=list(DEFAULTS), default=list(DEFAULTS))
    args = parser.parse_args(argv)

    began, load_before = time.perf_counter(), _load()
    header = (f"{machine()}, {_memory_gb():.0f} GB RAM; load average (1/5/15 min) {load_before} at the start")
    print(header)
    sections: dict[str, Section] = {}
    failed: dict[str, str] = {}
    for name in args.only:
        arguments = shlex.split(getattr(args, name))
        print(f"\n== python -m bench {name} {' '.join(arguments)}")
        try:
            sections[name] = import_module(f"bench.{name}").run(arguments)
        except Exception as exc:  # one failed benchmark must not lose the figures of the others
            failed[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            print(f"{name} FAILED: {failed[name]}")
    minutes = (time.perf_counter() - began) / 60
    peaks = {name: largest_peak_rss(section.payload) for name, section in sections.items()}

    stamp = datetime.now(timezone.utc)
    path = RESULTS / f"{stamp:%Y-%m-%d}-bench.md"
    lines = [
        f"# Benchmarks, {stamp:%Y-%m-%d %H:%M} UTC: one run of `make bench`",
        "",
        f"{header}, {_load()} at the end; {minutes:.0f} minutes. Every ratio compares methods measured in this "
        "run; every peak RSS is one measured process's VmHWM (PostgreSQL's own processes not included).",
        "",
        "| benchmark | arguments | largest peak RSS of its processes |",
        "|---|---|---:|",
        *(f"| {name} | `{getattr(args, name)}` | {peaks[name]:,.0f} MB |" for name in sections),
        *(f"| {name} | `{getattr(args, name)}` | **failed**: {error} |" for name, error in failed.items()),
        "",
        f"![every benchmark]({path.with_suffix('.png').name})",
        "",
        *targets(sections),
    ]
    for section in sections.values():  # each benchmark's title becomes a section; the one chart replaces theirs
        lines += ["#" + "\n".join(line for line in section.markdown.strip().splitlines()
                                    if not line.startswith("![")), ""]
    lines.append(LIMITS.read_text())
    markdown = "\n".join(lines)
    RESULTS.mkdir(exist_ok=True)
    path.write_text(markdown)
    payload = {"machine": machine(), "memory_gb": _memory_gb(), "taken_at": stamp.isoformat(),
               "load_before": load_before, "load_after": _load(), "minutes": minutes, "largest_peak_rss_mb": peaks,
               "arguments": {name: getattr(args, name) for name in sections}, "failed": failed,
               **{name: section.payload for name, section in sections.items()}}
    path.with_suffix(".json").write_text(json.dumps(payload, indent=2, default=str))
    chart(sections, path.with_suffix(".png"))
    print("\n" + markdown)
    print(f"written: {path} (+ .json, .png)")
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")

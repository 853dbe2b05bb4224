"""The report `make bench` writes after its runs (bench/all.py): a slip there loses a 20-minute run's figures,
so it is checked on payloads shaped like the benchmarks' own (sizes as int keys, as the checks benchmark keeps
them in memory)."""

from bench.all import largest_peak_rss, targets
from bench.common import Section


def _payloads() -> dict[str, Section]:
    def method(rows_per_s, rss):
        return {"rows_per_s": rows_per_s, "peak_rss_mb": rss}

    scope = {"raw": method(500_000, 0), "duckdb": method(150_000, 600), "archive": method(100_000, 230)}
    return {
        "archive": Section("archive", {"summary": {"day": scope, "table": {**scope, "archive": method(240_000, 260)}},
                                       "restore": {"vs_archive": 1.1, "peak_rss_mb": 200}}, ""),
        "checks": Section("checks", {"results": {2_000_000: {"cases": {"clean": {"summary": {
            "gx": {"peak_rss_mb": 281.0}, "sql": {"peak_rss_mb": 90.0}, "pandas": {"peak_rss_mb": 1500.0}}}}},
            10_000_000: {"cases": {"clean": {"summary": {"gx": {"peak_rss_mb": 282.0}, "sql": {"peak_rss_mb": 91.0}}}}}}},
            ""),
        "checksum": Section("checksum", {"cost": 0.12, "cpu_cost": 0.4}, ""),
        "rollups": Section("rollups", {"results": [{"rollup": "a", "ratio": 3.0, "sql_rss_mb": 140},
                                                   {"rollup": "b", "ratio": 1.5, "pandas_rss_mb": 700},
                                                   {"rollup": "c", "sql_rss_mb": 150}],
                                       "postgres_seconds_all": 4.2}, ""),
        "s3": Section("s3", {"ratio": 0.83, "summary": {"s3": {"peak_rss_mb": 255}, "local": {"peak_rss_mb": 218}}}, ""),
    }


def test_the_largest_peak_rss_is_found_under_any_keys():
    sections = _payloads()
    assert {name: largest_peak_rss(s.payload) for name, s in sections.items()} == {
        "archive": 600, "checks": 1500.0, "checksum": 0.0, "rollups": 700, "s3": 255}


def test_every_target_is_met_or_missed_by_the_runs_own_figures():
    table = "\n".join(targets(_payloads()))
    expected = {
        "archive + verify + purge, one day": "0.20x raw, 0.67x DuckDB, 230 MB | **missed**",
        "archive + verify + purge, whole table": "0.48x raw, 1.60x DuckDB, 260 MB | **missed**",
        "restore ≥ 1.0x": "1.10x, 200 MB | met",
        "content checksum": "+12% wall, +40% CPU | met",
        "(2M, 10M rows, clean and all failing): gx": "282 MB | **missed**",
        "(2M, 10M rows, clean and all failing): sql": "91 MB | met",
        "every rollup ≥ 2x pandas": "lowest 1.5x (b) | **missed**",
        "< 5 s of PostgreSQL": "4.20 s | met",
        "archive to S3": "0.83x, 255 MB | met",
    }
    for target, verdict in expected.items():
        assert any(target in line and line.endswith(f"| {verdict} |") for line in table.splitlines()), (target, table)
    assert "pandas" not in table.split("every rollup")[0]  # the checks' peer is no target

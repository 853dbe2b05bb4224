"""Soak (opt-in: `make soak`): archive days of a table again and again while a writer inserts into them
continuously. Nothing is lost, nothing is archived twice, no deadlock; insert latency is reported."""

import os
import statistics
import threading
import time
from collections import Counter

import pytest
from helpers import NOW, conn_to, day_keys_in_ledgered_files, day_keys_in_postgres, history

from forge_assets.days import day_window
from forge_assets.db import drop_source_databases
from forge_assets.retention.catalog import entries
from forge_assets.retention.engine import archive_day, overdue_days

EVENTS = entries("orchestry", "events")[0]
SECONDS = float(os.environ.get("SOAK_SECONDS", "180"))  # not FORGE_*: conftest clears those


@pytest.mark.soak
def test_archive_while_a_writer_inserts(settings, tmp_path_factory):
    target = history(settings, tmp_path_factory, sources=("orchestry",), days=45)
    try:
        with conn_to(target, "orchestry") as conn:
            days = overdue_days(conn, EVENTS, NOW)[-4:]
        inserted: Counter = Counter()
        latencies: list[float] = []
        stop = threading.Event()
        failures: list[BaseException] = []

        def writer():
            try:
                with conn_to(target, "orchestry", autocommit=True) as conn:
                    n = 0
                    while not stop.is_set():
                        day = days[n % len(days)]
                        began = time.perf_counter()
                        (key,) = conn.execute(
                            "INSERT INTO events (event_type, message, severity, timestamp) VALUES "
                            "('health', 'soak', 'info', %s + %s * interval '1 second') RETURNING id",
                            (day_window(day, day)[0], n % 86_400)).fetchone()
                        latencies.append(time.perf_counter() - began)
                        inserted[day] += 1
                        n += 1
            except BaseException as exc:  # reported by the main thread
                failures.append(exc)

        thread = threading.Thread(target=writer)
        with conn_to(target, "orchestry") as archiver:
            archiver.execute("SET lock_timeout = '30s'")
            archiver.commit()
            before = {day: day_keys_in_postgres(archiver, EVENTS, day) for day in days}
            thread.start()
            passes = moved = 0
            deadline = time.monotonic() + SECONDS
            while time.monotonic() < deadline and not failures:
                for day in days:
                    moved += archive_day(archiver, EVENTS, day, target.lake_root, NOW, wait=True).rows
                passes += 1
                time.sleep(0.2)
            stop.set()
            thread.join(timeout=60)
            assert not thread.is_alive() and not failures, failures
            for day in days:
                moved += archive_day(archiver, EVENTS, day, target.lake_root, NOW, wait=True).rows
            for day in days:
                assert not day_keys_in_postgres(archiver, EVENTS, day)
                files = day_keys_in_ledgered_files(archiver, EVENTS, day, target.lake_root)
                assert max(files.values()) == 1, "a row archived twice"
                assert sum(files.values()) == sum(before[day].values()) + inserted[day], "a row lost"
        total = sum(inserted.values())
        quantiles = statistics.quantiles(latencies, n=100)
        print(f"\nsoak: {SECONDS:.0f} s, {passes} archive passes over {len(days)} days, {total:,} rows inserted "
              f"({total / SECONDS:,.0f}/s), {moved:,} rows archived; insert latency p50 {quantiles[49] * 1e3:.2f} ms, "
              f"p99 {quantiles[98] * 1e3:.2f} ms, max {max(latencies) * 1e3:.1f} ms")
    finally:
        drop_source_databases(target)

"""The Dagster UI in a real browser (Playwright from PyPI driving Debian's chromium), started as `forge-assets
dev` on a small seeded, rolled-up and archived database: what a person sees is what the ledger says. Also:
`forge-assets dev` stops cleanly on SIGTERM and SIGINT, even when started in the background with both
signals ignored (as a non-interactive shell does). Screenshots land in tests/screenshots/ (gitignored)."""

import os
import re
import shutil
import signal
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from conftest import ANCHOR
from dagster import DagsterInstance
from helpers import free_port, history, ledger, start_dev, stop_dev

from forge_assets.assets.ledger import report_to_dagster
from forge_assets.config import SOURCES
from forge_assets.db import drop_source_databases
from forge_assets.instance import instance_config, storage_url
from forge_assets.retention.backlog import archive_source
from forge_assets.retention.catalog import entries

pytestmark = pytest.mark.browser

CLI = str(Path(sys.executable).with_name("forge-assets"))
SHOTS = Path(__file__).resolve().parent / "screenshots"
DAYS = 12
GROUPS = [f"{source}_{kind}" for source in SOURCES for kind in ("source", "rollups", "archive")]
ARCHIVED = entries("goforge", "container_metrics")[0]


@pytest.fixture(scope="module")
def archived(settings, tmp_path_factory):
    """Scratch sources with 12 small days up to the suite's anchor, every rollup of those days materialized (with
    its checks) and every overdue day archived and reported, in a Dagster instance stored in PostgreSQL."""
    target = history(settings, tmp_path_factory, days=DAYS, anchor=ANCHOR)
    home = tmp_path_factory.mktemp("browser_dagster_home")
    (home / "dagster.yaml").write_text(yaml.safe_dump(instance_config()))
    first = (ANCHOR - timedelta(days=DAYS)).date()
    env = {**os.environ, "DAGSTER_HOME": str(home), "DAGSTER_PG_URL": storage_url(target),
           "FORGE_DB_PREFIX": target.database_prefix, "FORGE_LAKE_URI": str(target.lake_root),
           "FORGE_START_DATE": first.isoformat()}
    saved = {k: os.environ.get(k) for k in ("DAGSTER_HOME", "DAGSTER_PG_URL")}
    os.environ.update({k: env[k] for k in saved})
    try:
        from forge_assets.definitions import build_definitions
        from forge_assets.resources.parquet_lake import ParquetLake
        from forge_assets.resources.postgres import PostgresResource

        resources = {"postgres": PostgresResource(home=str(target.home), server_url=target.server_url,
                                                  database_prefix=target.database_prefix),
                     "lake": ParquetLake(root=str(target.lake_root))}
        last = (ANCHOR - timedelta(days=1)).date()
        with DagsterInstance.get() as instance:
            rollups = build_definitions(resources).resolve_job_def("rollups").execute_in_process(
                instance=instance, raise_on_error=False,
                tags={"dagster/asset_partition_range_start": first.isoformat(),
                      "dagster/asset_partition_range_end": last.isoformat()})
            assert rollups.success
        for source in SOURCES:  # everything overdue now: the dev daemon's sensor then has nothing to launch
            report_to_dagster(target, archive_source(target, source, datetime.now(timezone.utc)), "demo")
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    yield target, env
    drop_source_databases(target)


@pytest.fixture(scope="module")
def dev(archived, tmp_path_factory):
    target, env = archived
    port = free_port()
    log = tmp_path_factory.mktemp("dev") / "dev.log"
    process = start_dev(env, port, log)
    yield f"http://127.0.0.1:{port}", process, log
    if process.poll() is None:
        stop_dev(process, signal.SIGKILL)


@pytest.fixture(scope="module")
def page(dev):
    playwright = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it: apt-get install -y chromium)")
    SHOTS.mkdir(exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        tab = browser.new_page(viewport={"width": 1600, "height": 1000})
        tab.set_default_timeout(60_000)
        tab.goto(dev[0])
        skip = tab.get_by_role("button", name="Skip")
        skip.wait_for()
        skip.click()  # the first-visit "Join the Dagster community" dialog
        yield tab
        browser.close()


def _shot(page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _see(page, text: str, name: str, exact: bool = True) -> None:
    """Wait until `text` is visible; on a timeout keep a screenshot of what was shown instead."""
    try:
        page.get_by_text(text, exact=exact).first.wait_for()
    except Exception:
        _shot(page, f"{name}_FAILED")
        (SHOTS / f"{name}_FAILED.txt").write_text(page.inner_text("body"))
        raise


def test_lineage_shows_every_group(page, dev):
    page.goto(f"{dev[0]}/asset-groups")
    for group in GROUPS:
        _see(page, group, "lineage")
    _shot(page, "lineage")


def test_archive_asset_shows_its_archived_partitions_and_plots(page, dev, archived):
    target, _ = archived
    days = sorted({day.isoformat() for day, _, _, restored in ledger(target, ARCHIVED) if restored is None})
    assert len(days) >= 3
    base = f"{dev[0]}/assets/archive/{ARCHIVED.source}/{ARCHIVED.entry_name}"
    page.goto(f"{base}?view=partitions")
    _see(page, re.compile(r"Materialized \(\d+\)"), "archive_partitions")
    shown = int(re.search(r"Materialized \((\d+)\)", page.inner_text("body"))[1])
    assert shown >= len(days)  # the dev daemon's sensor may have archived a day that became overdue since
    _shot(page, "archive_partitions")
    page.goto(base)
    page.get_by_text("Plots", exact=True).first.click()
    for name in ("rows", "bytes", "rows_per_second"):
        _see(page, name, "archive_plots")
    _shot(page, "archive_plots")


def test_rollup_shows_its_checks(page, dev):
    page.goto(f"{dev[0]}/assets/container_metrics_hourly?view=checks")
    for check in ("reconciliation", "sanity"):
        _see(page, check, "rollup_checks")
    _see(page, "Passed", "rollup_checks", exact=False)
    _shot(page, "rollup_checks")


def test_automation_page_shows_the_sensor_ticking(page, dev):
    """The daemon's retention sensor has ticked: its page lists evaluations with what each requested."""
    page.goto(f"{dev[0]}/overview/automation")
    page.get_by_text("retention_sensor", exact=True).first.click()
    _see(page, "Every 60 s: reconciles the archive ledger", "sensor_ticks", exact=False)
    deadline = time.monotonic() + 150
    while not page.get_by_text(re.compile(r"^\d+ runs? requested$")).count():
        if time.monotonic() > deadline:
            _see(page, re.compile(r"^\d+ runs? requested$"), "sensor_ticks")
        time.sleep(5)
        page.reload()
        _see(page, "Every 60 s: reconciles the archive ledger", "sensor_ticks", exact=False)
    _shot(page, "sensor_ticks")


def test_dev_stops_cleanly_on_sigterm_and_sigint(dev, archived, tmp_path):
    """SIGTERM stops the `forge-assets dev` of the tests above (webserver, daemon, code servers all exit);
    then a second one, started the same way, stops on SIGINT."""
    _, process, _ = dev
    assert stop_dev(process, signal.SIGTERM), "forge-assets dev did not stop on SIGTERM"
    assert process.returncode is not None
    second = start_dev(archived[1], free_port(), tmp_path / "dev.log")
    assert stop_dev(second, signal.SIGINT), "forge-assets dev did not stop on SIGINT"

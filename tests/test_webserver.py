"""The Dagster web UI, started as an operator would (instance in PostgreSQL), answers its GraphQL API with the
project's assets, checks, schedules and sensors."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from forge_assets.instance import instance_config, storage_url
from forge_assets.retention.catalog import CATALOG

QUERY = """
{
  repositoriesOrError {
    ... on RepositoryConnection {
      nodes {
        name
        schedules { name scheduleState { status } }
        sensors { name sensorState { status } }
        assetNodes { assetKey { path } hasAssetChecks }
      }
    }
  }
}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, body: bytes | None = None) -> bytes:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:  # loopback only
        return response.read()


@pytest.fixture(scope="module")
def webserver(settings, tmp_path_factory):
    home = tmp_path_factory.mktemp("webserver_home")
    (home / "dagster.yaml").write_text(yaml.safe_dump(instance_config()))
    port = _free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "DAGSTER_PG_URL": storage_url(settings)}
    binary = Path(sys.executable).with_name("dagster-webserver")
    log = (home / "webserver.log").open("w")
    process = subprocess.Popen([str(binary), "-m", "forge_assets.definitions", "-h", "127.0.0.1", "-p", str(port)],
                               env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            try:
                _get(f"{base}/server_info")
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"webserver did not start: {(home / 'webserver.log').read_text()[-2000:]}")
                time.sleep(0.5)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_graphql_lists_assets_schedules_and_sensors(webserver):
    answer = json.loads(_get(f"{webserver}/graphql", json.dumps({"query": QUERY}).encode()))
    (repository,) = answer["data"]["repositoriesOrError"]["nodes"]
    keys = {"/".join(node["assetKey"]["path"]) for node in repository["assetNodes"]}
    assert {f"archive/{e.source}/{e.entry_name}" for e in CATALOG} <= keys
    assert {"job_duration_by_template", "forge/main_jobevent"} <= keys
    assert {node["assetKey"]["path"][-1] for node in repository["assetNodes"] if node["hasAssetChecks"]} >= {
        "main_jobevent", "job_duration_by_template", "sessions"}
    schedules = {s["name"]: s["scheduleState"]["status"] for s in repository["schedules"]}
    assert schedules == {"rollups_daily": "RUNNING", "checks_daily": "RUNNING", "prune_dagster_storage_daily": "RUNNING"}
    sensors = {s["name"]: s["sensorState"]["status"] for s in repository["sensors"]}
    assert sensors == {"retention_sensor": "RUNNING", "cleanup_failure_sensor": "RUNNING"}

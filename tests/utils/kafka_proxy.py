"""Count the Kafka requests a client really sends: a TCP proxy in front of a broker that reads the api key of
every request frame (4-byte size, then int16 api_key, int16 api_version, ...).

The broker must advertise the proxy's address, or clients would follow the metadata past it to the broker
itself; `tansu_behind_proxy` starts tansu that way.
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from console.sandbox.broker import tansu_binary
from console.sandbox.ports import free_port, wait_for_port

API_NAMES = {0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata", 8: "OffsetCommit", 9: "OffsetFetch",
             10: "FindCoordinator", 11: "JoinGroup", 14: "SyncGroup", 15: "DescribeGroups", 16: "ListGroups",
             18: "ApiVersions", 19: "CreateTopics", 21: "DeleteRecords"}


@dataclass
class CountingProxy:
    listen_port: int
    upstream: tuple[str, int]
    counts: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _server: socket.socket | None = None
    _sockets: list[socket.socket] = field(default_factory=list)

    def start(self) -> None:
        server = socket.create_server(("127.0.0.1", self.listen_port))
        self._server = server
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        assert self._server is not None
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            broker = socket.create_connection(self.upstream)
            self._sockets += [client, broker]
            threading.Thread(target=self._requests, args=(client, broker), daemon=True).start()
            threading.Thread(target=self._pipe, args=(broker, client), daemon=True).start()

    def _requests(self, source: socket.socket, sink: socket.socket) -> None:
        """Forward client -> broker bytes, counting each request frame by its api key. A frame is counted before
        it is forwarded, so the client cannot see the answer (and the test call `take`) before it is counted."""
        buffer = b""
        try:
            while chunk := source.recv(65536):
                buffer += chunk
                while len(buffer) >= 6:
                    (size,) = struct.unpack(">i", buffer[:4])
                    if len(buffer) < 4 + size:
                        break
                    (api_key,) = struct.unpack(">h", buffer[4:6])
                    with self.lock:
                        self.counts[API_NAMES.get(api_key, str(api_key))] += 1
                    buffer = buffer[4 + size:]
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            _close(sink)

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            _close(sink)

    def take(self) -> Counter[str]:
        """The counts so far, and start counting afresh."""
        with self.lock:
            taken, self.counts = self.counts, Counter()
        return taken

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for s in self._sockets:
            _close(s)


def _close(s: socket.socket) -> None:
    with suppress(OSError):
        s.close()


@contextmanager
def tansu_behind_proxy(workdir: Path) -> Iterator[tuple[str, CountingProxy]]:
    """tansu listening on one port and advertising the proxy's; yields (bootstrap via the proxy, proxy)."""
    broker_port, proxy_port = free_port(), free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    with open(workdir / "broker.log", "ab") as log:
        process = subprocess.Popen(
            [tansu_binary(), "broker", "--listener-url", f"tcp://127.0.0.1:{broker_port}",
             "--advertised-listener-url", f"tcp://127.0.0.1:{proxy_port}", "--storage-engine", "memory://tansu/"],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "RUST_LOG": "warn"}, start_new_session=True)
    proxy = CountingProxy(proxy_port, ("127.0.0.1", broker_port))
    try:
        if not wait_for_port("127.0.0.1", broker_port, 20):
            raise RuntimeError(f"tansu did not start: {(workdir / 'broker.log').read_text()[-2000:]}")
        proxy.start()
        yield f"127.0.0.1:{proxy_port}", proxy
    finally:
        proxy.stop()
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

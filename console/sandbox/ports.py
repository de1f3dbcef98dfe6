"""Loopback port helpers shared by the broker, the sidecars and the supervisor."""

from __future__ import annotations

import random
import socket
import time
from pathlib import Path

EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST_PICKED_PORT = 10000
HANDED_OUT_HOLD_S = 120.0  # a picked port is usually bound within seconds; never hand it out twice meanwhile

_handed_out: dict[int, float] = {}  # port -> monotonic time this process picked it


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range for outgoing connections' local ports (Linux default 32768-60999)."""
    try:
        low, high = (int(v) for v in EPHEMERAL_RANGE_FILE.read_text().split())
    except (OSError, ValueError):
        return 32768, 60999
    return low, high


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, below the ephemeral range.

    A port the OS hands out for bind(0) comes from the ephemeral range, and between choosing it and
    the child process binding it, any outgoing connection (a probe, a Kafka client) may take it as
    its local port: the child then dies with EADDRINUSE. Ports below that range are never chosen
    for outgoing connections, so only another listener can take them.

    A port stays free until its user binds it, so two picks in a row (a broker's port, then a
    sidecar's) could both land on it: a port handed out in the last `HANDED_OUT_HOLD_S` seconds is
    never handed out again by this process.
    """
    now = time.monotonic()
    for port, at in list(_handed_out.items()):
        if now - at > HANDED_OUT_HOLD_S:
            del _handed_out[port]
    low, _ = ephemeral_range()
    for _ in range(200):
        port = random.randint(LOWEST_PICKED_PORT, max(LOWEST_PICKED_PORT, low - 1))  # noqa: S311 (spreading ports, not secrecy)
        if port not in _handed_out and port_is_free(port):
            _handed_out[port] = now
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # a crowded machine: let the OS pick
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    """A server could bind 127.0.0.1:port now (with SO_REUSEADDR, as uvicorn and tansu do)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_for_port(host: str, port: int, timeout: float) -> bool:
    """Poll until something accepts TCP connections on host:port; False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.02)
    return False

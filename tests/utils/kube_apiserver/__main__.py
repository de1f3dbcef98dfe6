"""Serve the stand-in cluster from a separate process (the benchmark, README examples by hand).

    python -m tests.utils.kube_apiserver --fixture prod --kubeconfig /tmp/kubeconfig

writes the kubeconfig once the server listens, prints its URL, and serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from tests.utils.kube_apiserver.cluster import StandInCluster


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.utils.kube_apiserver")
    parser.add_argument("--fixture", choices=("prod", "large"), default="prod")
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    cluster = StandInCluster.large() if args.fixture == "large" else StandInCluster.prod()
    cluster.server.port = args.port
    cluster.start()
    cluster.kubeconfig(args.kubeconfig)
    print(f"serving {args.fixture} at {cluster.server.url}; kubeconfig {args.kubeconfig}", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A stand-in Kubernetes API server for the console's tests (no real cluster can run on these machines).

Written against the API server's wire contract and exercised only through the official `kubernetes`
client: see `cluster.StandInCluster` for what it serves and `server` for the protocol it speaks.
"""

from tests.utils.kube_apiserver.cluster import ADMIN_TOKEN, VIEWER_TOKEN, StandInCluster

__all__ = ["ADMIN_TOKEN", "VIEWER_TOKEN", "StandInCluster"]

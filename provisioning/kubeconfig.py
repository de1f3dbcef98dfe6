"""Kubeconfigs for the cluster: OKE's own, and a ServiceAccount-token one for CI and the console.

OKE's kubeconfig (from `create_kubeconfig`) runs `oci ce cluster generate-token` for every connection; a
long-running console or a CI job then depends on the OCI CLI and its session, and the exec plugin hangs
when that session has expired. The ServiceAccount kubeconfig carries a token from the Kubernetes
TokenRequest API instead (expiring after `duration`), obtained once with an OKE token minted in-process.
"""

from __future__ import annotations

import base64
import re
import tempfile
from pathlib import Path
from typing import Any

import urllib3
import yaml

MIN_DURATION_S = 600  # the TokenRequest API's minimum
_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class KubeconfigError(Exception):
    """One line for the operator: what failed and what to do."""


def parse_duration(text: str) -> int:
    """'8h', '30m', '3600s', '7d' -> seconds; at least 10 minutes (the API's minimum)."""
    match = _DURATION.match(text.strip())
    if not match:
        raise KubeconfigError(f"duration {text!r}: expected a number and a unit (s, m, h, d), e.g. 8h")
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds < MIN_DURATION_S:
        raise KubeconfigError(f"duration {text!r}: tokens last at least 10m")
    return seconds


def cluster_endpoint(oci_kubeconfig: str) -> tuple[str, str]:
    """(server URL, base64 CA bundle) of the current context's cluster in OKE's kubeconfig."""
    try:
        config = yaml.safe_load(oci_kubeconfig)
        contexts = {c["name"]: c["context"] for c in config.get("contexts") or ()}
        current = contexts.get(config.get("current-context"), {})
        clusters = {c["name"]: c["cluster"] for c in config["clusters"]}
        cluster = clusters.get(current.get("cluster")) or next(iter(clusters.values()))
        return str(cluster["server"]), str(cluster["certificate-authority-data"])
    except (yaml.YAMLError, KeyError, TypeError, AttributeError, StopIteration) as exc:
        raise KubeconfigError(f"OKE returned a kubeconfig this tool cannot read ({exc})") from None


def service_account_token(server: str, ca_data: str, bearer: str, namespace: str, name: str,
                          duration_s: int) -> tuple[str, str]:
    """(token, expiry) from the TokenRequest API for ServiceAccount namespace/name."""
    from kubernetes import client as k8s  # seconds to import: only the kubeconfig command needs it

    with tempfile.TemporaryDirectory(prefix="todo-kubeconfig-") as tmp:
        ca_file = Path(tmp) / "ca.crt"
        ca_file.write_bytes(base64.b64decode(ca_data))
        configuration = k8s.Configuration()
        configuration.host = server
        configuration.ssl_ca_cert = str(ca_file)
        configuration.api_key = {"authorization": bearer}
        configuration.api_key_prefix = {"authorization": "Bearer"}
        configuration.retries = 2
        request = k8s.AuthenticationV1TokenRequest(
            api_version="authentication.k8s.io/v1", kind="TokenRequest",
            spec=k8s.V1TokenRequestSpec(audiences=[], expiration_seconds=duration_s))
        try:
            with k8s.ApiClient(configuration) as api:
                answer = k8s.CoreV1Api(api).create_namespaced_service_account_token(name, namespace, request)
        except k8s.ApiException as exc:
            raise KubeconfigError(_api_error(exc, namespace, name)) from None
        except urllib3.exceptions.HTTPError as exc:
            raise KubeconfigError(f"cannot reach the cluster at {server}: {exc}") from None
    status = answer.status
    if status is None or not status.token:
        raise KubeconfigError(f"the cluster answered the TokenRequest for {namespace}/{name} without a token")
    expiry = status.expiration_timestamp
    return status.token, expiry.isoformat() if expiry is not None else ""


def _api_error(exc: Any, namespace: str, name: str) -> str:
    if exc.status == 404:
        return (f"ServiceAccount {namespace}/{name} does not exist: apply the Kustomize deployment first "
                f"(kustomize/base has console-viewer and ci-deployer)")
    if exc.status in (401, 403):
        return (f"the cluster refused the OCI token ({exc.status} {exc.reason}): your OCI user needs a policy "
                f"allowing it to use the cluster")
    return f"TokenRequest for {namespace}/{name} failed: {exc.status} {exc.reason}"


def token_kubeconfig(server: str, ca_data: str, token: str, cluster: str, namespace: str, name: str) -> str:
    user = f"{namespace}-{name}"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {"server": server, "certificate-authority-data": ca_data}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": f"{cluster}-{user}", "context": {"cluster": cluster, "user": user,
                                                              "namespace": namespace}}],
        "current-context": f"{cluster}-{user}",
    }
    return yaml.safe_dump(config, sort_keys=False)

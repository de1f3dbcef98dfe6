"""A Kubernetes API server stand-in for the one thing the ServiceAccount kubeconfig needs: TokenRequest.

HTTPS with a CA made per test (the kubeconfig's certificate-authority-data must really verify), and
OKE's authentication: a bearer token must be an OKE cluster token (a signed cluster_request URL) made
with the test API key for this cluster. TokenRequest answers `authentication.k8s.io/v1` TokenRequest
objects; the ServiceAccount tokens it issues then work for reading pods in their namespace, so a test can
prove the kubeconfig it got is usable. Errors are Kubernetes `Status` objects.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import re
import secrets
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.provisioning.oci_standin.signing import ApiKey, SignatureRejected, verify_cluster_token
from tests.utils.local_server import LocalServer, read_body, reply

_TOKEN_PATH = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/serviceaccounts/(?P<name>[^/]+)/token$")
_PODS_PATH = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/pods$")


def _certificates(directory: Path) -> tuple[Path, Path, str]:
    """(server cert file, server key file, base64 CA PEM) for 127.0.0.1, signed by a fresh CA."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stand-in cluster CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    cert_file, key_file = directory / "apiserver.crt", directory / "apiserver.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file, base64.b64encode(ca.public_bytes(serialization.Encoding.PEM)).decode()


@dataclass
class KubeStandIn:
    key: ApiKey
    region: str
    directory: Path
    cluster_ids: Callable[[], set[str]]  # the clusters OKE would accept a token for
    service_accounts: set[tuple[str, str]] = field(default_factory=set)
    issued: dict[str, tuple[str, str, int]] = field(default_factory=dict)  # token -> (namespace, name, seconds)
    ca_data: str = ""
    _server: LocalServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return self._server.url

    def start(self) -> KubeStandIn:
        cert_file, key_file, self.ca_data = _certificates(self.directory)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        self._server = LocalServer(self._handle, "kube-standin", tls=context)
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        raw = read_body(request)
        bearer = (request.headers.get("authorization") or "").removeprefix("Bearer ").strip()
        path = request.path.split("?", 1)[0]
        if request.command == "POST" and (match := _TOKEN_PATH.match(path)):
            status, body = self._token_request(bearer, match["ns"], match["name"], raw)
        elif request.command == "GET" and (match := _PODS_PATH.match(path)):
            status, body = self._pods(bearer, match["ns"])
        else:
            status, body = _status(404, "NotFound", f"{request.command} {path} is not served by the stand-in")
        reply(request, status, json.dumps(body).encode(), {"content-type": "application/json"})

    def _token_request(self, bearer: str, namespace: str, name: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        try:
            cluster = verify_cluster_token(self.key, bearer, self.region)
        except SignatureRejected as exc:
            return _status(401, "Unauthorized", f"OKE rejected the token: {exc}")
        if cluster not in self.cluster_ids():
            return _status(401, "Unauthorized", "the token was made for another cluster")
        try:
            body = json.loads(raw)
        except json.JSONDecodeError:
            return _status(400, "BadRequest", "the body is not JSON")
        spec = body.get("spec") if isinstance(body, dict) else None
        if body.get("apiVersion") != "authentication.k8s.io/v1" or body.get("kind") != "TokenRequest" or \
                not isinstance(spec, dict) or not isinstance(spec.get("expirationSeconds"), int):
            return _status(400, "BadRequest", "expected an authentication.k8s.io/v1 TokenRequest with "
                                              "spec.expirationSeconds")
        if spec["expirationSeconds"] < 600:
            return _status(422, "Invalid", "spec.expirationSeconds: may not specify a duration less than 10 minutes")
        if (namespace, name) not in self.service_accounts:
            return _status(404, "NotFound", f'serviceaccounts "{name}" not found')
        token = f"sa.{secrets.token_urlsafe(24)}"
        self.issued[token] = (namespace, name, spec["expirationSeconds"])
        expiry = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=spec["expirationSeconds"])
        return 201, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                     "metadata": {"name": name, "namespace": namespace}, "spec": spec,
                     "status": {"token": token, "expirationTimestamp": expiry.strftime("%Y-%m-%dT%H:%M:%SZ")}}

    def _pods(self, bearer: str, namespace: str) -> tuple[int, dict[str, Any]]:
        issued = self.issued.get(bearer)
        if issued is None:
            return _status(401, "Unauthorized", "Unauthorized")
        if issued[0] != namespace:
            return _status(403, "Forbidden", f"system:serviceaccount:{issued[0]}:{issued[1]} cannot list pods in "
                                             f"namespace {namespace}")
        return 200, {"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "1"}, "items": []}


def _status(code: int, reason: str, message: str) -> tuple[int, dict[str, Any]]:
    return code, {"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure", "message": message,
                  "reason": reason, "code": code}

"""OCI request signatures (draft-cavage HTTP signatures, version 1, rsa-sha256), checked the way OCI does.

Every request must be signed with the API key whose keyId is `tenancy/user/fingerprint` over `date`,
`(request-target)` and `host`; requests with a body (POST, PUT, PATCH) also over `content-length`,
`content-type` and `x-content-sha256`, which must match the body. The date may be off by five minutes.

Also here: the test API key (generated per test session, never committed) and the check of the OKE
cluster token (`oci ce cluster generate-token`'s base64url of a signed cluster_request URL).
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

MAX_SKEW_S = 300
GENERIC_HEADERS = ("date", "(request-target)", "host")
BODY_HEADERS = ("content-length", "content-type", "x-content-sha256")
_PARAM = re.compile(r'(\w+)="([^"]*)"')


@dataclass(frozen=True)
class ApiKey:
    """A user's API key as OCI knows it: the key id the SDK sends and the public half."""

    tenancy: str
    user: str
    fingerprint: str
    private_pem: bytes
    public_key: rsa.RSAPublicKey

    @property
    def key_id(self) -> str:
        return f"{self.tenancy}/{self.user}/{self.fingerprint}"

    @classmethod
    def generate(cls, tenancy: str, user: str) -> ApiKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public_der = key.public_key().public_bytes(serialization.Encoding.DER,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
        digest = hashlib.md5(public_der, usedforsecurity=False).hexdigest()  # OCI fingerprints are MD5
        fingerprint = ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))
        private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                        serialization.NoEncryption())
        return cls(tenancy, user, fingerprint, private_pem, key.public_key())

    def write_oci_config(self, directory: Path, region: str, profile: str = "DEFAULT") -> Path:
        """An ~/.oci/config and key file, as `oci setup config` writes them."""
        key_file = directory / "oci_api_key.pem"
        key_file.write_bytes(self.private_pem)
        key_file.chmod(0o600)
        config = directory / "config"
        config.write_text(f"[{profile}]\nuser={self.user}\nfingerprint={self.fingerprint}\n"
                          f"tenancy={self.tenancy}\nregion={region}\nkey_file={key_file}\n")
        return config


class SignatureRejected(Exception):
    """Why OCI would answer 401 NotAuthenticated."""


def verify(key: ApiKey, method: str, target: str, headers: Mapping[str, str], body: bytes,
           now: datetime | None = None) -> None:
    """Raise SignatureRejected unless the request is signed as OCI requires. `headers` keys are lower-case."""
    authorization = headers.get("authorization", "")
    if not authorization.startswith("Signature "):
        raise SignatureRejected("no Signature authorization header")
    params = dict(_PARAM.findall(authorization))
    if params.get("version") != "1" or params.get("algorithm") != "rsa-sha256":
        raise SignatureRejected("only version 1 rsa-sha256 signatures are accepted")
    if params.get("keyId") != key.key_id:
        raise SignatureRejected(f"unknown keyId {params.get('keyId')!r}")
    signed = params.get("headers", "").split()
    needed = GENERIC_HEADERS + (BODY_HEADERS if method.upper() in ("POST", "PUT", "PATCH") else ())
    missing = [name for name in needed if name not in signed]
    if missing:
        raise SignatureRejected(f"the signature does not cover {', '.join(missing)}")
    _check_date(headers.get("date", ""), now)
    if "x-content-sha256" in signed:
        digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
        if headers.get("x-content-sha256") != digest:
            raise SignatureRejected("x-content-sha256 does not match the body")
        if headers.get("content-length") != str(len(body)):
            raise SignatureRejected("content-length does not match the body")
    lines = []
    for name in signed:
        if name == "(request-target)":
            lines.append(f"(request-target): {method.lower()} {target}")
        elif name in headers:
            lines.append(f"{name}: {headers[name]}")
        else:
            raise SignatureRejected(f"signed header {name!r} is not in the request")
    try:
        key.public_key.verify(base64.b64decode(params.get("signature", "")), "\n".join(lines).encode(),
                              padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        raise SignatureRejected("the signature does not verify with the API key") from None


def _check_date(value: str, now: datetime | None) -> None:
    try:
        sent = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        raise SignatureRejected("no valid date header") from None
    skew = abs(((now or datetime.now(UTC)) - sent).total_seconds())
    if skew > MAX_SKEW_S:
        raise SignatureRejected(f"the date header is {skew:.0f}s off")


def verify_cluster_token(key: ApiKey, token: str, region: str) -> str:
    """The cluster OCID an OKE bearer token was made for; raises SignatureRejected if it is not valid."""
    try:
        url = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise SignatureRejected("the token is not base64url") from None
    parts = urlsplit(url)
    host = f"containerengine.{region}.oraclecloud.com"
    if parts.scheme != "https" or parts.netloc != host or not parts.path.startswith("/cluster_request/"):
        raise SignatureRejected(f"the token is not a {host} cluster_request URL")
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    headers = {"authorization": query.get("authorization", ""), "date": query.get("date", ""), "host": host}
    verify(key, "GET", parts.path, headers, b"")
    return parts.path.removeprefix("/cluster_request/")

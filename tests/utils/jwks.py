"""An identity provider for the tests: a real JWKS endpoint on loopback (RFC 7517 JSON over HTTP, as
Auth0, Keycloak or Entra ID serve it) and the private keys to sign the tokens it would issue.

It can publish a key only later (rotation), stall its answers until released (a slow provider),
and counts the requests it got, so tests can see what the services fetched and when.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

ISSUER = "https://idp.example/"
AUDIENCE = "todo"
STALL_LIMIT_S = 20.0  # a stalled answer goes out by itself after this, so a broken test cannot hang


class IdentityProvider:
    def __init__(self) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.published: dict[str, dict[str, Any]] = {}
        self.requests = 0
        self.stalled = 0  # requests being held right now
        self._release = threading.Event()
        self._release.set()
        self._lock = threading.Lock()
        self.url = ""

    def publish(self, kid: str, *, kind: str = "rsa") -> None:
        """Serve the public half of the RSA or EC key under `kid` from now on."""
        if kind == "rsa":
            public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.rsa.public_key()))
            public["alg"] = "RS256"
        else:
            public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.ec.public_key()))
            public["alg"] = "ES256"
        self.published[kid] = {**public, "kid": kid, "use": "sig"}

    def token(self, sub: str = "carol", *, kid: str = "k-rsa", alg: str = "RS256", **claims: Any) -> str:
        """A token as the provider issues it; `claims` override or (with value None) drop a claim."""
        now = int(time.time())
        body = {"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 300,
                "scope": "tasks:read tasks:write", **claims}
        key = self.ec if alg.startswith("ES") else self.rsa
        return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm=alg,
                          headers={"kid": kid})

    def stall(self) -> None:
        """Hold every answer from now on until `release` (or STALL_LIMIT_S)."""
        self._release.clear()

    def release(self) -> None:
        self._release.set()

    def _answer(self) -> bytes:
        with self._lock:
            self.requests += 1
            self.stalled += 1
        try:
            self._release.wait(STALL_LIMIT_S)
        finally:
            with self._lock:
                self.stalled -= 1
        return json.dumps({"keys": list(self.published.values())}).encode()


@contextmanager
def identity_provider() -> Iterator[IdentityProvider]:
    provider = IdentityProvider()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = provider._answer()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    provider.url = f"http://127.0.0.1:{server.server_port}/.well-known/jwks.json"
    try:
        yield provider
    finally:
        provider.release()
        server.shutdown()
        server.server_close()

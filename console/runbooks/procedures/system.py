"""The Todo system a runbook works on, as a user reaches it: its URLs, a token, whose tasks they are.

On the sandbox everything comes from its directory: the URLs from the supervisor's state, a dev token minted
with the sandbox's own JWT secret for a user of the run's own (so the audit log holds only this run's entries
for it), the logs from its files. On a cluster, the public URL the ingress serves (`/api/*`, `/api/audit`,
`/ws` on one host) and a token a person got from the identity provider, read from an environment variable:
a parameter would be written into the executed notebook, and a token must never be.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from console.runbooks.procedures import ProcedureError
from console.sandbox import control
from console.sandbox.layout import SandboxLayout, default_dir
from console.sandbox.secrets import JWT_SECRET, dev_token, read_secrets
from console.target import APP_NAMESPACE, ClusterTarget, SandboxTarget, Target


@dataclass(frozen=True)
class Endpoints:
    api: str  # tasks are at {api}/tasks
    audit: str  # the audit query API
    ws: str  # the WebSocket of live updates
    backend_metrics: str | None = None  # the backend's /metrics (the sandbox: the outbox gauge)


@dataclass(frozen=True)
class System:
    label: str
    endpoints: Endpoints
    token: str
    user: str
    target: Target
    sandbox: SandboxLayout | None = None


def run_user(prefix: str) -> str:
    """A user id of this run alone: its tasks and audit entries are nobody else's."""
    return f"{prefix}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{secrets.token_hex(2)}"


def open_system(target: str, *, sandbox_dir: str = "", base_url: str = "", token_env: str = "",
                user_prefix: str = "runbook") -> System:
    """The system the runbook's parameters name: `sandbox` (a directory, default the usual one) or `cluster`."""
    if target == "sandbox":
        return sandbox_system(sandbox_dir, run_user(user_prefix))
    if target == "cluster":
        return cluster_system(base_url, token_env)
    raise ProcedureError(f"unknown target {target!r}: sandbox or cluster")


def sandbox_system(sandbox_dir: str, user: str) -> System:
    layout = SandboxLayout(Path(sandbox_dir).resolve() if sandbox_dir else default_dir())
    state = control.status(layout)
    if not state.get("up"):
        raise ProcedureError(f"no sandbox is running in {layout.root}: start one with `todo-console sandbox up`")
    urls = state.get("urls") or {}
    missing = [name for name in ("api", "ws", "audit", "backend") if name not in urls]
    if missing:
        raise ProcedureError(f"the sandbox in {layout.root} runs no {', '.join(missing)} "
                             f"(absent: {', '.join(state.get('absent') or []) or 'none'})")
    secret = read_secrets(layout.secrets).get(JWT_SECRET[0], {}).get(JWT_SECRET[1])
    if not secret:
        raise ProcedureError(f"{layout.secrets} has no JWT secret: is {layout.root} a sandbox directory?")
    endpoints = Endpoints(api=urls["api"], audit=f"{urls['audit']}/api/audit", ws=urls["ws"],
                          backend_metrics=f"{urls['backend']}/metrics")
    return System(f"sandbox {layout.root}", endpoints, dev_token(secret, user), user, SandboxTarget(layout.root),
                  layout)


def cluster_system(base_url: str, token_env: str, namespace: str = APP_NAMESPACE) -> System:
    parts = urlsplit(base_url.rstrip("/"))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ProcedureError(f"base_url {base_url!r} is not an http(s) URL (the public URL, e.g. https://todo.example.com)")
    token = os.environ.get(token_env, "") if token_env else ""
    if not token:
        raise ProcedureError(f"no token: set the environment variable {token_env or '(token_env is empty)'} "
                             "to a bearer token of the identity provider")
    base = urlunsplit(parts)
    ws = urlunsplit(("wss" if parts.scheme == "https" else "ws", parts.netloc, parts.path + "/ws", "", ""))
    endpoints = Endpoints(api=f"{base}/api", audit=f"{base}/api/audit", ws=ws)
    target = ClusterTarget(context=None, kubeconfig=None, namespace=namespace, in_cluster=False)
    return System(base, endpoints, token, token_subject(token), target)


def token_subject(token: str) -> str:
    """The user a bearer token speaks for (its `sub`); the services verify it, here it only names the user."""
    import jwt

    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise ProcedureError(f"the token is not a JWT: {exc}") from None
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise ProcedureError("the token has no `sub` claim")
    return subject

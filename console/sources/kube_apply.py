"""Server-side apply of rendered manifests: the requests `kubectl apply --server-side --force-conflicts` sends.

Each object is one PATCH of content type `application/apply-patch+yaml` to its own URL, with field manager
`todo-console` and `force=true`: the manifests in git are the truth, so a field another manager set is taken
over, as continuous deployment does. The URL comes from the API server's discovery documents, as kubectl's
REST mapper finds it, so a kind the cluster does not serve (its operator is not installed yet) is refused
before anything is applied. A dry run sends the same requests with `dryRun=All`: admission, validation and
defaulting run, nothing is stored. Whether an object was created, configured or left alone is read from the
answers: 201 is created; a changed resourceVersion (or, in a dry run, a changed object) is configured.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from console.model.rollout import revision_of
from console.sources.health import SourceError
from console.sources.kube import FIELD_MANAGER, NETWORK_ERRORS, SOURCE, request_error

APPLY_CONTENT_TYPE = "application/apply-patch+yaml"
Action = Literal["created", "configured", "unchanged"]
# What the server changes on every write and a comparison of "did this apply change anything" must ignore.
_SERVER_FIELDS = ("managedFields", "resourceVersion", "generation")


@dataclass(frozen=True)
class Applied:
    """One object as the apply (or its dry run) left it."""

    kind: str
    namespace: str | None
    name: str
    action: Action
    generation: int  # after the apply: a rollout must observe at least this one
    revision_before: int | None  # a Deployment's revision before the apply (None: it did not exist)

    @property
    def ref(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"


@dataclass(frozen=True)
class Mapping:
    """Where a kind lives in the API: `plural` under `prefix` (/api/v1 or /apis/group/version)."""

    prefix: str
    plural: str
    namespaced: bool

    def path(self, namespace: str | None, name: str) -> str:
        scope = f"/namespaces/{namespace}" if self.namespaced else ""
        return f"{self.prefix}{scope}/{self.plural}/{name}"


class ServerSideApply:
    """Applies objects to the cluster behind `api`, one request each, in the order given."""

    def __init__(self, api: client.ApiClient, *, timeout_s: float = 10.0, field_manager: str = FIELD_MANAGER) -> None:
        self._api = api
        self.address = str(api.configuration.host)
        self._timeout_s = timeout_s
        self._field_manager = field_manager
        self._discovered: dict[str, dict[str, Mapping] | None] = {}

    # --- discovery: kind -> URL, as kubectl's REST mapper ---------------------------------------------

    def mapping(self, api_version: str, kind: str) -> Mapping | None:
        """Where the cluster serves this kind, or None when it does not (no such group, version or kind)."""
        if api_version not in self._discovered:
            prefix = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
            document = self._get(prefix, f"discover {api_version}")
            self._discovered[api_version] = None if document is None else {
                r["kind"]: Mapping(prefix, r["name"], bool(r.get("namespaced")))
                for r in document.get("resources") or [] if "/" not in r.get("name", "")}
        kinds = self._discovered[api_version]
        return kinds.get(kind) if kinds is not None else None

    def unserved(self, objs: Iterable[dict[str, Any]]) -> list[str]:
        """The apiVersion/kinds among `objs` the cluster does not serve, each once."""
        missing = {(str(o.get("apiVersion")), str(o.get("kind"))) for o in objs
                   if self.mapping(str(o.get("apiVersion")), str(o.get("kind"))) is None}
        return [f"{api_version} {kind}" for api_version, kind in sorted(missing)]

    # --- apply -----------------------------------------------------------------------------------------

    def apply(self, obj: dict[str, Any], *, dry_run: bool = False) -> Applied:
        api_version, kind = str(obj.get("apiVersion")), str(obj.get("kind"))
        meta = obj.get("metadata") or {}
        name = str(meta.get("name"))
        where = self.mapping(api_version, kind)
        if where is None:
            raise SourceError(SOURCE, self.address, f"the cluster does not serve {api_version} {kind} "
                                                    "(is its operator installed? see the bootstrap-cluster runbook)")
        namespace = (meta.get("namespace") or None) if where.namespaced else None
        if where.namespaced and namespace is None:
            raise SourceError(SOURCE, self.address, f"{kind} {name} has no metadata.namespace")
        path = where.path(namespace, name)
        live = self._get(path, f"get {where.plural} {name}")
        query = [("fieldManager", self._field_manager), ("force", "true")] + ([("dryRun", "All")] if dry_run else [])
        status, answer = self._send("PATCH", path, f"apply {where.plural} {name}", query=query, body=obj)
        if status == 201 or live is None:
            action: Action = "created"
        elif dry_run:
            action = "unchanged" if _comparable(answer) == _comparable(live) else "configured"
        else:
            same = answer["metadata"].get("resourceVersion") == live["metadata"].get("resourceVersion")
            action = "unchanged" if same else "configured"
        return Applied(kind, namespace, name, action, int(answer["metadata"].get("generation") or 0),
                       revision_of(live) if live is not None and kind == "Deployment" else None)

    # --- transport -------------------------------------------------------------------------------------

    def _get(self, path: str, doing: str) -> dict[str, Any] | None:
        """The object at `path`, or None when the API server answers 404."""
        status, answer = self._send("GET", path, doing, missing_ok=True)
        return None if status == 404 else answer

    def _send(self, method: str, path: str, doing: str, *, query: list[tuple[str, str]] | None = None,
              body: dict[str, Any] | None = None, missing_ok: bool = False) -> tuple[int, dict[str, Any]]:
        """One request through the official client: (status, JSON body); `missing_ok`: a 404 is (404, {})."""
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = APPLY_CONTENT_TYPE
        try:
            request = self._api.param_serialize(method, path, query_params=query or [], header_params=headers,
                                                body=body, auth_settings=["BearerToken"])
            response = self._api.call_api(*request, _request_timeout=self._timeout_s)
            data = response.read()
            if response.status >= 400:
                if missing_ok and response.status == 404:
                    return 404, {}
                raise ApiException(http_resp=response)
            return int(response.status), json.loads(data)
        except (ApiException, *NETWORK_ERRORS, ValueError) as exc:
            raise request_error(self.address, doing, exc) from exc


def _comparable(obj: dict[str, Any]) -> dict[str, Any]:
    """The object without what every write changes on the server side (and without status)."""
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _SERVER_FIELDS}
    return {**{k: v for k, v in obj.items() if k not in ("metadata", "status")}, "metadata": meta}

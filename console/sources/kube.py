"""The Kubernetes source: with its server-side apply (console.sources.kube_apply), the only code that imports the
official `kubernetes` client.

Reads go through list-and-watch caches (`console.sources.informer`), one per kind and started on first
use, so a refresh (a CLI command, a dashboard tick) reads memory, not the API server. Each cache keeps
its own `SourceHealth`: a 403 on Certificates (the read-only console-viewer Role does not grant them)
is reported for that kind while Deployments keep working. Mutations are the requests kubectl makes:
`rollout restart` is its strategic-merge patch of the pod template's restartedAt annotation,
`rollout undo` its JSON patch back to a ReplicaSet's template (`console.model.rollout` builds both),
sent fresh to the API server, not from the cache. Everything returned is a `console.model` dataclass;
every failure is a `SourceError` naming the API server's address.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.watch.watch import iter_resp_lines

from console.model import platform as platform_model
from console.model.kube_events import EventSummary, events_by_object
from console.model.pods import PodSummary, pod_summaries, pod_summary, service_of, sort_pods, with_events
from console.model.rollout import (
    LAST_APPLIED_ANNOTATION,
    Revision,
    RolloutError,
    RolloutStatus,
    UndoPlan,
    plan_undo,
    restart_patch,
    rollout_history,
    rollout_status,
)
from console.model.wiring import Wiring, read_wiring
from console.sources.health import SourceError, SourceHealth
from console.sources.informer import Gone, Informer, Page
from console.sources.workloads import RestartResult, UndoResult, Unknown, pick
from console.target import KAFKA_NAMESPACE, ClusterTarget

SOURCE = "Kubernetes API"
FIELD_MANAGER = "todo-console"


@dataclass(frozen=True)
class KindSpec:
    """One kind the console caches: where it lives in the API and which namespace it is read in."""

    name: str
    kind: str
    group: str
    version: str
    plural: str
    in_kafka_namespace: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


KINDS: dict[str, KindSpec] = {k.name: k for k in (
    KindSpec("deployments", "Deployment", "apps", "v1", "deployments"),
    KindSpec("replicasets", "ReplicaSet", "apps", "v1", "replicasets"),
    KindSpec("pods", "Pod", "", "v1", "pods"),
    KindSpec("events", "Event", "", "v1", "events"),
    KindSpec("horizontalpodautoscalers", "HorizontalPodAutoscaler", "autoscaling", "v2", "horizontalpodautoscalers"),
    KindSpec("kafkas", "Kafka", "kafka.strimzi.io", "v1", "kafkas", in_kafka_namespace=True),
    KindSpec("kafkanodepools", "KafkaNodePool", "kafka.strimzi.io", "v1", "kafkanodepools", in_kafka_namespace=True),
    KindSpec("kafkatopics", "KafkaTopic", "kafka.strimzi.io", "v1", "kafkatopics", in_kafka_namespace=True),
    KindSpec("components", "Component", "dapr.io", "v1alpha1", "components"),
    KindSpec("subscriptions", "Subscription", "dapr.io", "v2alpha1", "subscriptions"),
    KindSpec("resiliencies", "Resiliency", "dapr.io", "v1alpha1", "resiliencies"),
    KindSpec("configurations", "Configuration", "dapr.io", "v1alpha1", "configurations"),
    KindSpec("scaledobjects", "ScaledObject", "keda.sh", "v1alpha1", "scaledobjects"),
    KindSpec("certificates", "Certificate", "cert-manager.io", "v1", "certificates"),
)}
# The caches each platform kind is judged from (a Subscription needs the Components, a ScaledObject
# the HPA KEDA made for it).
PLATFORM_CACHES: dict[str, tuple[str, ...]] = {
    "Kafka": ("kafkas",), "KafkaNodePool": ("kafkanodepools",), "KafkaTopic": ("kafkatopics",),
    "Component": ("components",), "Subscription": ("subscriptions", "components"),
    "Resiliency": ("resiliencies",), "Configuration": ("configurations",),
    "ScaledObject": ("scaledobjects", "horizontalpodautoscalers"), "Certificate": ("certificates",),
    "HorizontalPodAutoscaler": ("horizontalpodautoscalers",),
}


# --- the client ----------------------------------------------------------------------------------------


def load_client(target: ClusterTarget) -> client.ApiClient:
    """An ApiClient for the target: a kubeconfig context (token, certificate or exec user) or in-cluster."""
    configuration = client.Configuration()
    try:
        if target.in_cluster:
            config.load_incluster_config(client_configuration=configuration)
        else:
            config.load_kube_config(config_file=str(kubeconfig_path(target)), context=target.context,
                                    client_configuration=configuration, persist_config=False)
    except (ConfigException, OSError, ValueError) as exc:
        where = "in-cluster config" if target.in_cluster else f"kubeconfig {kubeconfig_path(target)}"
        raise SourceError(SOURCE, where, str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)) from exc
    configuration.retries = 0  # the caches retry with backoff; a one-shot command reports at once
    configuration.connection_pool_maxsize = len(KINDS) + 4  # a watch per cached kind holds a connection
    return client.ApiClient(configuration)


def kubeconfig_path(target: ClusterTarget) -> str:
    """--kubeconfig, else $KUBECONFIG (read now, not when the client library was imported), else ~/.kube/config."""
    if target.kubeconfig is not None:
        return str(target.kubeconfig)
    return os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")


def _lister(api: client.ApiClient, spec: KindSpec, namespace: str) -> Callable[..., Any]:
    """List (and, with watch=True, watch) one kind in one namespace by its path, as kubectl does, through the
    official client's request machinery (authentication, TLS, connection pool, its ApiException).

    Not through the typed APIs: the console reads the raw JSON, and importing CoreV1Api (with every model it
    declares) costs every process about 0.9 s of CPU and 22 MB, a third of a status run's memory. The query
    parameters and the raising of a non-2xx answer are the typed APIs' own (`_preload_content=False`).
    """
    prefix = f"/apis/{spec.group}/{spec.version}" if spec.group else f"/api/{spec.version}"
    path = f"{prefix}/namespaces/{{namespace}}/{spec.plural}"

    def call(*, limit: int | None = None, _continue: str | None = None, watch: bool | None = None,
             resource_version: str | None = None, allow_watch_bookmarks: bool | None = None,
             timeout_seconds: int | None = None, _request_timeout: Any = None, _preload_content: bool = False) -> Any:
        query = [(name, value) for name, value in (
            ("allowWatchBookmarks", allow_watch_bookmarks), ("continue", _continue), ("limit", limit),
            ("resourceVersion", resource_version), ("timeoutSeconds", timeout_seconds), ("watch", watch))
            if value is not None]
        request = api.param_serialize(method="GET", resource_path=path, path_params={"namespace": namespace},
                                      query_params=query, header_params={"Accept": "application/json"},
                                      auth_settings=["BearerToken"])
        response = api.call_api(*request, _request_timeout=_request_timeout)
        if not 200 <= response.status <= 299:
            response.read()
            raise ApiException.from_response(http_resp=response, body=None, data=None)
        return response.response
    return call


def request_error(address: str, doing: str, exc: Exception) -> SourceError:
    """One line: what was being done, and the API server's own message (or the network's)."""
    if isinstance(exc, ApiException):
        message, reason = exc.reason or "", ""
        try:
            status = json.loads(exc.body or "{}")
            message, reason = status.get("message") or message, status.get("reason") or ""
        except ValueError:
            pass
        code = f"{exc.status} {reason}".strip() if exc.status else reason
        return SourceError(SOURCE, address, f"{doing}: {message} ({code})")
    return SourceError(SOURCE, address, f"{doing}: {_network_reason(exc)}")


def _network_reason(exc: BaseException) -> str:
    text = str(getattr(exc, "reason", None) or exc)
    for needle, short in (("Connection refused", "connection refused"), ("Name or service not known", "unknown host"),
                          ("CERTIFICATE_VERIFY_FAILED", "TLS certificate not trusted (check the kubeconfig's "
                                                        "certificate-authority)"),
                          ("timed out", "timed out"), ("Connection reset", "connection reset"),
                          ("Connection broken", "connection broken"), ("Connection aborted", "connection aborted"),
                          ("ended prematurely", "the API server closed the connection")):
        if needle in text:
            return short
    return text.splitlines()[0][:200] if text else type(exc).__name__


NETWORK_ERRORS = (urllib3.exceptions.HTTPError, OSError)


class _KindListWatch:
    """`informer.ListWatch` for one kind in one namespace, over the official client."""

    def __init__(self, api: client.ApiClient, spec: KindSpec, namespace: str, address: str, timeout_s: float) -> None:
        self._call = _lister(api, spec, namespace)
        self._what = f"{spec.group_resource} in {namespace}"
        self._address = address
        self._timeout_s = timeout_s

    def list(self, limit: int, continue_token: str | None) -> Page:
        try:
            resp = self._call(limit=limit, _continue=continue_token, _preload_content=False,
                              _request_timeout=(self._timeout_s, self._timeout_s * 6))
            body = json.loads(resp.data)
        except ApiException as exc:
            if exc.status == 410:
                raise Gone(self._what) from exc
            raise request_error(self._address, f"list {self._what}", exc) from exc
        except (*NETWORK_ERRORS, ValueError) as exc:
            raise request_error(self._address, f"list {self._what}", exc) from exc
        meta = body.get("metadata") or {}
        return Page(body.get("items") or [], str(meta.get("resourceVersion") or ""), meta.get("continue") or None)

    def watch(self, resource_version: str, timeout_s: int) -> _WatchStream:
        try:
            resp = self._call(watch=True, resource_version=resource_version, allow_watch_bookmarks=True,
                              timeout_seconds=timeout_s, _preload_content=False,
                              _request_timeout=(self._timeout_s, timeout_s + 30))
        except ApiException as exc:
            if exc.status == 410:
                raise Gone(self._what) from exc
            raise request_error(self._address, f"watch {self._what}", exc) from exc
        except NETWORK_ERRORS as exc:
            raise request_error(self._address, f"watch {self._what}", exc) from exc
        return _WatchStream(resp, self._what, self._address)


class _WatchStream:
    """The watch's chunked JSON lines as (type, object); an ERROR event becomes `Gone` (410) or a SourceError."""

    def __init__(self, resp: Any, what: str, address: str) -> None:
        self._resp = resp
        self._what = what
        self._address = address
        self._closed = False

    def __iter__(self) -> Iterator[tuple[str, dict[str, Any]]]:
        try:
            for line in iter_resp_lines(self._resp):
                if not line:
                    continue
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise Gone(obj.get("message", ""))
                    raise SourceError(SOURCE, self._address, f"watch {self._what}: {obj.get('message')} "
                                                             f"({obj.get('code')} {obj.get('reason', '')})".rstrip())
                yield str(kind), obj
        except (*NETWORK_ERRORS, ValueError) as exc:
            if self._closed:
                return
            raise request_error(self._address, f"watch {self._what}", exc) from exc

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._resp.shutdown()  # unblocks a read in another thread (urllib3 >= 2.3)
        except (*NETWORK_ERRORS, AttributeError, ValueError, RuntimeError):
            pass  # the connection is already gone or back in the pool: nothing left to unblock
        try:
            self._resp.release_conn()
        except (*NETWORK_ERRORS, AttributeError):
            pass


# What a cached pod keeps of each container: what console.model.pods reads (the probes, the image, a sidecar
# init container's restartPolicy). A pod is most of a cluster's cached bytes, and every byte of JSON costs
# about ten in Python objects: 1,000 pods went from 55 to 26 MB.
POD_CONTAINER_FIELDS = ("name", "image", "restartPolicy", "livenessProbe", "readinessProbe", "startupProbe")


def _slim(spec: KindSpec) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """What the cache keeps of an object: no managedFields or last-applied copy; of a pod, only what the pod
    model reads; kind/apiVersion filled in (list items of built-in kinds come without them)."""
    def transform(obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj.get("metadata")
        if meta:
            meta.pop("managedFields", None)
            annotations = meta.get("annotations")
            if annotations:
                annotations.pop(LAST_APPLIED_ANNOTATION, None)
        if spec.name == "pods":
            _slim_pod(obj)
        obj.setdefault("kind", spec.kind)
        obj.setdefault("apiVersion", spec.api_version)
        return obj
    return transform


def _slim_pod(pod: dict[str, Any]) -> None:
    spec = pod.get("spec") or {}
    kept: dict[str, Any] = {"nodeName": spec.get("nodeName")}
    for key in ("containers", "initContainers"):
        if spec.get(key):
            kept[key] = [{f: c[f] for f in POD_CONTAINER_FIELDS if f in c} for c in spec[key]]
    pod["spec"] = kept
    meta = pod.get("metadata")
    if meta:
        meta.pop("annotations", None)  # the pod model reads none (a Dapr sidecar's are most of them)


# --- the source -----------------------------------------------------------------------------------------


class KubeSource:
    """Workloads and platform resources of one cluster, read from caches, changed the way kubectl does."""

    def __init__(self, target: ClusterTarget, *, api_client: client.ApiClient | None = None,
                 watch_timeout_s: int = 300, page_size: int = 500) -> None:
        self.target = target
        self.namespace = target.namespace
        self.kafka_namespace = KAFKA_NAMESPACE
        self._api = api_client or load_client(target)
        self.address = str(self._api.configuration.host)
        self.label = target.label
        self._timeout_s = target.settings.request_timeout_s
        self._watch_timeout_s = watch_timeout_s
        self._page_size = page_size
        self._informers: dict[str, Informer] = {}
        self._lock = threading.Lock()
        self._pod_views: dict[tuple[str, str], tuple[dict[str, Any], PodSummary]] = {}
        self._rollout_views: dict[int, tuple[dict[str, Any], RolloutStatus]] = {}  # by id, the object kept alive
        self._events_view: tuple[int, dict[tuple[str, str], list[EventSummary]]] | None = None
        # Every pod's summary, sorted, and the wiring, with the change counters of the caches they were read
        # from: while no counter moved, a refresh hands out the same again (1,000 pods walked, 100 of them given
        # their events anew, and sorted, for nothing, every 2 s on the dashboard)
        self._pods_read: tuple[tuple[int, int], list[PodSummary]] | None = None
        self._wiring_read: tuple[tuple[int, int], Wiring] | None = None

    @property
    def api_client(self) -> client.ApiClient:
        """The client this source talks through (console.sources.kube_apply sends its applies with it)."""
        return self._api

    # --- caches --------------------------------------------------------------------------------------

    def cache(self, name: str) -> Informer:
        """The cache of one kind (see KINDS), started on first use."""
        spec = KINDS[name]
        with self._lock:
            informer = self._informers.get(name)
            if informer is None:
                namespace = self.kafka_namespace if spec.in_kafka_namespace else self.namespace
                informer = Informer(
                    f"{spec.group_resource} in {namespace}",
                    _KindListWatch(self._api, spec, namespace, self.address, self._timeout_s),
                    SourceHealth(SOURCE, self.address), transform=_slim(spec), page_size=self._page_size,
                    watch_timeout_s=self._watch_timeout_s)
                informer.start()
                self._informers[name] = informer
            return informer

    def ensure(self, *names: str, timeout_s: float | None = None) -> None:
        """Start these caches and wait until each has listed once (or raise the first failure)."""
        informers = [self.cache(n) for n in names]
        wait = timeout_s if timeout_s is not None else self._timeout_s * 2
        for informer in informers:
            informer.wait_synced(wait)

    def objects(self, name: str) -> list[dict[str, Any]]:
        self.ensure(name)
        return self.cache(name).items()

    def health(self) -> dict[str, SourceHealth]:
        with self._lock:
            return {name: informer.health for name, informer in self._informers.items()}

    def wait_for_change(self, timeout_s: float, name: str = "deployments") -> bool:
        return self.cache(name).wait_for_change(timeout_s)

    def close(self) -> None:
        with self._lock:
            informers = list(self._informers.values())
            self._informers.clear()
        for informer in informers:
            informer.stop(timeout_s=0.5)
        self._api.close()

    # --- reads (from the caches) ---------------------------------------------------------------------

    def rollouts(self) -> list[RolloutStatus]:
        """Every Deployment's rollout. As for pods, a Deployment the watch did not replace since the last call is
        the same object, and its status is not worked out again (100 of them cost a dashboard refresh 8 ms)."""
        fresh: dict[int, tuple[dict[str, Any], RolloutStatus]] = {}
        for deployment in self.objects("deployments"):
            known = self._rollout_views.get(id(deployment))
            fresh[id(deployment)] = (deployment, known[1] if known is not None and known[0] is deployment
                                     else rollout_status(deployment))
        self._rollout_views = fresh
        return sorted((status for _, status in fresh.values()), key=lambda r: r.name)

    def rollout(self, name: str) -> RolloutStatus:
        return rollout_status(self._deployment(name))

    def history(self, name: str) -> list[Revision]:
        deployment = self._deployment(name)
        self.ensure("replicasets")
        return rollout_history(deployment, self.cache("replicasets").items())

    def pods(self, service: str | None = None) -> list[PodSummary]:
        """Every pod's summary. A refresh recomputes only the pods the watch changed since the last one (the
        cached objects are replaced, never edited, so an unchanged pod is the same object) and re-attaches
        events only when the events cache changed: 1,000 pods cost what their changes cost."""
        self.ensure("pods", "events")
        changes, pods = self.cache("pods").snapshot()
        events_changes, by_object = self._events_by_object()
        read = self._pods_read
        if service is None and read is not None and read[0] == (changes, events_changes):
            return list(read[1])
        summaries = []
        fresh: dict[tuple[str, str], tuple[dict[str, Any], PodSummary]] = {}
        for pod in pods:
            if service is not None and service_of(pod) != service:
                continue
            meta = pod["metadata"]
            key = (str(meta.get("namespace")), str(meta.get("name")))
            known = self._pod_views.get(key)
            base = known[1] if known is not None and known[0] is pod else pod_summary(pod)
            fresh[key] = (pod, base)
            events = by_object.get(("Pod", key[1]))
            summaries.append(with_events(base, events) if events else base)
        self._pod_views = fresh if service is None else {**self._pod_views, **fresh}
        ordered = sort_pods(summaries)
        if service is None:
            self._pods_read = ((changes, events_changes), list(ordered))
        return ordered

    def _events_by_object(self) -> tuple[int, dict[tuple[str, str], list[EventSummary]]]:
        """(the events cache's change counter, the events of each involved object)."""
        changes, events = self.cache("events").snapshot()
        view = self._events_view
        if view is None or view[0] != changes:
            view = self._events_view = (changes, events_by_object(events))
        return view

    def pod(self, name: str) -> PodSummary:
        self.ensure("pods", "events")
        pods = self.cache("pods").items()
        chosen = pick([str(p["metadata"]["name"]) for p in pods], name, f"pod in {self.namespace}")
        pod = next(p for p in pods if p["metadata"]["name"] == chosen)
        events = [e for e in self.cache("events").items() if (e.get("involvedObject") or {}).get("name") == chosen]
        return pod_summaries([pod], events)[0]

    def resources(self, kinds: Iterable[str] | None = None, now: float | None = None) -> platform_model.PlatformReport:
        """The platform kinds asked for (all by default); a kind that cannot be read is reported, not fatal."""
        wanted = list(kinds or platform_model.PLATFORM_KINDS)
        caches = sorted({c for kind in wanted for c in PLATFORM_CACHES[kind]})
        for name in caches:
            self.cache(name)  # start them all before waiting: they list in parallel
        unreadable: dict[str, str] = {}
        objects: list[dict[str, Any]] = []
        for name in caches:
            try:
                self.ensure(name)
                objects.extend(self.cache(name).items())
            except SourceError as exc:
                unreadable[KINDS[name].kind] = str(exc)
        found = platform_model.read_platform(objects, time.time() if now is None else now,
                                             complete=frozenset(KINDS[c].kind for c in caches) - set(unreadable))
        return platform_model.PlatformReport(
            resources=tuple(r for r in found if r.kind in wanted),
            unreadable=tuple(sorted((k, v) for k, v in unreadable.items() if k in wanted)))

    def wiring(self) -> Wiring:
        self.ensure("subscriptions", "scaledobjects")
        subscriptions_changes, subscriptions = self.cache("subscriptions").snapshot()
        scaled_changes, scaled = self.cache("scaledobjects").snapshot()
        read = self._wiring_read
        if read is not None and read[0] == (subscriptions_changes, scaled_changes):
            return read[1]
        wiring = read_wiring([*subscriptions, *scaled])
        self._wiring_read = ((subscriptions_changes, scaled_changes), wiring)
        return wiring

    def _deployment(self, name: str) -> dict[str, Any]:
        deployments = self.objects("deployments")
        chosen = pick([str(d["metadata"]["name"]) for d in deployments], name, f"Deployment in {self.namespace}",
                      prefix=False)
        return next(d for d in deployments if d["metadata"]["name"] == chosen)

    # --- mutations (fresh from the API server, as kubectl does them) --------------------------------

    def restart(self, name: str, *, dry_run: bool = False, timeout_s: float = 60.0) -> RestartResult:
        """`kubectl rollout restart deployment/<name>`: a new restartedAt on the pod template. Returns once the
        API server accepted it (`timeout_s` is for the sandbox's restart, which waits for its process)."""
        apps = client.AppsV1Api(self._api)
        deployment = self._get_deployment(name)
        try:
            patch = restart_patch(deployment, time.time())
        except RolloutError as exc:
            raise Unknown(str(exc)) from exc
        result = self._request(lambda: apps.patch_namespaced_deployment(
            name, self.namespace, patch, dry_run="All" if dry_run else None, field_manager=FIELD_MANAGER,
            _content_type="application/strategic-merge-patch+json", _preload_content=False,
            _request_timeout=self._timeout_s), f"patch deployments.apps {name} in {self.namespace}")
        stamp = patch["spec"]["template"]["metadata"]["annotations"]
        return RestartResult(deployment=name, dry_run=dry_run, generation=int(result["metadata"].get("generation") or 0),
                             detail=f"restartedAt={next(iter(stamp.values()))}")

    def undo(self, name: str, to_revision: int = 0, *, dry_run: bool = False) -> UndoResult:
        """`kubectl rollout undo deployment/<name> [--to-revision N]`: the ReplicaSet's template put back."""
        deployment = self._get_deployment(name)
        replicasets = self._list_replicasets(deployment)
        try:
            plan: UndoPlan = plan_undo(deployment, replicasets, to_revision)
        except RolloutError as exc:
            raise Unknown(str(exc)) from exc
        if plan.skipped:
            return UndoResult(plan=plan, dry_run=dry_run, generation=int(deployment["metadata"].get("generation") or 0))
        apps = client.AppsV1Api(self._api)
        result = self._request(lambda: apps.patch_namespaced_deployment(
            name, self.namespace, list(plan.patch), dry_run="All" if dry_run else None, field_manager=FIELD_MANAGER,
            _content_type="application/json-patch+json", _preload_content=False,
            _request_timeout=self._timeout_s), f"patch deployments.apps {name} in {self.namespace}")
        return UndoResult(plan=plan, dry_run=dry_run, generation=int(result["metadata"].get("generation") or 0))

    def _get_deployment(self, name: str) -> dict[str, Any]:
        apps = client.AppsV1Api(self._api)
        return self._request(lambda: apps.read_namespaced_deployment(
            name, self.namespace, _preload_content=False, _request_timeout=self._timeout_s),
            f"get deployments.apps {name} in {self.namespace}")

    def _list_replicasets(self, deployment: dict[str, Any]) -> list[dict[str, Any]]:
        """The ReplicaSets matching the Deployment's selector (kubectl's GetAllReplicaSets reads them fresh)."""
        apps = client.AppsV1Api(self._api)
        selector = label_selector(deployment["spec"]["selector"])
        body = self._request(lambda: apps.list_namespaced_replica_set(
            self.namespace, label_selector=selector, _preload_content=False, _request_timeout=self._timeout_s),
            f"list replicasets.apps in {self.namespace}")
        return list(body.get("items") or [])

    def _request(self, call: Callable[[], Any], doing: str) -> dict[str, Any]:
        """Run one request that answers a JSON object; every failure as one SourceError line."""
        try:
            return json.loads(call().data)
        except (ApiException, *NETWORK_ERRORS, ValueError) as exc:
            raise request_error(self.address, doing, exc) from exc


def label_selector(selector: dict[str, Any]) -> str:
    """A LabelSelector as the query string the API takes (metav1.LabelSelectorAsSelector)."""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), ",".join(expr.get("values") or [])
        parts.append({"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})", "Exists": str(key),
                      "DoesNotExist": f"!{key}"}[op])
    return ",".join(parts)

"""A whole stand-in cluster for tests: the rendered overlay as state, controllers, the API server, scenarios.

`StandInCluster.prod()` serves `kustomize/overlays/prod` as it would look a day after deploying: every
Deployment rolled out at revision 3 (two earlier ReplicaSets kept for history and undo), its pods Running
and Ready on three nodes, the Strimzi, KEDA, cert-manager and HPA objects with their operators' status.
`StandInCluster.large()` is the benchmark's fixture: the same platform with 100 Deployments of 10 pods.

Tests reach it only through the official `kubernetes` client, with a kubeconfig from `kubeconfig()`:
context `stand-in` (cluster admin) or `stand-in-viewer` (the overlay's read-only `console-viewer`
ServiceAccount, authorized by the overlay's own Roles). Scenarios change what the operators and
kubelets report; `server.stop()` / `server.start()` take the API server away and bring it back.
"""

from __future__ import annotations

import base64
import copy
from pathlib import Path
from typing import Any

import yaml

from tests.utils.kube_apiserver.controller import DEPLOYMENT, ControlPlane
from tests.utils.kube_apiserver.operators import keda_hpa, operator_status
from tests.utils.kube_apiserver.rbac import ADMIN, User
from tests.utils.kube_apiserver.resources import BY_KIND, resource_for
from tests.utils.kube_apiserver.server import KubeApiServer
from tests.utils.kube_apiserver.store import Clock, Store
from tests.utils.kube_apiserver.tls import ServingCert, make_serving_cert

ADMIN_TOKEN = "stand-in-admin-token"
VIEWER_TOKEN = "stand-in-console-viewer-token"
VIEWER = User.service_account("todo-app", "console-viewer")
# Earlier releases every Deployment was rolled out with before the current one (image tag, change cause).
HISTORY = [("0.0.8", "ci: deploy 0.0.8 (a1b2c3d)"), ("0.0.9", "ci: deploy 0.0.9 (e4f5a6b)")]
CURRENT_CAUSE = "ci: deploy 0.1.0 (c0ffee1)"
KAFKA_TOPIC = BY_KIND[("kafka.strimzi.io/v1", "KafkaTopic")]
CERTIFICATE = BY_KIND[("cert-manager.io/v1", "Certificate")]
SCALED_OBJECT = BY_KIND[("keda.sh/v1alpha1", "ScaledObject")]


class StandInCluster:
    def __init__(self, objects: list[dict[str, Any]], *, replicas: dict[str, int] | None = None,
                 events_every: int = 1, bookmark_interval_s: float = 1.0, step_s: float = 0.05,
                 cert: ServingCert | None = None) -> None:
        self.clock = Clock()
        self.store = Store(self.clock)
        self.control = ControlPlane(self.store, step_s=step_s)
        self.cert = cert or make_serving_cert()
        self.server = KubeApiServer(self.store, self.control, tokens={ADMIN_TOKEN: ADMIN, VIEWER_TOKEN: VIEWER},
                                    cert=self.cert, bookmark_interval_s=bookmark_interval_s)
        self._load(objects, replicas or {}, events_every)

    @classmethod
    def prod(cls, **kwargs: Any) -> StandInCluster:
        from console.manifests.render import render_overlay
        return cls(render_overlay("prod"), **kwargs)

    @classmethod
    def large(cls, deployments: int = 100, replicas: int = 10, **kwargs: Any) -> StandInCluster:
        return cls(large_fixture(deployments), replicas={"*": replicas}, events_every=10, **kwargs)

    def _load(self, objects: list[dict[str, Any]], replicas: dict[str, int], events_every: int) -> None:
        deployments = [o for o in objects if o.get("kind") == "Deployment"]
        for obj in objects:
            if obj.get("kind") == "Deployment":
                continue
            obj = copy.deepcopy(obj)
            status = operator_status(obj, self.clock)
            if status is not None:
                obj["status"] = status
            created = self.store.create(obj)
            if obj.get("kind") == "ScaledObject":
                self.store.create(keda_hpa(created, self.clock), manager="keda")
        self._link_node_pools()
        for index, dep in enumerate(deployments):
            dep = copy.deepcopy(dep)
            name = dep["metadata"]["name"]
            count = replicas.get(name, replicas.get("*"))
            if count is not None:
                dep["spec"]["replicas"] = count
            dep["metadata"].setdefault("annotations", {})["kubernetes.io/change-cause"] = CURRENT_CAUSE
            self.control.install(dep, history=HISTORY, events=index % events_every == 0)

    def _link_node_pools(self) -> None:
        kafka = BY_KIND[("kafka.strimzi.io/v1", "Kafka")]
        pools = BY_KIND[("kafka.strimzi.io/v1", "KafkaNodePool")]
        with self.store.cond:
            names = [(p["metadata"]["namespace"], p["metadata"].get("labels", {}).get("strimzi.io/cluster"),
                      p["metadata"]["name"]) for p in self.store.items(pools)]
            clusters = [(k["metadata"]["namespace"], k["metadata"]["name"]) for k in self.store.items(kafka)]
        for ns, name in clusters:
            linked = [{"name": pool} for pool_ns, cluster, pool in names if (pool_ns, cluster) == (ns, name)]

            def link(obj: dict[str, Any], linked: list[dict[str, str]] = linked) -> None:
                obj["status"]["kafkaNodePools"] = linked
            self.store.mutate(kafka, ns, name, link)

    # --- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> StandInCluster:
        self.control.start()
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()
        self.control.stop()

    def __enter__(self) -> StandInCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def kubeconfig(self, path: Path, *, context: str = "stand-in") -> Path:
        """A kubeconfig with contexts `stand-in` (admin) and `stand-in-viewer` (a ServiceAccount token)."""
        ca = base64.b64encode(self.cert.ca_pem).decode()
        config = {
            "apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": "stand-in", "cluster": {"server": self.server.url, "certificate-authority-data": ca}}],
            "users": [{"name": "admin", "user": {"token": ADMIN_TOKEN}},
                      {"name": "console-viewer", "user": {"token": VIEWER_TOKEN}}],
            "contexts": [{"name": "stand-in", "context": {"cluster": "stand-in", "user": "admin", "namespace": "todo-app"}},
                         {"name": "stand-in-viewer", "context": {"cluster": "stand-in", "user": "console-viewer",
                                                                 "namespace": "todo-app"}}],
            "current-context": context,
        }
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)
        return path

    # --- scenarios -----------------------------------------------------------------------------------

    def stall_next_rollout(self, deployment: str, mode: str = "ImagePullBackOff", namespace: str = "todo-app") -> None:
        """Pods of the next rollout never become ready: it stalls, then exceeds its progress deadline."""
        self.control.break_new_pods(namespace, deployment, mode)

    def crash_loop(self, deployment: str, namespace: str = "todo-app") -> None:
        self.control.crash_loop(namespace, deployment)
        self.control.wait_synced()

    def heal(self, deployment: str, namespace: str = "todo-app") -> None:
        self.control.heal(namespace, deployment)
        self.control.wait_synced()

    def advance(self, seconds: float) -> None:
        """Move the cluster's clock (a progress deadline or a certificate's expiry comes closer)."""
        self.clock.advance(seconds)
        with self.store.cond:
            names = [(d["metadata"]["namespace"], d["metadata"]["name"]) for d in self.store.items(DEPLOYMENT)]
        for namespace, name in names:
            self.control.touch(namespace, name)

    def certificate_expiring(self, name: str, days: float, namespace: str = "todo-app") -> None:
        """cert-manager failed to renew: the certificate is still Ready but expires in `days`."""
        now = self.clock.now()

        def change(cert: dict[str, Any]) -> None:
            status = cert["status"]
            status["notAfter"] = self.clock.stamp(now + days * 86400)
            status["renewalTime"] = self.clock.stamp(now - 20 * 86400)
            status["lastFailureTime"] = self.clock.stamp(now - 3600)
            status["failedIssuanceAttempts"] = 4
            status["conditions"].append({
                "type": "Issuing", "status": "False", "reason": "Failed", "observedGeneration": 1,
                "lastTransitionTime": self.clock.stamp(now - 3600),
                "message": "The certificate request has failed to complete and will be retried: Failed to wait for "
                           "order resource \"todo-tls-1-123\" to become ready: order is in \"invalid\" state"})
        self.store.mutate(CERTIFICATE, namespace, name, change, manager="cert-manager-certificates-issuing")

    def topic_not_ready(self, name: str, reason: str, message: str, namespace: str = "kafka") -> None:
        """The topic operator could not reconcile a KafkaTopic."""
        def change(topic: dict[str, Any]) -> None:
            topic["status"]["conditions"] = [{"type": "Ready", "status": "False", "reason": reason, "message": message,
                                              "lastTransitionTime": self.clock.stamp()}]
        self.store.mutate(KAFKA_TOPIC, namespace, name, change, manager="strimzi-topic-operator")

    def set_status(self, obj: dict[str, Any], status: dict[str, Any]) -> None:
        """Overwrite any object's status (`obj` names it: apiVersion, kind, metadata.namespace/name)."""
        meta = obj["metadata"]
        self.store.mutate(resource_for(obj), meta.get("namespace", ""), meta["name"],
                          lambda o: o.update(status=status))


def large_fixture(deployments: int) -> list[dict[str, Any]]:
    """The prod overlay's platform with its six Deployments replaced by `deployments` copies of worker."""
    from console.manifests.render import render_overlay
    objects = render_overlay("prod")
    worker = next(o for o in objects if o.get("kind") == "Deployment" and o["metadata"]["name"] == "worker")
    platform = [o for o in objects if o.get("kind") != "Deployment"]
    generated = []
    for index in range(deployments):
        name = f"svc-{index:03d}"
        dep = copy.deepcopy(worker)
        dep["metadata"]["name"] = name
        for labels in (dep["metadata"]["labels"], dep["spec"]["selector"]["matchLabels"],
                       dep["spec"]["template"]["metadata"]["labels"]):
            labels["app.kubernetes.io/name"] = name
        dep["spec"]["template"]["metadata"]["annotations"]["dapr.io/app-id"] = name
        generated.append(dep)
    return platform + generated

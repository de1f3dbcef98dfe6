"""Policy checks on the rendered overlays, one per requirement (FR numbers from the spec)."""

from __future__ import annotations

import copy
from typing import Any

from console.manifests import access, budget, netpol
from console.manifests.budget import read_releases, release_values, unset_helm_requests
from console.manifests.cluster_spec import DEFAULT_SPEC
from console.manifests.netpol import Endpoint
from console.manifests.preflight import quotas_admit
from console.manifests.quantity import cpu_millis, mem_mib
from console.manifests.render import KUSTOMIZE_DIR, iter_containers
from tests.kustomize.conftest import by_kind, one

APPS = ("backend", "worker", "notification", "websocket", "audit", "frontend")
CONSUMERS = {"worker": ["task-events"], "notification": ["reminders"], "websocket": ["task-updates"],
             "audit": ["task-events", "reminders", "task-updates"]}
TOPICS = {"task-events": 3, "reminders": 1, "task-updates": 3}
NAMESPACES = ("todo-app", "kafka", "dapr-system", "monitoring", "postgres")
# What the services' settings read through the Dapr secret store (services/*/config.py SECRET_FIELDS).
SECRETS_READ = {"backend": {"todo-db", "todo-auth", "todo-internal"}, "worker": {"todo-internal"},
                "notification": {"todo-internal", "todo-notification"}, "websocket": {"todo-auth"},
                "audit": {"todo-auth", "todo-audit-db"}}
SECRET_NAMES = set().union(*SECRETS_READ.values())
RUNTIME_ENV = {"PORT": "8000", "APP_ENV": "production", "SECRET_SOURCE": "dapr", "PUBSUB_NAME": "kafka-pubsub",
               "STATESTORE_NAME": "statestore", "SECRETSTORE_NAME": "secretstore"}


def deployments(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return by_kind(objs, "Deployment", "todo-app")


def container_env(objs, dep) -> dict[str, str]:
    """The container's effective environment: envFrom ConfigMaps then env."""
    app = dep["spec"]["template"]["spec"]["containers"][0]
    env: dict[str, str] = {}
    for src in app.get("envFrom", []):
        env.update(one(objs, "ConfigMap", src["configMapRef"]["name"])["data"])
    env.update({e["name"]: e.get("value") for e in app.get("env", [])})
    return env


# ------------------------------------------------------------------ B01: namespaces
def test_namespaces_exist_with_pod_security_labels(overlay) -> None:
    _, objs = overlay
    nss = {o["metadata"]["name"]: o["metadata"]["labels"] for o in by_kind(objs, "Namespace")}
    assert set(NAMESPACES) <= set(nss)
    for ns in NAMESPACES:
        assert nss[ns]["pod-security.kubernetes.io/enforce"] in ("restricted", "baseline", "privileged")
        assert "pod-security.kubernetes.io/warn" in nss[ns]
    assert nss["todo-app"]["pod-security.kubernetes.io/enforce"] == "restricted"


# ------------------------------------------------------------------ B02-B07, G01-G03: every service
def test_each_service_has_deployment_service_account_and_pdb(overlay) -> None:
    _, objs = overlay
    for app in APPS:
        dep = one(objs, "Deployment", app)
        svc = one(objs, "Service", app)
        assert svc["spec"]["type"] == "ClusterIP", "FR-B04..B06: ClusterIP, ingress does the routing"
        assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
        assert dep["spec"]["template"]["spec"]["serviceAccountName"] == one(objs, "ServiceAccount", app)["metadata"]["name"]
        pdb = one(objs, "PodDisruptionBudget", app)
        assert pdb["spec"]["selector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]


def test_every_deployment_has_probes_resources_and_rolling_update(overlay) -> None:
    _, objs = overlay
    for dep in deployments(objs):
        name = dep["metadata"]["name"]
        strategy = dep["spec"]["strategy"]
        assert strategy["type"] == "RollingUpdate", name
        assert strategy["rollingUpdate"]["maxUnavailable"] == 0, name
        for c in iter_containers(dep):
            res = c.get("resources") or {}
            assert {"cpu", "memory"} <= set(res.get("requests", {})), f"{name}/{c['name']}: requests (FR-B02)"
            assert {"cpu", "memory"} <= set(res.get("limits", {})), f"{name}/{c['name']}: limits (FR-B02)"
            assert cpu_millis(res["requests"]["cpu"]) <= cpu_millis(res["limits"]["cpu"])
            assert mem_mib(res["requests"]["memory"]) <= mem_mib(res["limits"]["memory"])
            live, ready = c.get("livenessProbe"), c.get("readinessProbe")
            assert live, name
            assert live["periodSeconds"] == 10, name
            assert live["httpGet"]["path"] == "/healthz", name
            assert ready, name
            assert ready["periodSeconds"] == 5, name
            assert ready["httpGet"]["path"] == "/readyz", name


def test_every_deployment_has_dapr_annotations(overlay) -> None:
    name_, objs = overlay
    for dep in deployments(objs):
        name = dep["metadata"]["name"]
        ann = dep["spec"]["template"]["metadata"]["annotations"]
        assert ann["dapr.io/enabled"] == "true", f"{name}: FR-B07/D02"
        assert ann["dapr.io/app-id"] == name
        assert ann["dapr.io/app-port"] == "8000"
        assert ann["dapr.io/config"] == "todo-config"
        assert ann["dapr.io/log-level"] == ("debug" if name_ == "dev" else "info"), "FR-D03"
        for key in ("cpu-request", "memory-request", "cpu-limit", "memory-limit"):
            assert f"dapr.io/sidecar-{key}" in ann, f"{name}: sidecar {key} (budget and quota)"


def test_every_deployment_is_hardened(overlay) -> None:
    _, objs = overlay
    for dep in deployments(objs):
        spec = dep["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        for c in iter_containers(dep):
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, dep["metadata"]["name"]
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert not sc["capabilities"].get("add")
            assert sc.get("privileged") is not True


def test_every_service_gets_its_runtime_config(overlay) -> None:
    _, objs = overlay
    for dep in deployments(objs):
        env = container_env(objs, dep)
        assert env["SERVICE_NAME"] == dep["metadata"]["name"]
        assert {k: env.get(k) for k in RUNTIME_ENV} == RUNTIME_ENV
        assert env["LOG_LEVEL"] in ("info", "debug"), "services/platform/settings.py accepts lowercase levels"
    for app in ("backend", "websocket", "audit"):
        auth = container_env(objs, one(objs, "Deployment", app))
        assert {"JWT_ISSUER", "JWT_AUDIENCE", "JWKS_URL"} <= set(auth), app


def test_nothing_in_todo_app_takes_a_secret_as_environment(overlay) -> None:
    _, objs = overlay
    for obj in objs:
        if obj["metadata"].get("namespace") != "todo-app":
            continue
        for c in iter_containers(obj):
            assert not [e for e in c.get("env", []) if "secretKeyRef" in (e.get("valueFrom") or {})], obj["metadata"]["name"]
            assert not [e for e in c.get("envFrom", []) if "secretRef" in e], obj["metadata"]["name"]
        spec = (obj.get("spec") or {}).get("template", {}).get("spec", {})
        assert not [v for v in spec.get("volumes", []) if "secret" in v], "FR-H08/H09: secrets only through Dapr"


# ------------------------------------------------------------------ B08-B10: scaling
def test_backend_hpa_cpu_70_between_1_and_3(overlay) -> None:
    _, objs = overlay
    hpa = one(objs, "HorizontalPodAutoscaler", "backend")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "backend"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 3)
    metric = hpa["spec"]["metrics"][0]["resource"]
    assert metric["name"] == "cpu"
    assert metric["target"]["averageUtilization"] == 70


def test_prod_scales_consumers_on_kafka_lag(prod) -> None:
    scaled = by_kind(prod, "ScaledObject", "todo-app")
    assert scaled, "FR-B09"
    for so in scaled:
        app = so["spec"]["scaleTargetRef"]["name"]
        assert app in CONSUMERS, "websocket must stay single-replica"
        assert app != "websocket", "websocket must stay single-replica"
        assert so["spec"]["minReplicaCount"] >= 1, "FR-B10"
        assert so["spec"]["maxReplicaCount"] <= 3, "FR-B10"
        for trig in so["spec"]["triggers"]:
            assert trig["type"] == "kafka"
            assert trig["metadata"]["consumerGroup"] == app, "Dapr's consumerGroup is {appID}"
            assert trig["metadata"]["topic"] in CONSUMERS[app]
            assert trig["metadata"]["bootstrapServers"] == "todo-kafka-kafka-bootstrap.kafka.svc:9092"


def test_no_deployment_pins_replicas_that_an_autoscaler_owns(overlay) -> None:
    _, objs = overlay
    for dep in deployments(objs):
        assert "replicas" not in dep["spec"], "apply must not reset what HPA/KEDA scaled"


# ------------------------------------------------------------------ C01-C09: Strimzi
def test_kafka_is_kraft_single_dual_role_ephemeral_internal(overlay) -> None:
    _, objs = overlay
    kafka = one(objs, "Kafka", "todo-kafka")
    assert kafka["apiVersion"] == "kafka.strimzi.io/v1"
    assert kafka["metadata"]["namespace"] == "kafka"
    assert "zookeeper" not in kafka["spec"], "FR-C05 is met by KRaft: no ZooKeeper at all"
    pools = by_kind(objs, "KafkaNodePool", "kafka")
    assert len(pools) == 1
    assert pools[0]["metadata"]["labels"]["strimzi.io/cluster"] == "todo-kafka"
    assert sorted(pools[0]["spec"]["roles"]) == ["broker", "controller"]
    assert pools[0]["spec"]["replicas"] == 1
    vols = pools[0]["spec"]["storage"]["volumes"]
    assert vols, "FR-C02"
    assert all(v["type"] == "ephemeral" for v in vols), "FR-C02"
    assert all(lst["type"] == "internal" for lst in kafka["spec"]["kafka"]["listeners"]), "FR-C04"
    assert "kafkaExporter" in kafka["spec"], "FR-G08: consumer lag"


def test_topics_partitions_replication_and_dead_letters(overlay) -> None:
    _, objs = overlay
    topics = {t["metadata"]["name"]: t for t in by_kind(objs, "KafkaTopic", "kafka")}
    for name, partitions in TOPICS.items():
        assert topics[name]["spec"]["partitions"] == partitions, f"FR-C06..C08: {name}"
        assert topics[f"{name}-dlq"]["spec"]["partitions"] == 1
    for t in topics.values():
        assert t["spec"]["replicas"] == 1, "FR-C09"
        assert t["metadata"]["labels"]["strimzi.io/cluster"] == "todo-kafka"


# ------------------------------------------------------------------ C10-C14, D: Dapr
def test_every_subscription_has_a_dead_letter_topic(overlay) -> None:
    _, objs = overlay
    topics = {t["metadata"]["name"] for t in by_kind(objs, "KafkaTopic")}
    subs = by_kind(objs, "Subscription", "todo-app")
    assert {(s["scopes"][0], s["spec"]["topic"]) for s in subs} == {(a, t) for a, ts in CONSUMERS.items() for t in ts}
    for sub in subs:
        assert sub["apiVersion"] == "dapr.io/v2alpha1"
        assert sub["spec"]["pubsubname"] == "kafka-pubsub"
        assert sub["spec"]["deadLetterTopic"] == f"{sub['spec']['topic']}-dlq" in topics
        assert sub["spec"]["routes"]["default"] == f"/events/{sub['spec']['topic']}"
        assert len(sub["scopes"]) == 1


def _meta(component: dict[str, Any]) -> dict[str, Any]:
    return {m["name"]: m.get("value", m.get("secretKeyRef")) for m in component["spec"]["metadata"]}


def _scopes(value: str) -> dict[str, set[str]]:
    out = {}
    for part in value.split(";"):
        app, _, topics = part.partition("=")
        out[app] = {t for t in topics.split(",") if t}
    return out


def test_pubsub_component_scopes_each_app_to_its_topics(overlay) -> None:
    _, objs = overlay
    pubsub = one(objs, "Component", "kafka-pubsub")
    assert pubsub["spec"]["type"] == "pubsub.kafka", "FR-D04"
    meta = _meta(pubsub)
    assert meta["consumerGroup"] == "{appID}", "FR-D06: a consumer group per app"
    assert meta["brokers"] == "todo-kafka-kafka-bootstrap.kafka.svc:9092"
    assert "frontend" not in pubsub["scopes"]
    subscribe, publish = _scopes(meta["subscriptionScopes"]), _scopes(meta["publishingScopes"])
    assert publish["backend"] == set(TOPICS), "FR-C10 (+ task-updates, FR-E09)"
    assert subscribe["backend"] == set()
    for app, topics in CONSUMERS.items():
        assert subscribe[app] == set(topics), f"FR-C11..C14: {app}"
        assert publish[app] == {f"{t}-dlq" for t in topics}, "daprd dead-letters on the subscriber's behalf"
    assert set(meta["allowedTopics"].split(",")) == set(TOPICS) | {f"{t}-dlq" for t in TOPICS}


def test_state_and_secret_stores(overlay) -> None:
    _, objs = overlay
    state = one(objs, "Component", "statestore")
    assert state["spec"]["type"] == "state.postgresql", "FR-D07"
    assert "secretKeyRef" in next(m for m in state["spec"]["metadata"] if m["name"] == "connectionString")
    secrets = one(objs, "Component", "secretstore")
    assert secrets["spec"]["type"] == "secretstores.kubernetes", "FR-D13"
    readers = {b["subjects"][0]["name"] for b in by_kind(objs, "RoleBinding", "todo-app") if b["metadata"]["name"].endswith("-secret-reader")}
    assert set(secrets["scopes"]) == readers == set(SECRETS_READ), "the apps scoped to the secret store are the ones RBAC lets read"
    for app, names in SECRETS_READ.items():
        role = one(objs, "Role", f"{app}-secret-reader")
        assert set(role["rules"][0]["resourceNames"]) == names, f"{app} may read exactly its secrets"
        assert one(objs, "ServiceAccount", app)["automountServiceAccountToken"] is True, "daprd needs the token"
    assert one(objs, "ServiceAccount", "frontend")["automountServiceAccountToken"] is False
    conf = one(objs, "Configuration", "todo-config")["spec"]["secrets"]["scopes"][0]
    assert conf["defaultAccess"] == "deny"
    assert set(conf["allowedSecrets"]) == SECRET_NAMES


def test_configuration_and_resiliency(overlay) -> None:
    _, objs = overlay
    conf = one(objs, "Configuration", "todo-config")["spec"]
    assert "mtls" not in conf, "daprd reads mTLS from the daprsystem Configuration only: set it in the Dapr chart"
    mtls = release_values("dapr", "prod")["global"]["mtls"]
    assert mtls["enabled"] is True, "the chart renders global.mtls into daprsystem"
    assert mtls["workloadCertTTL"]
    assert conf["metrics"]["enabled"] is True
    assert "tracing" in conf
    assert conf["accessControl"]["defaultAction"] == "deny"
    res = one(objs, "Resiliency", "todo-resiliency")["spec"]
    assert all(r["policy"] == "exponential" for r in res["policies"]["retries"].values())
    assert all(r["maxRetries"] >= 0 for r in res["policies"]["retries"].values()), "finite, so dead letters happen"
    pubsub = res["targets"]["components"]["kafka-pubsub"]
    for direction in ("inbound", "outbound"):
        assert {"retry", "timeout", "circuitBreaker"} <= set(pubsub[direction])
    assert {"retry", "timeout", "circuitBreaker"} <= set(res["targets"]["apps"]["backend"]), "FR-D10"


# ------------------------------------------------------------------ A11-A15, H11-H13: the public entry
SECURITY_HEADERS = {"Strict-Transport-Security", "X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy",
                    "Permissions-Policy", "Content-Security-Policy"}


def test_virtualserver_routes_tls_and_redirect(overlay) -> None:
    name, objs = overlay
    assert not by_kind(objs, "Ingress"), "routes are a VirtualServer of F5's NGINX Ingress Controller"
    vs = one(objs, "VirtualServer", "todo")["spec"]
    assert vs["ingressClassName"] == "nginx"
    assert vs["tls"]["secret"] == one(objs, "Certificate", "todo-tls")["spec"]["secretName"], "FR-A15/H11"
    assert vs["tls"]["redirect"] == {"enable": True, "code": 301}, "FR-H12"
    upstreams = {u["name"]: u for u in vs["upstreams"]}
    routes = {r["path"]: upstreams[r["action"]["proxy"]["upstream"]]["service"] for r in vs["routes"]}
    assert routes == {"/": "frontend", "/api": "backend", "/api/audit": "audit", "/ws": "websocket"}, \
        "FR-A13/A14 (/app/* is under /)"
    for upstream in upstreams.values():
        svc = one(objs, "Service", upstream["service"])
        assert upstream["port"] in [p["port"] for p in svc["spec"]["ports"]]
    assert upstreams["websocket"]["read-timeout"] == "3600s", "long-lived WebSocket connections"
    cert = one(objs, "Certificate", "todo-tls")
    assert cert["spec"]["dnsNames"] == [vs["host"]]
    issuer = cert["spec"]["issuerRef"]["name"]
    assert one(objs, "ClusterIssuer", issuer)
    if name == "prod":
        assert issuer == "letsencrypt-prod"
        acme = one(objs, "ClusterIssuer", issuer)["spec"]["acme"]
        assert acme["server"].startswith("https://acme-v02.api.letsencrypt.org")
        assert acme["solvers"][0]["http01"]["ingress"]["ingressClassName"] == vs["ingressClassName"]
        assert cert["metadata"]["annotations"]["cert-manager.io/issue-temporary-certificate"] == "true", \
            "without a certificate in todo-tls NGINX refuses TLS, and the redirected HTTP-01 challenge fails"
    else:
        assert issuer == "selfsigned"
        assert vs["host"].endswith(".nip.io")


def test_every_route_sends_hsts_and_the_security_headers(overlay) -> None:
    """FR-H13: the controller's ConfigMap HSTS applies to Ingress resources only, so each route adds them."""
    _, objs = overlay
    for route in one(objs, "VirtualServer", "todo")["spec"]["routes"]:
        added = {h["name"]: h for h in route["action"]["proxy"]["responseHeaders"]["add"]}
        assert set(added) == SECURITY_HEADERS, route["path"]
        assert all(h["always"] for h in added.values()), "on error responses too"
        assert "max-age=31536000" in added["Strict-Transport-Security"]["value"]


def test_ingress_controller_is_maintained_nginx_behind_the_free_load_balancer() -> None:
    release = next(r for r in read_releases() if r.name == "nginx-ingress")
    assert release.repo == "oci://ghcr.io/nginx/charts", "F5 NGINX Ingress Controller, not the retired ingress-nginx"
    assert not [r for r in read_releases() if r.name == "ingress-nginx"]
    values = release_values("nginx-ingress", "prod")["controller"]
    assert values["enableCustomResources"] is True
    assert values["enableCertManager"] is True, "merges cert-manager's HTTP-01 solver into the VirtualServer's host"
    assert values["enableSnippets"] is False
    assert values["telemetryReporting"]["enable"] is False
    ann = values["service"]["annotations"]
    assert ann["service.beta.kubernetes.io/oci-load-balancer-shape"] == "flexible"
    assert ann["service.beta.kubernetes.io/oci-load-balancer-shape-flex-max"] == "10"
    assert values["config"]["entries"]["server-tokens"] == "false"


def test_images_per_overlay(rendered) -> None:
    for dep in deployments(rendered["prod"]):
        image = dep["spec"]["template"]["spec"]["containers"][0]["image"]
        assert ".ocir.io/" in image, image
        assert not image.endswith(":latest"), image
    for dep in deployments(rendered["dev"]):
        assert dep["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":dev")


# ------------------------------------------------------------------ G: monitoring
def test_prometheus_scrapes_services_sidecars_and_kafka_exporter(overlay) -> None:
    _, objs = overlay
    assert one(objs, "ServiceMonitor", "todo-services")["spec"]["endpoints"][0]["port"] == "http"
    assert one(objs, "PodMonitor", "dapr-sidecars")["spec"]["podMetricsEndpoints"][0]["port"] == "dapr-metrics"
    exporter = one(objs, "PodMonitor", "kafka-exporter")["spec"]
    assert exporter["selector"]["matchLabels"]["strimzi.io/name"] == "todo-kafka-kafka-exporter"
    alerts = {r["alert"] for g in one(objs, "PrometheusRule", "todo-alerts")["spec"]["groups"] for r in g["rules"]}
    assert {"TodoPodRestarting", "TodoConsumerLagHigh", "TodoDeadLetterQueueNotEmpty", "TodoEventRateDrop",
            "TodoHighErrorRate"} <= alerts


def test_kube_prometheus_stack_selects_our_monitors_and_log_pipeline_is_installed() -> None:
    spec = release_values("kube-prometheus-stack", "prod")["prometheus"]["prometheusSpec"]
    for key in ("serviceMonitorSelectorNilUsesHelmValues", "podMonitorSelectorNilUsesHelmValues",
                "ruleSelectorNilUsesHelmValues"):
        assert spec[key] is False, key
    names = {r.name for r in read_releases()}
    assert {"loki", "fluent-bit", "metrics-server", "kube-prometheus-stack"} <= names, "FR-G06/G07"
    outputs = release_values("fluent-bit", "prod")["config"]["outputs"]
    assert "loki.monitoring.svc" in outputs


# ------------------------------------------------------------------ H03-H05: network policies
def _default_deny(objs, ns) -> bool:
    for pol in by_kind(objs, "NetworkPolicy", ns):
        spec = pol["spec"]
        if spec["podSelector"] == {} and set(spec["policyTypes"]) == {"Ingress", "Egress"} \
                and not spec.get("ingress") and not spec.get("egress"):
            return True
    return False


def test_every_namespace_has_quota_limit_range_and_default_deny(overlay) -> None:
    _, objs = overlay
    for ns in NAMESPACES:
        assert by_kind(objs, "ResourceQuota", ns), f"FR-H06: {ns}"
        assert by_kind(objs, "LimitRange", ns), f"FR-H07: {ns}"
        assert _default_deny(objs, ns), f"FR-H03: {ns}"
        for lr in by_kind(objs, "LimitRange", ns):
            item = lr["spec"]["limits"][0]
            assert {"min", "max", "default", "defaultRequest"} <= set(item)


def _peers(rule: dict[str, Any]) -> list[dict[str, Any]]:
    return rule.get("from") or []


def test_only_the_ingress_controller_takes_outside_traffic(overlay) -> None:
    _, objs = overlay
    for svc in by_kind(objs, "Service"):
        assert svc["spec"].get("type", "ClusterIP") == "ClusterIP", "FR-H04: no LoadBalancer/NodePort"
    for ns in ("todo-app", "kafka"):
        for pol in by_kind(objs, "NetworkPolicy", ns):
            for rule in pol["spec"].get("ingress", []):
                peers = _peers(rule)
                assert peers, f"{ns}/{pol['metadata']['name']}: an ingress rule without 'from' admits everyone"
                assert not [p for p in peers if "ipBlock" in p], f"{ns}/{pol['metadata']['name']}: no ipBlock sources"
    outside = set()
    for pol in by_kind(objs, "NetworkPolicy", "todo-app"):
        for rule in pol["spec"].get("ingress", []):
            for peer in _peers(rule):
                ns_sel = peer.get("namespaceSelector")
                if ns_sel is not None:
                    outside.add(ns_sel["matchLabels"]["kubernetes.io/metadata.name"])
    assert outside <= {"nginx-ingress", "monitoring"}, outside


def test_kafka_reachable_only_from_todo_app_and_operators(overlay) -> None:
    _, objs = overlay
    allowed = {"todo-app", "kafka", "keda", "monitoring"}
    for pol in by_kind(objs, "NetworkPolicy", "kafka"):
        for rule in pol["spec"].get("ingress", []):
            for peer in _peers(rule):
                if "namespaceSelector" in peer:
                    assert peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] in allowed
                else:
                    assert set(peer) == {"podSelector"}, "same-namespace peers only"
    client_rule = next(p for p in by_kind(objs, "NetworkPolicy", "kafka") if p["metadata"]["name"] == "allow-clients")
    client_rule = client_rule["spec"]["ingress"][0]
    assert {p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for p in client_rule["from"]} \
        == {"todo-app", "keda"}, "FR-H05"
    listener = one(objs, "Kafka", "todo-kafka")["spec"]["kafka"]["listeners"][0]
    assert {p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for p in listener["networkPolicyPeers"]} \
        <= allowed


# ------------------------------------------------------------------ H01/H02: RBAC
def test_rbac_is_least_privilege(overlay) -> None:
    _, objs = overlay
    assert not by_kind(objs, "ClusterRole")
    assert not by_kind(objs, "ClusterRoleBinding")
    for role in by_kind(objs, "Role"):
        for rule in role["rules"]:
            assert "*" not in rule["verbs"]
            assert "*" not in rule["resources"]
            assert "*" not in rule["apiGroups"]
            assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"])
            if "secrets" in rule["resources"]:
                assert rule["verbs"] == ["get"], f"{role['metadata']['name']}: named secrets only"
                assert rule.get("resourceNames"), f"{role['metadata']['name']}: named secrets only"


def test_ci_deployer_updates_the_app_layer_and_nothing_else(prod, prod_apps) -> None:
    """FR-H02: continuous deployment can `kubectl apply -k overlays/prod-apps` and reaches nothing more."""
    role = access.service_account_role(prod, "ci-deployer", "todo-app")
    assert role is not None
    assert access.refused(prod_apps, role) == [], "every object of the apps overlay: get and patch"
    verbs = {v for r in role["rules"] for v in r["verbs"]}
    assert not {"create", "delete", "deletecollection", "*"} & verbs, "updates only: an administrator creates"
    resources = {res for r in role["rules"] for res in r["resources"]}
    assert not {"secrets", "serviceaccounts", "pods/exec", "roles", "rolebindings", "networkpolicies",
                "components", "configurations"} & resources
    apps_refs = {(o["kind"], o["metadata"]["name"]) for o in prod_apps}
    platform = [o for o in prod if (o["kind"], o["metadata"]["name"]) not in apps_refs]
    assert len(access.refused(platform, role, ["patch"])) == len(platform), "no platform object is within reach"
    assert not role_allows_patch(role, one(prod, "ConfigMap", "todo-deploy-policy")), "its own guard's parameters"


def role_allows_patch(role, obj) -> bool:
    return access.role_allows(role, "patch", obj)


# ------------------------------------------------------------------ H02: what the deployer may change in a Deployment
GUARD_USER = "system:serviceaccount:todo-app:ci-deployer"


def _guard_verdicts(prod, new: dict[str, Any], old: dict[str, Any] | None, user: str = GUARD_USER) -> list[str]:
    """The messages of the guard's failing validations, evaluated with a CEL interpreter as the API server would."""
    import celpy

    policy = one(prod, "ValidatingAdmissionPolicy", "todo-ci-deployer-guard")["spec"]
    params = one(prod, "ConfigMap", "todo-deploy-policy")
    env = celpy.Environment()
    activation: dict[str, Any] = {
        "object": celpy.json_to_cel(new), "oldObject": celpy.json_to_cel(old),
        "request": celpy.json_to_cel({"operation": "UPDATE" if old else "CREATE", "userInfo": {"username": user}}),
        "params": celpy.json_to_cel(params),
    }
    if not all(env.program(env.compile(m["expression"])).evaluate(activation) for m in policy["matchConditions"]):
        return []
    variables: dict[Any, Any] = {}
    for var in policy["variables"]:  # each may use the ones before it
        scope = {**activation, "variables": celpy.celtypes.MapType(variables)}
        variables[celpy.celtypes.StringType(var["name"])] = env.program(env.compile(var["expression"])).evaluate(scope)
    activation["variables"] = celpy.celtypes.MapType(variables)
    failures = []
    for rule in policy["validations"]:
        if not env.program(env.compile(rule["expression"])).evaluate(activation):
            failures.append(rule.get("message") or rule["messageExpression"])
    return failures


def test_deployer_guard_admits_a_release_and_refuses_everything_else(prod) -> None:
    old = one(prod, "Deployment", "backend")
    prefix = one(prod, "ConfigMap", "todo-deploy-policy")["data"]["imagePrefix"]
    release = copy.deepcopy(old)
    app = release["spec"]["template"]["spec"]["containers"][0]
    app["image"] = prefix + "todo-backend:5f3a2c1"
    app["resources"]["limits"]["memory"] = "512Mi"
    assert _guard_verdicts(prod, release, old) == [], "a new image tag and resources are a release"

    def changed(mutate) -> list[str]:
        new = copy.deepcopy(old)
        mutate(new["spec"]["template"])
        return _guard_verdicts(prod, new, old)

    assert changed(lambda t: t["spec"].__setitem__("serviceAccountName", "audit")) == \
        ["ci-deployer may not change the ServiceAccount a Deployment runs as"]
    assert changed(lambda t: t["spec"]["containers"][0].__setitem__("image", "docker.io/evil/backend:1"))
    assert changed(lambda t: t["spec"]["containers"][0].__setitem__("command", ["sh", "-c", "env"]))
    assert changed(lambda t: t["metadata"]["annotations"].__setitem__("dapr.io/app-id", "worker"))
    assert changed(lambda t: t["spec"]["volumes"].append({"name": "x", "emptyDir": {}}))
    assert changed(lambda t: t["spec"].__setitem__("initContainers", [{"name": "x", "image": prefix + "x"}]))
    assert _guard_verdicts(prod, release, None) == \
        ["ci-deployer may not create Deployments; an administrator applies new services with overlays/prod"]
    assert _guard_verdicts(prod, release, None, user="system:serviceaccount:kube-system:admin") == [], \
        "the guard binds ci-deployer only"


# ------------------------------------------------------------------ H06: quota admits the app at full scale
def test_todo_app_quota_admits_every_service_at_max_scale_plus_a_surge_pod(overlay) -> None:
    _, objs = overlay
    quota = next(q for q in by_kind(objs, "ResourceQuota", "todo-app"))
    maxima = {h["spec"]["scaleTargetRef"]["name"]: h["spec"]["maxReplicas"] for h in by_kind(objs, "HorizontalPodAutoscaler")}
    maxima.update({s["spec"]["scaleTargetRef"]["name"]: s["spec"]["maxReplicaCount"] for s in by_kind(objs, "ScaledObject")})
    totals = {"requests.cpu": 0.0, "requests.memory": 0.0, "limits.cpu": 0.0, "limits.memory": 0.0}
    for dep in deployments(objs):
        pods = maxima.get(dep["metadata"]["name"], 1) + 1
        ann = dep["spec"]["template"]["metadata"]["annotations"]
        app = dep["spec"]["template"]["spec"]["containers"][0]["resources"]
        totals["requests.cpu"] += pods * (cpu_millis(app["requests"]["cpu"]) + cpu_millis(ann["dapr.io/sidecar-cpu-request"]))
        totals["limits.cpu"] += pods * (cpu_millis(app["limits"]["cpu"]) + cpu_millis(ann["dapr.io/sidecar-cpu-limit"]))
        totals["requests.memory"] += pods * (mem_mib(app["requests"]["memory"]) + mem_mib(ann["dapr.io/sidecar-memory-request"]))
        totals["limits.memory"] += pods * (mem_mib(app["limits"]["memory"]) + mem_mib(ann["dapr.io/sidecar-memory-limit"]))
    hard = quota["spec"]["hard"]
    for key, used in totals.items():
        limit = cpu_millis(hard[key]) if "cpu" in key else mem_mib(hard[key])
        assert used <= limit, f"{key}: {used} needed at max scale, quota {hard[key]}"
    assert hard["services.loadbalancers"] == "0"
    assert hard["services.nodeports"] == "0"


def test_every_quota_admits_the_budget_during_a_rollout(overlay) -> None:
    """FR-H06: quotas exist before the charts (bootstrap step 3), so they must admit everything the budget runs."""
    name, objs = overlay
    plan = budget.compute(objs, overlay=name, spec=DEFAULT_SPEC)
    assert quotas_admit(objs, plan) == []
    squeezed = copy.deepcopy(objs)
    one_ns = next(q for q in by_kind(squeezed, "ResourceQuota", "postgres"))
    one_ns["spec"]["hard"]["requests.storage"] = "10Gi"
    assert quotas_admit(squeezed, plan) == [
        "ResourceQuota postgres/compute: requests.storage 10Gi is less than the 50 needed during a rollout at maximum scale"]


# ------------------------------------------------------------------ operators and secrets
def test_operators_pinned_with_values_and_requests() -> None:
    releases = read_releases()
    for rel in releases:
        assert rel.version, rel
        assert rel.version not in ("latest", "*"), rel
        assert (KUSTOMIZE_DIR / "operators" / rel.name / "values.yaml").is_file(), rel.name
    assert [r.name for r in releases][:2] == ["metrics-server", "kube-prometheus-stack"], \
        "monitoring CRDs before charts that create ServiceMonitors"
    assert {"dapr", "strimzi-kafka-operator", "nginx-ingress", "cert-manager", "keda", "cloudnative-pg"} <= \
        {r.name for r in releases}
    assert next(r for r in releases if r.name == "dapr").namespace == "dapr-system", "FR-D01"
    assert next(r for r in releases if r.name == "strimzi-kafka-operator").namespace == "kafka", "FR-C01"
    assert unset_helm_requests("prod") == []
    assert unset_helm_requests("dev") == []


def test_scheduler_runs_one_persistent_replica() -> None:
    """Reminders (Dapr Jobs) survive a scheduler restart, on one 50 GB volume instead of the chart's three."""
    dapr = next(r for r in read_releases() if r.name == "dapr")
    assert dapr.post_render == "single-scheduler"
    assert release_values("dapr", "prod")["dapr_scheduler"]["cluster"]["inMemoryStorage"] is False
    pods, volumes = budget.helm_pods("prod")
    assert next(p for p in pods if p.name == "dapr-scheduler-server").min_replicas == 1
    assert [v.name for v in volumes if v.namespace == "dapr-system"] == ["dapr-scheduler-data-dir"]


def test_logs_live_in_object_storage_and_metrics_claim_no_volume() -> None:
    """FR-G06: Loki's chunks and index go to OCI Object Storage (S3 API), not to an emptyDir."""
    loki = release_values("loki", "prod")
    assert loki["loki"]["storage"]["type"] == "s3"
    assert loki["loki"]["storage"]["s3"]["s3ForcePathStyle"] is True
    assert {c["object_store"] for c in loki["loki"]["schemaConfig"]["configs"]} == {"s3"}
    assert loki["loki"]["compactor"]["delete_request_store"] == "s3"
    assert "-config.expand-env=true" in loki["singleBinary"]["extraArgs"]
    assert loki["singleBinary"]["extraEnvFrom"] == [{"secretRef": {"name": "loki-object-storage"}}]
    assert loki["singleBinary"]["persistence"]["enabled"] is False, "no block volume: the allowance is spent"
    assert "volumeClaimTemplate" not in release_values("kube-prometheus-stack", "prod")["prometheus"]["prometheusSpec"]["storageSpec"]


def test_postgres_is_one_instance_with_its_volume_credentials_and_backups(prod, dev) -> None:
    cluster = one(prod, "Cluster", "todo-pg")["spec"]
    assert cluster["instances"] == 1
    assert cluster["enablePDB"] is False, "a one-instance PDB would block every node drain"
    assert cluster["storage"]["size"] == "50Gi", "OKE's minimum block volume: ask for what is billed"
    assert cluster["bootstrap"]["initdb"] == {"database": "todo", "owner": "todo", "secret": {"name": "todo-db-owner"}}
    assert cluster["managed"]["roles"][0]["passwordSecret"] == {"name": "todo-audit-owner"}
    assert one(prod, "Database", "audit")["spec"]["owner"] == "audit"
    store = cluster["backup"]["barmanObjectStore"]
    assert store["endpointURL"].endswith(".oraclecloud.com")
    assert ".compat.objectstorage." in store["endpointURL"]
    assert store["destinationPath"].startswith("s3://")
    assert set(store["s3Credentials"]) == {"accessKeyId", "secretAccessKey", "region"}
    assert {e["name"] for e in cluster["env"]} == {"AWS_REQUEST_CHECKSUM_CALCULATION", "AWS_RESPONSE_CHECKSUM_VALIDATION"}
    assert one(prod, "ScheduledBackup", "todo-pg-nightly")["spec"]["method"] == "barmanObjectStore"
    assert "backup" not in one(dev, "Cluster", "todo-pg")["spec"], "local clusters have no object storage"


def test_postgres_is_reachable_only_from_its_clients(overlay) -> None:
    _, objs = overlay
    pg = Endpoint("postgres", {"cnpg.io/cluster": "todo-pg", "cnpg.io/instanceName": "todo-pg-1"})
    for app in ("backend", "audit", "worker"):
        assert netpol.allowed(objs, Endpoint("todo-app", {"app.kubernetes.io/name": app}), pg, 5432), app
    assert not netpol.allowed(objs, Endpoint("todo-app", {"app.kubernetes.io/name": "frontend"}), pg, 5432)
    assert not netpol.allowed(objs, Endpoint("nginx-ingress", {"app.kubernetes.io/name": "nginx-ingress"}), pg, 5432)
    assert netpol.allowed(objs, Endpoint("cnpg-system", {"app.kubernetes.io/name": "cloudnative-pg"}), pg, 8000)
    assert not netpol.allowed(objs, Endpoint("kafka", {"strimzi.io/cluster": "todo-kafka"}), pg, 5432)


def test_kube_api_egress_reaches_the_api_endpoint_subnet_only(prod) -> None:
    """The policies name OKE's API endpoint subnet on 6443 (kube-proxy's rewrite of kubernetes.default:443)."""
    inside, outside = Endpoint(ip="10.0.0.2"), Endpoint(ip="140.91.10.20")
    # worker: in todo-app, backend, websocket, audit and notification may also call HTTPS out (JWKS, webhook).
    for ns, labels in (("todo-app", {"app.kubernetes.io/name": "worker"}), ("dapr-system", {"app": "dapr-operator"}),
                       ("kafka", {"strimzi.io/kind": "cluster-operator"}), ("postgres", {"cnpg.io/cluster": "todo-pg"}),
                       ("monitoring", {"app.kubernetes.io/name": "grafana"})):
        pod = Endpoint(ns, labels)
        assert netpol.allowed(prod, pod, inside, 6443), ns
        if ns != "postgres":  # PostgreSQL's backups go to Object Storage over 443 (postgres-backups component)
            assert not netpol.allowed(prod, pod, outside, 443), f"{ns}: HTTPS to anywhere"
        assert not netpol.allowed(prod, pod, outside, 6443), f"{ns}: another cluster's API"
    frontend = Endpoint("todo-app", {"app.kubernetes.io/name": "frontend"})
    assert not netpol.allowed(prod, frontend, inside, 6443), "the frontend reads no Secret"


def test_keda_speaks_the_kafka_protocol_the_dapr_component_speaks(prod) -> None:
    """KEDA's default protocol version (1.0.0) is refused by Kafka 4 brokers: every lag query would fail."""
    component = _meta(one(prod, "Component", "kafka-pubsub"))
    broker = one(prod, "Kafka", "todo-kafka")["spec"]["kafka"]["version"]
    for so in by_kind(prod, "ScaledObject", "todo-app"):
        for trig in so["spec"]["triggers"]:
            assert trig["metadata"]["version"] == component["version"], so["metadata"]["name"]
    assert tuple(map(int, component["version"].split("."))) >= (2, 1, 0), "Kafka 4 serves no older request versions"
    assert tuple(map(int, component["version"].split("."))) <= tuple(map(int, broker.split("."))), broker


def test_scaled_deployments_spread_over_the_nodes(overlay) -> None:
    """Replicas of backend, worker and audit never pile onto one node, and a drained node never blocks them."""
    overlay_name, objs = overlay
    if overlay_name == "prod":
        scaled = {p.name for p in budget.workload_pods(objs) if (p.max_replicas or 1) > 1}
        assert scaled == {"backend", "worker", "audit"}, "every Deployment that scales out is spread"
    for name in ("backend", "worker", "audit"):
        spec = one(objs, "Deployment", name)["spec"]["template"]["spec"]
        spread = [c for c in spec.get("topologySpreadConstraints") or [] if c["topologyKey"] == "kubernetes.io/hostname"]
        assert len(spread) == 1, name
        assert spread[0]["maxSkew"] == 1
        assert spread[0]["whenUnsatisfiable"] == "DoNotSchedule"
        assert spread[0]["nodeTaintsPolicy"] == "Honor", "a cordoned node must not count, or a drain blocks"
        assert spread[0]["labelSelector"]["matchLabels"] == {"app.kubernetes.io/name": name}


def test_no_disruption_budget_blocks_a_node_drain(overlay) -> None:
    """Each PDB lets a drain evict at least one pod at the Deployment's minimum scale (OKE node pool upgrades)."""
    _, objs = overlay
    plan = {p.name: p for p in budget.workload_pods(objs)}
    for pdb in by_kind(objs, "PodDisruptionBudget", "todo-app"):
        app = pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
        low = plan[app].min_replicas
        if "maxUnavailable" in pdb["spec"]:
            assert int(pdb["spec"]["maxUnavailable"]) >= 1, app
        else:
            assert int(pdb["spec"]["minAvailable"]) < low, f"{app}: minAvailable blocks drains at {low} replica(s)"
        assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    assert one(objs, "Cluster", "todo-pg")["spec"]["enablePDB"] is False


def test_service_invocation_acl_matches_the_network_path(overlay) -> None:
    """FR-D09: who may invoke the backend through Dapr is the same in todo-config and the NetworkPolicies."""
    _, objs = overlay
    acl = one(objs, "Configuration", "todo-config")["spec"]["accessControl"]
    callers = {p["appId"] for p in acl["policies"]}
    assert callers == {"worker", "notification"}
    for policy in acl["policies"]:
        assert policy["defaultAction"] == "deny"
        assert all(op["name"].startswith("/internal/") for op in policy["operations"])
    rule = one(objs, "NetworkPolicy", "allow-dapr-invocation")["spec"]["ingress"][0]
    allowed = set(rule["from"][0]["podSelector"]["matchExpressions"][0]["values"])
    assert allowed == callers
    assert rule["ports"] == [{"protocol": "TCP", "port": 50002}]


def test_public_host_reaches_the_token_issuer(rendered) -> None:
    for name, host in (("dev", "todo.127.0.0.1.nip.io"), ("prod", "todo.example.com")):
        auth = one(rendered[name], "ConfigMap", "todo-auth-config")["data"]
        assert auth["JWT_ISSUER"] == f"https://{host}/"
        assert auth["JWKS_URL"] == "", "HS256 with todo-auth until an identity provider's JWKS URL is set"

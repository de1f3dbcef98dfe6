"""The bootstrap goes from an empty cluster to a running system in one pass, in the right order.

install.sh runs for real here in DRY_RUN mode (it prints the commands instead of running them); the replay in
console/manifests/bootstrap.py follows those commands and checks every namespace, Secret and CRD a step needs
against what the steps before it created, then does the same for the overlay apply. verify.sh's probes are
checked against the rendered NetworkPolicies.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
from pathlib import Path

import pytest

from console.manifests import bootstrap, netpol
from console.manifests.budget import read_releases
from console.manifests.netpol import Endpoint
from console.manifests.render import KUSTOMIZE_DIR
from tests.kustomize.conftest import by_kind

OPERATORS = KUSTOMIZE_DIR / "operators"
# What the services read through the Dapr secret store (services/*/config.py SECRET_FIELDS).
SERVICE_SECRETS = {"todo-db", "todo-audit-db", "todo-auth", "todo-internal", "todo-notification"}


@pytest.fixture(scope="module")
def steps() -> dict[str, list[bootstrap.Step]]:
    return {env: bootstrap.dry_run(env) for env in ("dev", "prod")}


def _commands(steps: list[bootstrap.Step]) -> list[str]:
    return [" ".join(s.argv) for s in steps]


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_every_step_finds_what_it_needs(env, steps, rendered) -> None:
    replay = bootstrap.replay_bootstrap(env, steps[env], rendered[env])
    assert replay.problems == []
    assert {("todo-app", name) for name in SERVICE_SECRETS} <= replay.state.secrets, "the services' secrets"
    assert ("monitoring", "grafana-admin") in replay.state.secrets, "before kube-prometheus-stack waits for Grafana"


def test_prod_order_preflight_calico_namespaces_secrets_charts(steps) -> None:
    commands = _commands(steps["prod"])

    def first(prefix: str) -> int:
        return next(i for i, c in enumerate(commands) if c.startswith(prefix))

    assert commands[0] == "todo-console preflight --overlay prod", "nothing is applied before the preflight"
    assert first("curl") < first("kubectl apply --server-side --force-conflicts -f") < \
        first("kubectl apply --server-side -k") < first("kubectl create secret") < first("helm upgrade")
    assert "cpu=100m,memory=160Mi" in commands[first("kubectl set resources daemonset/calico-node")]
    helm = [c.split()[3] for c in commands if c.startswith("helm upgrade --install")]
    assert helm == [r.name for r in read_releases() if "prod" in r.environments], "versions.env order"
    assert first("helm plugin install") < first("helm upgrade --install dapr")
    assert "--post-renderer todo-postrender --post-renderer-args single-scheduler" in commands[first("helm upgrade --install dapr")]
    assert not [c for c in commands if "<value>" not in c and "--from-file" in c], "no secret value is ever printed"


def test_dev_skips_calico_keda_and_the_cloud_secrets(steps) -> None:
    commands = _commands(steps["dev"])
    assert not [c for c in commands if c.startswith(("todo-console", "curl"))]
    assert not [c for c in commands if "keda" in c.split()[:4]]
    secrets = {(s.argv[6], s.argv[4]) for s in steps["dev"] if s.argv[:3] == ("kubectl", "create", "secret")}
    assert ("todo-app", "ocir-pull") not in secrets
    assert ("postgres", "oci-object-storage") not in secrets


def _without(steps: list[bootstrap.Step], predicate) -> list[bootstrap.Step]:
    return [s for s in steps if not predicate(" ".join(s.argv))]


def test_a_chart_before_its_secret_is_caught(steps, rendered) -> None:
    """The original failure: kube-prometheus-stack waited 10 minutes for grafana-admin, created after it."""
    plan = _without(steps["prod"], lambda c: "secret generic grafana-admin" in c)
    problems = bootstrap.replay_bootstrap("prod", plan, rendered["prod"]).problems
    assert [p for p in problems if "helm upgrade --install kube-prometheus-stack" in p and "monitoring/grafana-admin" in p]


def test_a_crd_used_before_its_chart_is_caught(steps, rendered) -> None:
    """cert-manager's ServiceMonitor needs kube-prometheus-stack's CRDs: installing it first is refused."""
    plan = list(steps["prod"])
    kps = next(i for i, s in enumerate(plan) if s.argv[:4] == ("helm", "upgrade", "--install", "kube-prometheus-stack"))
    cm = next(i for i, s in enumerate(plan) if s.argv[:4] == ("helm", "upgrade", "--install", "cert-manager"))
    plan[kps], plan[cm] = plan[cm], plan[kps]
    problems = bootstrap.replay_bootstrap("prod", plan, rendered["prod"]).problems
    assert [p for p in problems if "cert-manager" in p and "monitoring.coreos.com/ServiceMonitor" in p]


def test_the_overlay_needs_every_operator_and_secret(steps, rendered) -> None:
    plan = _without(steps["prod"], lambda c: "--install cloudnative-pg" in c or "secret generic todo-db-owner" in c)
    problems = bootstrap.replay_bootstrap("prod", plan, rendered["prod"]).problems
    assert [p for p in problems if "Cluster postgres/todo-pg needs the CRD postgresql.cnpg.io/Cluster" in p]
    assert [p for p in problems if "needs Secret postgres/todo-db-owner" in p]
    plan = _without(steps["prod"], lambda c: "kubectl apply --server-side -k" in c)
    problems = bootstrap.replay_bootstrap("prod", plan, rendered["prod"]).problems
    assert [p for p in problems if "Secret grafana-admin goes to namespace monitoring, which does not exist yet" in p]


def test_values_secret_and_crd_references_are_found() -> None:
    values = {"grafana": {"admin": {"existingSecret": "grafana-admin"}},
              "singleBinary": {"extraEnvFrom": [{"secretRef": {"name": "loki-object-storage"}}]},
              "prometheus": {"serviceMonitor": {"create": True}}, "monitoring": {"podMonitorEnabled": False}}
    assert bootstrap.values_secrets(values) == {"grafana-admin", "loki-object-storage"}
    assert bootstrap.values_crds(values) == {"monitoring.coreos.com/ServiceMonitor"}


def test_prod_refuses_to_start_without_its_inputs() -> None:
    """Missing credentials stop the bootstrap before it applies or even prints anything."""
    env = {"PATH": os.environ["PATH"], "DRY_RUN": "1", "OCI_S3_ACCESS_KEY_ID": "x"}
    proc = subprocess.run(["bash", str(OPERATORS / "install.sh"), "prod"], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "OCI_S3_SECRET_ACCESS_KEY is not set" in proc.stderr
    usage = subprocess.run(["bash", str(OPERATORS / "install.sh"), "staging"], capture_output=True, text=True,
                           timeout=60, check=False)
    assert usage.returncode == 2


def test_calico_is_pinned_with_a_checksum_for_flannel_clusters() -> None:
    from console.manifests.budget import read_env_file

    calico = read_env_file(OPERATORS / "calico" / "settings.env")
    assert calico["CALICO_VERSION"].startswith("v3.")
    assert calico["CALICO_MANIFEST_URL"].endswith(f"/{calico['CALICO_VERSION']}/manifests/calico-policy-only.yaml")
    assert len(calico["CALICO_MANIFEST_SHA256"]) == 64
    assert int(calico["CALICO_MANIFEST_SHA256"], 16) >= 0


# ------------------------------------------------------------------ verify.sh: a denied path is denied
def _probes(env: str) -> list[list[str]]:
    out = subprocess.run(["bash", str(OPERATORS / "verify.sh"), env], env={"PATH": os.environ["PATH"], "DRY_RUN": "1"},
                         capture_output=True, text=True, timeout=60, check=True).stdout
    return [line.split()[1:] for line in out.splitlines() if line.startswith("probe ")]


def _labels(text: str) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in text.split(",")) if text != "-" else {}


def _evaluate(objs, probe: list[str]) -> tuple[str, bool]:
    ns, labels, expect, target_ns, target_labels, _host, port, protocol = probe
    source = Endpoint(ns, _labels(labels))
    if target_ns == "api-endpoint":  # kube-proxy sends kubernetes.default:443 to the endpoint subnet on 6443
        policy = next(p for p in by_kind(objs, "NetworkPolicy", "todo-app") if p["metadata"]["name"] == "allow-kube-api")
        cidr = policy["spec"]["egress"][0]["to"][0]["ipBlock"]["cidr"]
        address = str(next(iter(ipaddress.ip_network(cidr).hosts())))
        return expect, netpol.allowed(objs, source, Endpoint(ip=address), 6443, protocol)
    return expect, netpol.allowed(objs, source, Endpoint(target_ns, _labels(target_labels)), int(port), protocol)


def test_verify_probes_hold_against_the_rendered_policies(prod) -> None:
    probes = _probes("prod")
    assert len([p for p in probes if p[2] == "denied"]) >= 4
    assert [p for p in probes if p[2] == "allowed"], "a control: the probe's network works at all"
    for probe in probes:
        expect, allowed = _evaluate(prod, probe)
        assert allowed == (expect == "allowed"), probe


def _allow_all(namespace: str, direction: str) -> dict:
    rule = "egress" if direction == "Egress" else "ingress"
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": f"allow-all-{rule}", "namespace": namespace},
            "spec": {"podSelector": {}, "policyTypes": [direction], rule: [{}]}}


def test_verify_probes_would_catch_an_open_path(prod) -> None:
    """A policy that opens a denied path (as no enforcement at all would) turns that probe's verdict around."""
    probes = {p[3]: p for p in _probes("prod")}
    assert _evaluate(prod, probes["kafka"]) == ("denied", False)
    opened = [*prod, _allow_all("todo-app", "Egress")]
    assert _evaluate(opened, probes["kafka"]) == ("denied", True), "Kafka admits all of todo-app: egress decides"
    assert _evaluate(opened, probes["postgres"]) == ("denied", False), "PostgreSQL admits named apps only"
    assert _evaluate([*opened, _allow_all("postgres", "Ingress")], probes["postgres"]) == ("denied", True)


def test_scripts_are_valid_bash() -> None:
    for script in ("install.sh", "verify.sh"):
        subprocess.run(["bash", "-n", str(OPERATORS / script)], check=True, timeout=30)
    plugin = OPERATORS / "helm-plugins" / "todo-postrender"
    assert os.access(plugin / "postrender", os.X_OK)
    assert (plugin / "plugin.yaml").read_text().count("type: postrenderer/v1") == 1
    assert Path(OPERATORS / "install.sh").stat().st_mode & 0o111

"""Every overlay renders with real kustomize and every object validates against the real schemas."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from console.manifests.render import KUSTOMIZE_DIR, RenderError, render_dir
from console.manifests.validate import ManifestValidator
from tests.kustomize.conftest import by_kind, one

DEPRECATED_FIELDS = {"patchesStrategicMerge", "patchesJson6902", "commonLabels", "vars", "bases", "images_"}


def test_every_object_validates_strictly(overlay, validator: ManifestValidator) -> None:
    name, objs = overlay
    problems = validator.validate_all(objs)
    assert not problems, f"{name}: " + "\n".join(map(str, problems))


def test_the_apps_overlay_validates_strictly(prod_apps, validator: ManifestValidator) -> None:
    problems = validator.validate_all(prod_apps)
    assert not problems, "\n".join(map(str, problems))


def test_custom_resources_are_checked_against_crds_not_skipped(prod, validator: ManifestValidator) -> None:
    kinds = {(o["apiVersion"], o["kind"]) for o in prod if validator.is_custom(o)}
    assert {("kafka.strimzi.io/v1", "Kafka"), ("kafka.strimzi.io/v1", "KafkaNodePool"),
            ("kafka.strimzi.io/v1", "KafkaTopic"), ("dapr.io/v2alpha1", "Subscription"),
            ("dapr.io/v1alpha1", "Component"), ("dapr.io/v1alpha1", "Resiliency"),
            ("dapr.io/v1alpha1", "Configuration"), ("keda.sh/v1alpha1", "ScaledObject"),
            ("cert-manager.io/v1", "Certificate"), ("cert-manager.io/v1", "ClusterIssuer"),
            ("monitoring.coreos.com/v1", "PodMonitor"), ("monitoring.coreos.com/v1", "ServiceMonitor"),
            ("monitoring.coreos.com/v1", "PrometheusRule"), ("k8s.nginx.org/v1", "VirtualServer"),
            ("postgresql.cnpg.io/v1", "Cluster"), ("postgresql.cnpg.io/v1", "Database"),
            ("postgresql.cnpg.io/v1", "ScheduledBackup")} <= kinds


@pytest.mark.parametrize(
    ("kind", "name", "mutate", "expect"),
    [
        ("Kafka", "todo-kafka", lambda o: o["spec"].__setitem__("zookeeper", {"replicas": 1}), "zookeeper"),
        ("KafkaTopic", "task-events", lambda o: o["spec"].__setitem__("partitons", 3), "partitons"),
        ("Subscription", "worker-task-events", lambda o: o["spec"].__setitem__("deadLetterTopik", "x"), "deadLetterTopik"),
        ("Component", "kafka-pubsub", lambda o: o["metadata"].__setitem__("labelz", {}), "labelz"),
        ("Deployment", "backend", lambda o: o["spec"]["template"]["spec"]["containers"][0].__setitem__("livenesProbe", {}),
         "livenesProbe"),
        ("PrometheusRule", "todo-alerts",
         lambda o: o["spec"]["groups"][0].__setitem__("partial_response_strategy", "sometimes"), "abort|warn"),
        ("VirtualServer", "todo",
         lambda o: o["spec"]["routes"][0]["action"]["proxy"].__setitem__("responseHeader", {}), "responseHeader"),
        ("Cluster", "todo-pg", lambda o: o["spec"]["backup"]["barmanObjectStore"].__setitem__("bucket", "x"), "bucket"),
        ("ScheduledBackup", "todo-pg-nightly", lambda o: o["spec"].__setitem__("method", "rsync"), "rsync"),
        ("ValidatingAdmissionPolicy", "todo-ci-deployer-guard",
         lambda o: o["spec"].__setitem__("validationz", []), "validationz"),
    ],
)
def test_validator_rejects_unknown_fields_and_bad_values(prod, validator, kind, name, mutate, expect) -> None:
    obj = copy.deepcopy(one(prod, kind, name))
    mutate(obj)
    problems = validator.validate(obj)
    assert problems, problems
    assert any(expect in str(p) for p in problems), problems


def test_strimzi_v1beta2_is_not_served(prod, validator) -> None:
    obj = copy.deepcopy(one(prod, "Kafka", "todo-kafka"))
    obj["apiVersion"] = "kafka.strimzi.io/v1beta2"
    assert any("no CRD schema" in str(p) for p in validator.validate(obj))


def test_kustomizations_use_only_current_fields() -> None:
    for path in KUSTOMIZE_DIR.rglob("kustomization.yaml"):
        doc = yaml.safe_load(path.read_text())
        used = DEPRECATED_FIELDS & set(doc)
        assert not used, f"{path}: deprecated kustomize fields {sorted(used)}"
        want_kind = "Component" if "components" in path.parts else "Kustomization"
        assert doc["kind"] == want_kind, path


def _kustomization(overlay: str) -> dict:
    return yaml.safe_load((KUSTOMIZE_DIR / "overlays" / overlay / "kustomization.yaml").read_text())


def test_overlays_share_the_layers_and_components() -> None:
    """dev and prod each get the app and the platform layer once, prod's app layer being prod-apps itself."""
    dev, prod, apps = _kustomization("dev"), _kustomization("prod"), _kustomization("prod-apps")
    assert {"../../base/apps", "../../base/platform"} <= set(dev["resources"])
    assert "../../base/apps" in apps["resources"]
    assert "../../base/platform" not in apps["resources"]
    assert {"../prod-apps", "../../base/platform"} <= set(prod["resources"])
    assert "../../base/apps" not in prod["resources"], "the app layer comes once, through prod-apps"
    assert "images" not in prod, "images are set once, in prod-apps (CD's kustomize edit set image)"
    for doc in (dev, prod, apps):
        assert "../../components/environment" in doc["components"]
    assert {"../../components/observability", "../../components/postgres-backups"} <= set(prod["components"])


def _kind_slug(kind: str) -> str:
    return kind.lower()


@pytest.mark.parametrize("layer", ["apps", "platform", "platform/namespaces"])
def test_base_is_one_resource_per_file_named_component_kind(layer) -> None:
    base = KUSTOMIZE_DIR / "base" / layer
    listed = [r for r in yaml.safe_load((base / "kustomization.yaml").read_text())["resources"] if r.endswith(".yaml")]
    on_disk = sorted(p.name for p in base.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(listed) == on_disk, "every base file is listed and every listed file exists"
    for name in on_disk:
        docs = [d for d in yaml.safe_load_all((base / name).read_text()) if d]
        kinds = {d["kind"] for d in docs}
        if kinds == {"KafkaNodePool", "Kafka"}:
            continue  # a Strimzi cluster may stay one applyable file
        assert len(docs) == 1, f"{name} holds {len(docs)} resources"
        assert re.fullmatch(rf"[a-z0-9-]+-{_kind_slug(docs[0]['kind'])}\.yaml", name), \
            f"{name} should be named <component>-{_kind_slug(docs[0]['kind'])}.yaml"


def test_sandbox_contract_resources_live_in_base() -> None:
    """The sandbox reads these from plain YAML under kustomize/base (CONTRIBUTING)."""
    docs = [d for p in (KUSTOMIZE_DIR / "base").rglob("*.yaml") for d in yaml.safe_load_all(p.read_text()) if d]
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs if "metadata" in d}
    for topic in ("task-events", "reminders", "task-updates"):
        assert ("KafkaTopic", topic) in kinds
        assert ("KafkaTopic", f"{topic}-dlq") in kinds
    assert ("Resiliency", "todo-resiliency") in kinds
    assert ("Component", "kafka-pubsub") in kinds
    assert len([k for k in kinds if k[0] == "Subscription"]) == 6


def test_render_error_is_reported(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources:\n  - missing.yaml\n")
    with pytest.raises(RenderError, match=r"missing\.yaml"):
        render_dir(tmp_path)


def test_no_secret_objects_and_no_placeholder_hosts_leak(overlay) -> None:
    _name, objs = overlay
    assert not by_kind(objs, "Secret"), "secrets are created by hand from kustomize/secrets/, never rendered"
    assert not [o for o in objs if o["metadata"]["name"] == "todo-environment"], "local-config input must not render"


def test_builtin_validation_agrees_with_kubernetes_validate(prod, validator: ManifestValidator) -> None:
    """The cached validators give kubernetes-validate's own verdict, one object of each built-in kind."""
    import kubernetes_validate

    samples: dict[str, dict] = {}
    for obj in prod:
        if not validator.is_custom(obj):
            samples.setdefault(obj["kind"], obj)
    broken = copy.deepcopy(one(prod, "Service", "backend"))
    broken["spec"]["ports"][0]["prot"] = 80
    for obj in [*samples.values(), broken]:
        ours = validator.validate(obj)
        try:
            kubernetes_validate.validate(obj, "1.33", strict=True)
            theirs = None
        except kubernetes_validate.ValidationError as err:
            theirs = err.message
        assert bool(ours) == bool(theirs), (obj["kind"], ours, theirs)
    assert validator.validate(broken)

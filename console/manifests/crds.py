"""Official CRD schemas: where they are, fetching the pinned copies, and strict validation against them.

The schema files are byte-for-byte copies of upstream blobs (shared/schemas/crds/SOURCES.md). ``PINNED``
lists the same files with their full git blob SHA so ``todo-console crds fetch`` can download and verify
them for users who are online.
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
import urllib.error
import urllib.request
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from console.manifests.render import REPO_ROOT

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
DEFAULT_BASE_URL = "https://raw.githubusercontent.com"


@dataclass(frozen=True)
class PinnedFile:
    """One upstream CRD file at a release tag, and the git blob SHA its bytes must hash to."""

    local: str  # path under the schema dir
    repo: str  # owner/name on GitHub
    ref: str  # release tag
    path: str  # path in the repository
    blob_sha: str  # git blob SHA-1 (git hash-object)

    def url(self, base_url: str = DEFAULT_BASE_URL) -> str:
        return f"{base_url.rstrip('/')}/{self.repo}/{self.ref}/{self.path}"


_STRIMZI = ("strimzi/strimzi-kafka-operator", "1.2.0", "install/cluster-operator")
_DAPR = ("dapr/dapr", "v1.18.3", "charts/dapr/crds")
_KEDA = ("kedacore/keda", "v2.20.2", "config/crd/bases")
_CERTM = ("cert-manager/cert-manager", "v1.21.1", "deploy/crds")
_PROM = ("prometheus-operator/prometheus-operator", "v0.93.0", "example/prometheus-operator-crd")
_CNPG = ("cloudnative-pg/cloudnative-pg", "v1.30.0", "config/crd/bases")
_GATEWAY = ("kubernetes-sigs/gateway-api", "v1.6.1", "config/crd/standard")
_NGINX = ("nginx/kubernetes-ingress", "v5.5.4", "config/crd/bases")


def _pin(folder: str, origin: tuple[str, str, str], name: str, sha: str) -> PinnedFile:
    repo, ref, prefix = origin
    return PinnedFile(f"{folder}/{name}", repo, ref, f"{prefix}/{name}", sha)


PINNED: tuple[PinnedFile, ...] = (
    _pin("strimzi", _STRIMZI, "040-Crd-kafka.yaml", "9598f1c26dff3ec2dc97781e52f3695366031525"),
    _pin("strimzi", _STRIMZI, "043-Crd-kafkatopic.yaml", "f239899977215306017af3fbf6f73ce4c52db813"),
    _pin("strimzi", _STRIMZI, "044-Crd-kafkauser.yaml", "ed0577a648413c49dc729fa75d6a49ce4f8850f4"),
    _pin("strimzi", _STRIMZI, "045-Crd-kafkanodepool.yaml", "5c8670088513ef9ff38fbb0c67002654abaacf7c"),
    _pin("dapr", _DAPR, "components.yaml", "4fd83fe6576722dc0f28d4de77a4c63b8ff32b36"),
    _pin("dapr", _DAPR, "configuration.yaml", "5925348f1b8bd8aaa87d7fc31f713a6f27c8ede8"),
    _pin("dapr", _DAPR, "subscription.yaml", "f04c24b095e1d3755d000840892beb04a63ef12e"),
    _pin("dapr", _DAPR, "resiliency.yaml", "eb939be1df8094f525131bc7ac7bd39e320cd7df"),
    _pin("dapr", _DAPR, "httpendpoints.yaml", "92ae6be212c21f725d226a57fafde0fb5399c343"),
    _pin("keda", _KEDA, "keda.sh_scaledobjects.yaml", "f0302424ebce7f1903433910ae7a978c73ae85f3"),
    _pin("keda", _KEDA, "keda.sh_triggerauthentications.yaml", "e345ac8f39d464ad6fb41d202dfd3de5e7b36911"),
    _pin("cert-manager", _CERTM, "cert-manager.io_certificates.yaml", "1eb46fbeed2127650fe4ec06ddc7289163f75e3b"),
    _pin("cert-manager", _CERTM, "cert-manager.io_issuers.yaml", "bfa8262b5628e1d8ea7cc398cf1ad321a2bedc62"),
    _pin("cert-manager", _CERTM, "cert-manager.io_clusterissuers.yaml", "f24cab2d55ebe37a8c000d10d7f9de19636027f9"),
    _pin("prometheus-operator", _PROM, "monitoring.coreos.com_podmonitors.yaml", "5c1bde3d4a5f3131fd6c148ab933193b867173f2"),
    _pin("prometheus-operator", _PROM, "monitoring.coreos.com_servicemonitors.yaml", "f5736255990a0e152851fadb55f84d6fd0f91d87"),
    _pin("prometheus-operator", _PROM, "monitoring.coreos.com_prometheusrules.yaml", "b423c3225b18489ca7bbc5091f38f7003c4bf3fc"),
    _pin("cnpg", _CNPG, "postgresql.cnpg.io_clusters.yaml", "a65a1f0e93d46f092440ac42d1516a40822ca640"),
    _pin("cnpg", _CNPG, "postgresql.cnpg.io_backups.yaml", "ffe59ea881c254ad64c0a9539ea40a43aab5852a"),
    _pin("cnpg", _CNPG, "postgresql.cnpg.io_scheduledbackups.yaml", "8447e78fca3768de9caa03d717251da230513fcb"),
    _pin("cnpg", _CNPG, "postgresql.cnpg.io_poolers.yaml", "76df8b6022738f00c46839f0d896d7f0e0ddd60a"),
    _pin("cnpg", _CNPG, "postgresql.cnpg.io_databases.yaml", "5ec7f65d6df2bb50818811d596e252a5ece6023c"),
    _pin("gateway-api", _GATEWAY, "gateway.networking.k8s.io_gatewayclasses.yaml", "ea55d0dad02d431952739c5bdac13db35fad3a3d"),
    _pin("gateway-api", _GATEWAY, "gateway.networking.k8s.io_gateways.yaml", "6de4376f21fc8d304ac467f089686b84ccc5dbfb"),
    _pin("gateway-api", _GATEWAY, "gateway.networking.k8s.io_httproutes.yaml", "32145881f43cbc528911e5640ee37af75e06d9d7"),
    _pin("gateway-api", _GATEWAY, "gateway.networking.k8s.io_grpcroutes.yaml", "452de9a22e3318fe722410814c753e223bffaefc"),
    _pin("gateway-api", _GATEWAY, "gateway.networking.k8s.io_referencegrants.yaml", "feb92c3727eb9ebc77ae9cedd9dd2add44429184"),
    _pin("nginx-ingress", _NGINX, "k8s.nginx.org_virtualservers.yaml", "009fde127936d088ebc8c54db672094091c907ea"),
    _pin("nginx-ingress", _NGINX, "k8s.nginx.org_virtualserverroutes.yaml", "d85d72aebffdb68894e0d933585acc5d5084304e"),
    _pin("nginx-ingress", _NGINX, "k8s.nginx.org_policies.yaml", "b76983b9d1c3d1bb193a036d3e2541ba4a5cf523"),
    _pin("nginx-ingress", _NGINX, "k8s.nginx.org_transportservers.yaml", "073773492df9e013eb3ea33c976ea98b52a05911"),
)


class CrdError(Exception):
    """A schema directory or download problem, phrased for the user."""


def schema_dir() -> Path:
    """``CRD_SCHEMA_DIR``, or the team's shared copy next to the repository."""
    env = os.environ.get("CRD_SCHEMA_DIR")
    return Path(env) if env else (REPO_ROOT.parent / "shared" / "schemas" / "crds")


def git_blob_sha(data: bytes) -> str:
    """The SHA-1 git gives these bytes as a blob (``git hash-object``)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def fetch_pinned(
    dest: Path,
    *,
    base_url: str = DEFAULT_BASE_URL,
    files: Iterable[PinnedFile] = PINNED,
    timeout: float = 30.0,
) -> list[tuple[PinnedFile, str]]:
    """Download every pinned file into ``dest`` and verify its blob SHA before it lands.

    Files already present with the right hash are kept. A mismatch never overwrites anything: the
    download goes to a temporary name and is renamed only once verified. Returns (file, status) pairs,
    status being ``kept`` or ``fetched``.
    """
    results: list[tuple[PinnedFile, str]] = []
    for pinned in files:
        target = dest / pinned.local
        if target.is_file() and git_blob_sha(target.read_bytes()) == pinned.blob_sha:
            results.append((pinned, "kept"))
            continue
        url = pinned.url(base_url)
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (https pinned; http/file only in tests)
                data = resp.read()
        except (urllib.error.URLError, OSError) as exc:
            raise CrdError(f"download of {url} failed: {exc}") from exc
        got = git_blob_sha(data)
        if got != pinned.blob_sha:
            raise CrdError(f"{url}: blob sha {got} does not match the pinned {pinned.blob_sha}")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".part")
            partial.write_bytes(data)
            partial.replace(target)
        except OSError as exc:
            raise CrdError(f"cannot write {target}: {exc}") from exc
        results.append((pinned, "fetched"))
    return results


# ----------------------------------------------------------------------------- schema conversion

def _re2_to_python(pattern: str) -> str:
    """RE2 allows flag groups like ``(?i)`` mid-pattern; Python only at the start, so move them there."""
    flags = re.findall(r"\(\?([a-zA-Z]+)\)", pattern)
    if not flags:
        return pattern
    stripped = re.sub(r"\(\?[a-zA-Z]+\)", "", pattern)
    return "(?" + "".join(sorted(set("".join(flags)))) + ")" + stripped


def strict_schema(node: Any, *, root: bool = True) -> Any:
    """Turn a CRD structural schema into a JSON Schema that rejects unknown fields like the API server.

    * objects without ``additionalProperties`` or ``x-kubernetes-preserve-unknown-fields`` accept only
      their declared properties (the API server prunes or, with strict field validation, rejects the rest);
    * ``x-kubernetes-int-or-string`` accepts an integer or a string; ``nullable`` accepts null;
    * RE2 patterns with inline flags are rewritten for Python's ``re``;
    * the root ``metadata`` stays open here and is checked against ObjectMeta separately.
    CEL rules (``x-kubernetes-validations``) are not evaluated.
    """
    if isinstance(node, list):
        return [strict_schema(item, root=False) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("properties", "patternProperties"):
            out[key] = {k: strict_schema(v, root=False) for k, v in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = strict_schema(value, root=False) if isinstance(value, (dict, list)) else value
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [strict_schema(v, root=False) for v in value]
        elif key == "pattern" and isinstance(value, str):
            out[key] = _re2_to_python(value)
        elif key in ("description", "x-kubernetes-validations", "format", "default", "example"):
            continue
        else:
            out[key] = value
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out["anyOf"] = out.get("anyOf") or [{"type": "integer"}, {"type": "string"}]
    preserve = out.pop("x-kubernetes-preserve-unknown-fields", False)
    out.pop("x-kubernetes-embedded-resource", None)
    for k in [k for k in out if k.startswith("x-kubernetes-")]:
        out.pop(k)
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"]
    is_object = out.get("type") == "object" or (isinstance(out.get("type"), list) and "object" in out["type"])
    if is_object and not preserve and "additionalProperties" not in out:
        out["additionalProperties"] = False
    if root:
        props = out.setdefault("properties", {})
        props["metadata"] = {"type": "object"}
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
    return out


@dataclass(frozen=True)
class CrdVersion:
    group: str
    version: str
    kind: str
    scope: str
    schema: dict[str, Any]


def load_crds(directory: Path | None = None, kinds: Collection[str] | None = None) -> dict[tuple[str, str], CrdVersion]:
    """Every served version of every CRD under the directory, keyed by (apiVersion, kind).

    `kinds`: only the files that may define one of these kinds are parsed (a `kind: <Kind>` line), so a
    validation of a few objects does not pay seconds of YAML parsing for every CRD of every operator."""
    root = directory or schema_dir()
    if not root.is_dir():
        raise CrdError(
            f"CRD schema directory {root} does not exist: set CRD_SCHEMA_DIR or run `todo-console crds fetch`"
        )
    found: dict[tuple[str, str], CrdVersion] = {}
    wanted = re.compile(rf"^\s*kind:\s*[\"']?(?:{'|'.join(map(re.escape, kinds))})[\"']?\s*$", re.MULTILINE) \
        if kinds is not None else None
    for path in sorted(root.rglob("*.yaml")):
        text = path.read_text()
        if wanted is not None and not wanted.search(text):
            continue
        for doc in yaml.load_all(text, Loader=_LOADER):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for ver in spec["versions"]:
                if not ver.get("served", True):
                    continue
                raw = (ver.get("schema") or {}).get("openAPIV3Schema") or {"type": "object"}
                api_version = f"{spec['group']}/{ver['name']}"
                found[(api_version, spec["names"]["kind"])] = CrdVersion(
                    spec["group"], ver["name"], spec["names"]["kind"], spec.get("scope", "Namespaced"),
                    strict_schema(copy.deepcopy(raw)),
                )
    if not found:
        raise CrdError(f"no CustomResourceDefinition found under {root}")
    return found

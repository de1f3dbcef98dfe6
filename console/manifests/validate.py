"""Validate rendered objects: built-in kinds with kubernetes-validate (strict), custom resources against the
official CRD schemas with unknown fields rejected, and every custom resource's metadata against ObjectMeta."""

from __future__ import annotations

import functools
import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
from kubernetes_validate import utils as kv_utils
from referencing import Registry, Resource

from console.manifests.crds import CrdVersion, load_crds
from console.manifests.render import ObjectRef

KUBERNETES_VERSION = "1.33"
_DEFS_URI = "https://kubernetes.io/api/_definitions.json"
_OBJECT_META = f"{_DEFS_URI}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


@dataclass(frozen=True)
class Problem:
    """One object that failed validation, and why."""

    ref: ObjectRef
    message: str

    def __str__(self) -> str:
        return f"{self.ref}: {self.message}"


def _where(err: jsonschema.ValidationError) -> str:
    path = "/".join(str(p) for p in err.absolute_path)
    return f"at /{path}: {err.message}" if path else err.message


def _schema_version(version: str) -> str:
    """The newest schema set kubernetes-validate ships that is not newer than ``version`` (as it resolves it)."""
    wanted = kv_utils.major_minor(version)
    candidates = [v for v in kv_utils.all_versions() if kv_utils.major_minor(v) <= wanted]
    if not candidates:
        raise kv_utils.VersionNotSupportedError(version)
    return candidates[-1]


@functools.lru_cache(maxsize=4)
def _definitions(version: str) -> Registry:
    full = _schema_version(version)
    defs = kv_utils.schema_contents(f"kubernetes-json-schema/v{full}-local-strict/_definitions.json", version)
    return Resource.from_contents(defs) @ Registry()


@functools.lru_cache(maxsize=4)
def _object_meta_validator(version: str) -> jsonschema.protocols.Validator:
    return jsonschema.Draft202012Validator({"$ref": _OBJECT_META}, registry=_definitions(version))


@functools.lru_cache(maxsize=256)
def _builtin_validator(version: str, api_version: str, kind: str) -> jsonschema.protocols.Validator:
    """kubernetes-validate's strict schema for one kind, compiled once.

    Same files and resolution as ``kubernetes_validate.validate(..., strict=True)``, which reloads the
    1.4 MB definitions file on every call; caching the compiled validator keeps the suite fast.
    """
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    full = _schema_version(version)
    try:
        schema = kv_utils.schema_contents(
            f"kubernetes-json-schema/v{full}-local-strict/{kind.lower()}-{api}.json", version
        )
    except FileNotFoundError:
        raise kv_utils.SchemaNotFoundError(kind=kind, version=version, api_version=api_version) from None
    registry = Resource.from_contents(schema) @ _definitions(version)
    return jsonschema.Draft202012Validator(schema, registry=registry)


class ManifestValidator:
    """Validates objects against one Kubernetes version and one CRD schema directory."""

    def __init__(self, crd_dir: Path | None = None, kubernetes_version: str = KUBERNETES_VERSION, *,
                 kinds: Collection[str] | None = None) -> None:
        """`kinds`: load only the CRDs of these kinds (the ones the objects to validate have)."""
        self.kubernetes_version = kubernetes_version
        self.crds: dict[tuple[str, str], CrdVersion] = load_crds(crd_dir, kinds)
        self._crd_validators: dict[tuple[str, str], jsonschema.protocols.Validator] = {}

    def _crd_validator(self, key: tuple[str, str]) -> jsonschema.protocols.Validator:
        if key not in self._crd_validators:
            schema = self.crds[key].schema
            # OpenAPI v3 schemas are draft-4 flavoured (boolean exclusiveMinimum and friends).
            self._crd_validators[key] = jsonschema.Draft4Validator(schema)
        return self._crd_validators[key]

    def is_custom(self, obj: dict[str, Any]) -> bool:
        return (obj.get("apiVersion"), obj.get("kind")) in self.crds

    def validate(self, obj: dict[str, Any]) -> list[Problem]:
        """Every problem with one object (empty when it is valid)."""
        ref = ObjectRef.of(obj)
        key = (obj.get("apiVersion"), obj.get("kind"))
        if key in self.crds:
            return self._validate_custom(obj, ref, self.crds[key])
        group = str(obj.get("apiVersion", "")).rpartition("/")[0]
        if "." in group and not group.endswith(".k8s.io"):
            return [Problem(ref, f"no CRD schema for {key[0]} {key[1]} in the schema directory")]
        try:
            validator = _builtin_validator(self.kubernetes_version, str(key[0]), str(key[1]))
        except kv_utils.SchemaNotFoundError as err:
            return [Problem(ref, err.message)]
        return [Problem(ref, _where(err)) for err in sorted(validator.iter_errors(obj), key=str)]

    def _validate_custom(self, obj: dict[str, Any], ref: ObjectRef, crd: CrdVersion) -> list[Problem]:
        problems = [
            Problem(ref, _where(err))
            for err in sorted(self._crd_validator((obj["apiVersion"], obj["kind"])).iter_errors(obj), key=str)
        ]
        meta = obj.get("metadata") or {}
        problems += [
            Problem(ref, "metadata " + _where(err))
            for err in _object_meta_validator(self.kubernetes_version).iter_errors(meta)
        ]
        if crd.scope == "Namespaced" and not meta.get("namespace"):
            problems.append(Problem(ref, "namespaced custom resource without metadata.namespace"))
        if crd.scope == "Cluster" and meta.get("namespace"):
            problems.append(Problem(ref, "cluster-scoped custom resource with metadata.namespace"))
        return problems

    def validate_all(self, objs: list[dict[str, Any]]) -> list[Problem]:
        return [p for obj in objs for p in self.validate(obj)]

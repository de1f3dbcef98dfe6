"""Fixtures of every console test: the Kubernetes stand-in (tests/utils/kube_fixtures.py)."""

from tests.utils.kube_fixtures import cluster, kubeconfig, prod_objects, serving_cert  # noqa: F401

"""Clients of the stand-in cluster for the Kubernetes tests (the cluster and its kubeconfig: tests/utils/kube_fixtures.py)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config


@pytest.fixture
def admin(kubeconfig: Path) -> Iterator[client.ApiClient]:
    api = config.new_client_from_config(config_file=str(kubeconfig), context="stand-in")
    yield api
    api.close()


@pytest.fixture
def viewer(kubeconfig: Path) -> Iterator[client.ApiClient]:
    api = config.new_client_from_config(config_file=str(kubeconfig), context="stand-in-viewer")
    yield api
    api.close()


def raw(response: Any) -> dict[str, Any]:
    """The JSON body of a `_preload_content=False` call of the official client."""
    return json.loads(response.data)


def call(method: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Call one of the official client's API methods and get the API server's JSON as it sent it."""
    return raw(method(*args, _preload_content=False, **kwargs))


def status_of(exc: client.ApiException) -> dict[str, Any]:
    return json.loads(exc.body or "{}")

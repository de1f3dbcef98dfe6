"""What the rollout, pods and resources commands share: the target's source, errors as one line, JSON views.

A command opens the source inside `workloads(args)`; whatever the source raises (`SourceError`: the API
server or the sandbox cannot answer; `Unknown`: no such Deployment, the sandbox has no revisions)
leaves as a `CliError`, i.e. one line on stderr and exit code 2. The `*_json` functions are the
documented `--json` shapes (console/README.md): dataclass fields as they are, plus the derived
judgements (`done`, `problem`, `ready`) a script would otherwise recompute.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

from console.cli import CliError
from console.model.platform import PlatformResource
from console.model.pods import PodSummary
from console.model.rollout import RolloutStatus
from console.sources.health import SourceError
from console.sources.workloads import Unknown, Workloads, open_workloads
from console.target import Target, resolve_target


@contextmanager
def workloads(args: argparse.Namespace) -> Iterator[tuple[Target, Workloads]]:
    target = resolve_target(args)
    try:
        source = open_workloads(target)
    except SourceError as exc:
        raise CliError(str(exc)) from exc
    try:
        yield target, source
    except (SourceError, Unknown) as exc:
        raise CliError(str(exc)) from exc
    finally:
        source.close()


def rollout_json(status: RolloutStatus) -> dict[str, Any]:
    return {**asdict(status), "done": status.done, "problem": status.problem}


def pod_json(pod: PodSummary) -> dict[str, Any]:
    return {**asdict(pod), "ready": pod.ready}


def resource_json(resource: PlatformResource) -> dict[str, Any]:
    return {**asdict(resource), "facts": dict(resource.facts())}

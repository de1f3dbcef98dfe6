"""Bootstrap a cluster as a runbook: install.sh's plan, checked, then (for real) run and verified with Helm.

`kustomize/operators/install.sh` is the one procedure (kustomize/README.md, operator guide, step 2): the
preflight, Calico, the namespaces, the Secrets, then the Helm charts of `versions.env` in order, each with
`--wait`. This module does not repeat it. It reads the commands the script would run (its DRY_RUN mode),
shows them, checks them against versions.env and replays them against the manifests
(console/manifests/bootstrap.py); for real it runs the script, streaming its output, then asks Helm what is
installed and compares it with the pinned versions.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from typing import IO, Any, cast

from console.manifests.bootstrap import INSTALL_SCRIPT, Step, dry_run, replay_bootstrap
from console.manifests.budget import Release, read_releases
from console.runbooks.procedures import Outcome, ProcedureError

Say = Callable[[str], None]
ENVIRONMENTS = ("dev", "prod")


def planned_steps(environment: str) -> list[Step]:
    """The commands `install.sh <environment>` would run, in order (secret values are never printed)."""
    from console.manifests.bootstrap import BootstrapError

    try:
        return dry_run(environment)
    except BootstrapError as exc:
        raise ProcedureError(str(exc)) from None


def pinned_releases(environment: str) -> list[Release]:
    return [r for r in read_releases() if environment in r.environments]


def _option(argv: tuple[str, ...], name: str) -> str | None:
    return next((argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == name), None)


def phase(step: Step) -> str:
    """What a step is for, as the operator guide names the bootstrap's phases."""
    argv = step.argv
    if argv[:1] == ("todo-console",):
        return "preflight"
    if argv[:3] == ("helm", "upgrade", "--install"):
        return "operator"
    if argv[:2] == ("helm", "repo"):
        return "chart repository"
    if argv[:2] == ("helm", "plugin"):
        return "Helm plugin"
    if argv[:4] == ("kubectl", "create", "secret", "generic"):
        return "secret"
    if "namespaces" in " ".join(argv):
        return "namespaces"
    return "Calico"


def step_rows(steps: list[Step]) -> list[tuple[int, str, str]]:
    rows = []
    for step in steps:
        argv, kind = step.argv, phase(step)
        if kind == "operator":
            what = (f"{argv[3]} {_option(argv, '--version')} into {_option(argv, '--namespace')}, "
                    f"waited for (--timeout {_option(argv, '--timeout')})")
        elif kind == "secret":
            what = f"Secret {_option(argv, '--namespace')}/{argv[4]}"
        else:
            what = " ".join(argv)
        rows.append((step.number, kind, what))
    return rows


def release_rows(releases: list[Release]) -> list[tuple[int, str, str, str, str]]:
    return [(i, r.name, r.namespace, r.chart, r.version) for i, r in enumerate(releases, start=1)]


def order_outcome(steps: list[Step], environment: str) -> Outcome:
    """Every pinned release installed, in versions.env's order, at its version, with Helm waiting for it."""
    name = "the operators install in order, at their pinned versions, each waited for"
    installs = [s.argv for s in steps if phase(s) == "operator"]
    wanted = pinned_releases(environment)
    problems = []
    if [a[3] for a in installs] != [r.name for r in wanted]:
        problems.append(f"order {[a[3] for a in installs]} is not versions.env's {[r.name for r in wanted]}")
    for argv, release in zip(installs, wanted, strict=False):
        if _option(argv, "--version") != release.version:
            problems.append(f"{release.name} at {_option(argv, '--version')}, pinned {release.version}")
        if "--wait" not in argv or not _option(argv, "--timeout"):
            problems.append(f"{release.name} is not waited for (--wait --timeout)")
    if problems:
        return Outcome(name, False, "; ".join(problems))
    return Outcome(name, True, ", ".join(f"{r.name} {r.version}" for r in wanted))


def secrets_outcome(steps: list[Step]) -> Outcome:
    name = "no secret value appears in the plan"
    leaks = [s.number for s in steps for arg in s.argv if arg.startswith("--from-file=") and not arg.endswith("<value>")]
    if leaks:
        return Outcome(name, False, f"steps {leaks} print a value")
    return Outcome(name, True, f"{sum(1 for s in steps if phase(s) == 'secret')} Secrets, values never printed")


def replay_outcome(environment: str, steps: list[Step]) -> Outcome:
    """console/manifests/bootstrap.py's replay: each step, then the overlay, finds what it needs."""
    from console.manifests.render import RenderError, render_overlay

    name = "every step finds the namespaces, Secrets and CRDs it needs"
    try:
        objects = render_overlay(environment)
    except RenderError as exc:
        return Outcome(name, False, f"the {environment} overlay does not render: {exc}")
    problems = replay_bootstrap(environment, steps, objects).problems
    if problems:
        return Outcome(name, False, f"{len(problems)} problems; first: {problems[0]}")
    return Outcome(name, True, f"{len(steps)} steps, then kustomize/overlays/{environment}: nothing missing")


def install(environment: str, say: Say = print) -> Outcome:
    """Run install.sh for real, each line of its output timestamped as it comes."""
    name = f"install.sh {environment} finished"
    began = time.monotonic()
    bash = shutil.which("bash") or "/bin/bash"
    env = {k: v for k, v in os.environ.items() if k != "DRY_RUN"}
    last = ""
    with subprocess.Popen([bash, str(INSTALL_SCRIPT), environment], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, env=env) as proc:
        for line in cast(IO[str], proc.stdout):
            last = line.rstrip() or last
            say(f"{time.strftime('%H:%M:%S')} {line.rstrip()}")
    seconds = time.monotonic() - began
    if proc.returncode != 0:
        return Outcome(name, False, f"exit code {proc.returncode}: {last}", seconds)
    return Outcome(name, True, f"in {seconds:.0f}s", seconds)


def installed_releases() -> list[dict[str, Any]]:
    """`helm list --all-namespaces --output json`: what Helm says is installed."""
    helm = shutil.which("helm")
    if helm is None:
        raise ProcedureError("helm not found on PATH (Helm 4, kustomize/README.md)")
    proc = subprocess.run([helm, "list", "--all-namespaces", "--output", "json"], capture_output=True, text=True,
                          timeout=120, check=False)
    if proc.returncode != 0:
        raise ProcedureError(f"helm list failed: {proc.stderr.strip()}")
    listed = json.loads(proc.stdout or "[]")
    return listed if isinstance(listed, list) else []


def releases_outcome(listed: list[dict[str, Any]], environment: str) -> Outcome:
    """Every pinned release deployed, at its pinned chart version, in its namespace (Helm's `chart` is
    `<chart>-<version>`)."""
    name = "every operator is deployed at its pinned version"
    found = {(r.get("name"), r.get("namespace")): r for r in listed}
    problems = []
    for release in pinned_releases(environment):
        entry = found.get((release.name, release.namespace))
        if entry is None:
            problems.append(f"{release.name} is not installed in {release.namespace}")
        elif entry.get("chart") != f"{release.chart}-{release.version}":
            problems.append(f"{release.name} runs {entry.get('chart')}, pinned {release.chart}-{release.version}")
        elif entry.get("status") != "deployed":
            problems.append(f"{release.name} is {entry.get('status')}")
    if problems:
        return Outcome(name, False, "; ".join(problems))
    return Outcome(name, True, f"{len(pinned_releases(environment))} releases deployed")

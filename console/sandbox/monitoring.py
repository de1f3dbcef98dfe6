"""An optional Prometheus for the sandbox, so `todo-console alerts` and `events` answer on a laptop too.

When the `prometheus` binary is on PATH (Debian `prometheus`), `up` plans it as one more supervised
process. It scrapes every process that declares a `metrics_url` (the services' `/metrics`; a sidecar's
too once it serves one, as daprd does on its metrics port), with the target labels the cluster's
ServiceMonitor gives (`namespace`, `pod`, `container`, `service`, `job`), and it evaluates the REAL alert
rules, taken from the PrometheusRule manifest the cluster applies: a service that stops answering its
scrapes fires `TodoScrapeTargetDown` here as it would there. Rules over metrics the sandbox has no
exporter for (kube-state-metrics, Kafka Exporter, the ingress controller, daprd) never match.

Its URL goes into the plan's `urls`, hence `state.json`, where the console finds it. Without the binary
the sandbox runs as before, and `up` says that Prometheus is not running and why.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from console.sandbox.catalog import PlanError, PortAllocator
from console.sandbox.layout import REPO_ROOT, SandboxLayout
from console.sandbox.plan import Plan, ProcessSpec

NAME = "prometheus"
PROMETHEUS_OFFSET = 93  # with a port base: base+93 (broker +90, durable S3 +91, PostgreSQL +92: catalog.py)
RULES_MANIFEST = REPO_ROOT / "kustomize" / "components" / "observability" / "todo-alerts-prometheusrule.yaml"
NAMESPACE = "todo-app"  # what the ServiceMonitor's targets carry in the cluster; the rules select on it
# The cluster's ServiceMonitor/PodMonitors scrape every 30 s (kustomize/components/observability), and the
# console's rate window (console/sources/prometheus.py DEFAULT_WINDOW, 2m) and the alert rules are written
# for that. The sandbox scraped every 5 s until issue 16: each scrape costs a service 3.6-4 ms of CPU, so
# five services plus Prometheus itself were about 0.6 % of a core of an idle sandbox's 7-10 %.
SCRAPE_INTERVAL_S = 30.0
SCRAPE_TIMEOUT_S = 10.0  # Prometheus's (and the Prometheus Operator's) default scrape_timeout
RETENTION = "1d"  # the TSDB in <dir>/prometheus/data is kept across down/up (trends survive a restart)


def prometheus_binary() -> str | None:
    return shutil.which("prometheus")


def not_running_reason() -> str | None:
    """Why the sandbox runs no Prometheus, or None when it does (for `up` to print)."""
    return None if prometheus_binary() else "no `prometheus` on PATH (Debian: apt-get install prometheus)"


def config_dir(layout: SandboxLayout) -> Path:
    return layout.root / NAME


def add_prometheus(plan: Plan, layout: SandboxLayout, allocator: PortAllocator) -> ProcessSpec | None:
    """Add Prometheus to `plan` (process and URL) and write its configuration; None without the binary."""
    binary = prometheus_binary()
    if binary is None:
        return None
    port = allocator.take(PROMETHEUS_OFFSET, NAME)
    root = config_dir(layout)
    write_config(root, plan.processes)
    url = f"http://127.0.0.1:{port}"
    spec = ProcessSpec(
        name=NAME,
        argv=[binary, f"--config.file={root / 'prometheus.yml'}", f"--storage.tsdb.path={root / 'data'}",
              f"--storage.tsdb.retention.time={RETENTION}", f"--web.listen-address=127.0.0.1:{port}",
              "--log.format=json"],
        cwd=str(root),
        port=port,
        ready_url=f"{url}/-/ready",
        ready_status=200,
        kind="monitor",
        liveness_url=f"{url}/-/healthy",
    )
    plan.processes.append(spec)
    plan.urls[NAME] = url
    return spec


def write_config(root: Path, processes: Iterable[ProcessSpec], *, interval_s: float = SCRAPE_INTERVAL_S,
                 rules: dict[str, Any] | None = None) -> Path:
    """`prometheus.yml` scraping `processes`, and the rules file it loads (default: the real rules)."""
    root.mkdir(parents=True, exist_ok=True)
    rules_file = root / "todo-alerts.rules.yml"
    rules_file.write_text(yaml.safe_dump(rules if rules is not None else alert_rules(), sort_keys=False))
    config = root / "prometheus.yml"
    config.write_text(yaml.safe_dump(scrape_config(processes, rules_file, interval_s), sort_keys=False))
    return config


def alert_rules(manifest: Path = RULES_MANIFEST) -> dict[str, Any]:
    """The groups of every PrometheusRule in `manifest` as a Prometheus rules file, as the operator does."""
    try:
        documents = list(yaml.safe_load_all(manifest.read_text()))
    except (OSError, yaml.YAMLError) as exc:
        raise PlanError(f"cannot read the alert rules {manifest}: {exc}") from exc
    groups = [group for doc in documents if isinstance(doc, dict) and doc.get("kind") == "PrometheusRule"
              for group in (doc.get("spec") or {}).get("groups") or ()]
    if not groups:
        raise PlanError(f"no PrometheusRule groups in {manifest}")
    return {"groups": groups}


def scrape_config(processes: Iterable[ProcessSpec], rules_file: Path, interval_s: float) -> dict[str, Any]:
    """One job per process with a `metrics_url`, labelled as the cluster's monitors label their targets."""
    interval = f"{round(interval_s * 1000)}ms"
    timeout = f"{round(min(interval_s, SCRAPE_TIMEOUT_S) * 1000)}ms"  # may not exceed the interval
    jobs = []
    for spec in processes:
        if not spec.metrics_url:
            continue
        url = urlsplit(spec.metrics_url)
        labels = {"namespace": NAMESPACE, "pod": spec.name, "service": spec.app_id or spec.name,
                  "container": "daprd" if spec.kind == "sidecar" else "app"}
        jobs.append({"job_name": spec.name, "scheme": url.scheme or "http", "metrics_path": url.path or "/metrics",
                     "static_configs": [{"targets": [url.netloc], "labels": labels}]})
    return {
        "global": {"scrape_interval": interval, "scrape_timeout": timeout, "evaluation_interval": interval},
        "rule_files": [str(rules_file)],
        "scrape_configs": jobs,
    }

"""The single-scheduler post-render transform, through the Helm plugin's own script.

There is no helm binary here; the input is the dapr 1.18.3 chart's scheduler StatefulSet as its template
renders it in dapr-system (charts/dapr/charts/dapr_scheduler/templates/dapr_scheduler_statefulset.yaml),
reduced to the fields the transform reads, with an extra container as global.extraContainers would add.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from console.manifests.postrender import PostRenderError, render
from console.manifests.render import KUSTOMIZE_DIR

MEMBERS = ",".join(f"dapr-scheduler-server-{i}=https://dapr-scheduler-server-{i}.dapr-scheduler-server.dapr-system"
                   f".svc.cluster.local:2380" for i in range(3))
CHART_OUTPUT = f"""\
apiVersion: v1
kind: Service
metadata: {{name: dapr-scheduler-server, namespace: dapr-system}}
spec: {{clusterIP: None, ports: [{{name: api, port: 50006}}]}}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: dapr-scheduler-server, namespace: dapr-system}}
spec:
  replicas: 3
  serviceName: dapr-scheduler-server
  podManagementPolicy: Parallel
  volumeClaimTemplates:
  - metadata: {{name: dapr-scheduler-data-dir}}
    spec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 50Gi}}}}}}
  template:
    spec:
      containers:
      - name: extra
        image: busybox
      - name: dapr-scheduler-server
        image: ghcr.io/dapr/scheduler:1.18.3
        args: ["--listen-address=0.0.0.0", "--id", "$(SCHEDULER_ID)", "--etcd-initial-cluster", "{MEMBERS}",
               "--etcd-embed=true"]
"""


def _scheduler(docs: list[dict]) -> dict:
    return next(d for d in docs if d["kind"] == "StatefulSet")


def test_one_replica_one_etcd_member_everything_else_untouched() -> None:
    docs = list(yaml.safe_load_all(render(CHART_OUTPUT, ["single-scheduler"])))
    sts = _scheduler(docs)
    assert sts["spec"]["replicas"] == 1
    args = sts["spec"]["template"]["spec"]["containers"][1]["args"]
    member = args[args.index("--etcd-initial-cluster") + 1]
    assert member == "dapr-scheduler-server-0=https://dapr-scheduler-server-0.dapr-scheduler-server.dapr-system.svc.cluster.local:2380"
    assert args[-1] == "--etcd-embed=true"
    original = list(yaml.safe_load_all(CHART_OUTPUT))
    assert docs[0] == original[0]
    assert sts["spec"]["volumeClaimTemplates"] == _scheduler(original)["spec"]["volumeClaimTemplates"]
    assert sts["spec"]["template"]["spec"]["containers"][0] == {"name": "extra", "image": "busybox"}


@pytest.mark.parametrize(("text", "names", "message"), [
    ("apiVersion: v1\nkind: Service\nmetadata: {name: x}\n", ["single-scheduler"], "no StatefulSet dapr-scheduler-server"),
    (CHART_OUTPUT.replace("--etcd-initial-cluster", "--etcd-cluster"), ["single-scheduler"], "no --etcd-initial-cluster"),
    (CHART_OUTPUT.replace("dapr-scheduler-server-0=", "scheduler-0="), ["single-scheduler"], "names no member"),
    (CHART_OUTPUT, ["three-schedulers"], "unknown or missing transform"),
    (CHART_OUTPUT, [], "unknown or missing transform"),
])
def test_a_chart_that_changed_stops_the_install(text: str, names: list[str], message: str) -> None:
    with pytest.raises(PostRenderError, match=message):
        render(text, names)


def test_the_helm_plugin_script_runs_the_transform() -> None:
    """What Helm 4 runs: the plugin's command, manifests on stdin, the transform name as argument."""
    script = KUSTOMIZE_DIR / "operators" / "helm-plugins" / "todo-postrender" / "postrender"
    env = {"PATH": os.environ["PATH"], "TODO_PYTHON": sys.executable}
    done = subprocess.run([str(script), "single-scheduler"], input=CHART_OUTPUT, env=env, capture_output=True,
                          text=True, timeout=60, check=True)
    assert _scheduler(list(yaml.safe_load_all(done.stdout)))["spec"]["replicas"] == 1
    failed = subprocess.run([str(script), "single-scheduler"], input="kind: Service\nmetadata: {name: x}\n", env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert failed.returncode == 1
    assert failed.stderr.startswith("todo-postrender: no StatefulSet")

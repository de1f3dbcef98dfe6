"""Provisioning against the OCI stand-in: API calls made by `plan` on a full environment, and apply's wall time.

Run by hand: ``python tests/bench/bench_provision.py [--work-request-s 5] [--provisioning-s 1] [--poll-s 0.5]``.
Starts the OCI stand-in (tests/provisioning/oci_standin) with work requests that take a fixed time each and
VCN resources that stay PROVISIONING for a fixed time, then runs `todo-console provision` in-process:
apply on an empty compartment (timed), plan on the full environment (requests counted by SDK operation,
timed over several runs), destroy (timed). Plan should make one list call per resource kind (no per-resource
polling); apply's wall time is bounded below by the sum of the waits, since each step waits for the last.
Prints the figures and writes tests/bench/results/provision.json.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from console.cli import main
from tests.provisioning.conftest import REGION, TENANCY, USER, make_cloud, write_spec
from tests.provisioning.oci_standin import ApiKey, OciStandIn

RESULTS = REPO / "tests" / "bench" / "results" / "provision.json"


def run(*args: str) -> tuple[int, float]:
    out, err = io.StringIO(), io.StringIO()
    started = time.monotonic()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["provision", *args])
    if code not in (0, 1):
        raise SystemExit(f"provision {' '.join(args)} failed ({code}): {err.getvalue()[-500:]}")
    return code, time.monotonic() - started


def calls_during(standin: OciStandIn, action: Any) -> tuple[Any, collections.Counter[str]]:
    before = len(standin.calls)
    result = action()
    return result, collections.Counter(call.operation for call in standin.calls[before:])


def main_bench() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-request-s", type=float, default=5.0, help="each work request's duration")
    parser.add_argument("--provisioning-s", type=float, default=1.0, help="each VCN resource's PROVISIONING time")
    parser.add_argument("--poll-s", type=float, default=0.5, help="the tool's poll interval")
    parser.add_argument("--page-size", type=int, default=100, help="list page size of the stand-in")
    parser.add_argument("--plans", type=int, default=5, help="plan runs to time")
    args = parser.parse_args()

    key = ApiKey.generate(TENANCY, USER)
    standin = OciStandIn(make_cloud(work_request_s=args.work_request_s, provisioning_s=args.provisioning_s,
                                    page_size=args.page_size), key).start()
    with tempfile.TemporaryDirectory(prefix="provision-bench-") as tmp:
        os.environ.update({
            "TODO_PROVISION_OCI_CONFIG_FILE": str(key.write_oci_config(Path(tmp), REGION)),
            "TODO_PROVISION_OCI_ENDPOINT": standin.url,
            "TODO_PROVISION_POLL_INTERVAL_S": str(args.poll_s),
            "TODO_PROVISION_PROGRESS_INTERVAL_S": "60",
        })
        spec = str(write_spec(Path(tmp) / "cluster.yaml"))
        try:
            (_, apply_s), apply_calls = calls_during(standin, lambda: run("apply", "--config", spec))
            plan_times, plan_calls = [], collections.Counter[str]()
            for _ in range(args.plans):
                (code, seconds), plan_calls = calls_during(standin, lambda: run("plan", "--config", spec))
                if code != 0:
                    raise SystemExit("plan on the full environment shows changes")
                plan_times.append(seconds)
            (_, destroy_s), destroy_calls = calls_during(standin, lambda: run("destroy", "--yes", "--config", spec))
        finally:
            standin.stop()

    waits = 2 * args.work_request_s + 12 * args.provisioning_s
    result: dict[str, Any] = {
        "benchmark": "provision",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load": os.getloadavg()[0]},
        "settings": vars(args),
        "plan_on_full_environment": {
            "requests": sum(plan_calls.values()), "by_operation": dict(sorted(plan_calls.items())),
            "seconds_p50": round(statistics.median(plan_times), 3), "seconds_max": round(max(plan_times), 3),
        },
        "apply_on_empty_compartment": {
            "seconds": round(apply_s, 2), "sum_of_waits_s": waits, "requests": sum(apply_calls.values()),
            "by_operation": dict(sorted(apply_calls.items())),
        },
        "destroy": {"seconds": round(destroy_s, 2), "requests": sum(destroy_calls.values())},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    plan = result["plan_on_full_environment"]
    print(f"plan on a full environment: {plan['requests']} requests "
          f"({', '.join(f'{op} {n}' for op, n in plan['by_operation'].items())}), "
          f"p50 {plan['seconds_p50']} s, max {plan['seconds_max']} s over {args.plans} runs")
    print(f"apply on an empty compartment: {apply_s:.1f} s wall with work requests of {args.work_request_s:g} s "
          f"and VCN resources PROVISIONING {args.provisioning_s:g} s (sum of the waits: {waits:g} s), "
          f"poll every {args.poll_s:g} s; {sum(apply_calls.values())} requests")
    print(f"destroy: {destroy_s:.1f} s, {sum(destroy_calls.values())} requests")
    print(f"wrote {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main_bench()

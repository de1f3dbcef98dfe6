"""Jobs conformance: scheduling, firing on POST /job/<name>, errors, persistence.

https://docs.dapr.io/reference/api/jobs_api/ ,
https://docs.dapr.io/developing-applications/building-blocks/jobs/jobs-features-concepts/ ;
exact errors from dapr/dapr pkg/api/universal/jobs.go, pkg/api/errors/scheduler.go and the
Scheduler's go-etcd-cron (validation, "job already exists"), trigger body from
pkg/channel/http/http_channel.go (google.protobuf.Value -> its JSON, other types -> raw bytes).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import grpc
import pytest
from dapr.clients.grpc._jobs import ConstantFailurePolicy, Job
from dapr.proto.runtime.v1 import dapr_pb2_grpc, jobs_pb2
from google.protobuf import any_pb2, struct_pb2

from tests.utils.sidecars import Sandbox, Sidecar
from tests.utils.stub_apps import StubApp, start_app
from tests.utils.waiting import wait_until


def _value(obj: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    value = struct_pb2.Value()
    value.struct_value.update(obj) if isinstance(obj, dict) else value.string_value.__class__
    if not isinstance(obj, dict):
        value.string_value = str(obj)
    packed.Pack(value)
    return packed


def _gone(client, name: str) -> bool:
    try:
        client.get_job(name)
    except grpc.RpcError as err:
        return "job not found" in (err.details() or "")
    return False


def test_one_shot_job_fires_with_its_data(backend: Sidecar, backend_app: StubApp, backend_client) -> None:
    backend_app.routes["/job/remind-1"] = (200, b"")
    started = time.monotonic()
    backend_client.schedule_job_alpha1(Job(name="remind-1", due_time="1s", data=_value({"task": "t1"})))
    call = backend_app.wait_calls("/job/remind-1", timeout=5)[0]
    assert 0.8 < call.at - started < 3
    assert call.method == "POST"
    assert call.headers["content-type"] == "application/json"
    assert json.loads(call.body) == {"task": "t1"}
    # a finished one-shot job is gone: GetJob fails as daprd wraps the Scheduler's NotFound
    with pytest.raises(grpc.RpcError) as err:
        wait_until(lambda: backend_client.get_job_alpha1("remind-1") and False, 2)
    assert err.value.code() == grpc.StatusCode.INTERNAL
    assert err.value.details() == "failed to get job due to: rpc error: code = NotFound desc = job not found: remind-1"


def test_due_time_in_the_past_fires_immediately(backend: Sidecar, backend_app: StubApp, backend_client) -> None:
    # go-etcd-cron: the first tick is the due time; a past one is already due
    backend_app.routes["/job/overdue"] = (200, b"")
    started = time.monotonic()
    backend_client.schedule_job(Job(name="overdue", due_time="2020-01-01T00:00:00Z", data=_value("late")))
    call = backend_app.wait_calls("/job/overdue", timeout=3)[0]
    assert call.at - started < 1.0
    assert json.loads(call.body) == "late"


def test_every_schedule_with_repeats(backend: Sidecar, backend_app: StubApp, backend_client) -> None:
    backend_app.routes["/job/tick"] = (200, b"")
    backend_client.schedule_job(Job(name="tick", schedule="@every 1s", repeats=2))
    got = backend_client.get_job("tick")
    assert (got.schedule, got.repeats) == ("@every 1s", 2)
    calls = backend_app.wait_calls("/job/tick", 2, timeout=5)
    assert 0.7 < calls[1].at - calls[0].at < 1.5
    wait_until(lambda: _gone(backend_client, "tick"), 3, 0.05, "job removed after its last repeat")
    assert len(backend_app.calls("/job/tick")) == 2  # repeats caps the count


def test_overwrite_semantics(backend_client) -> None:
    backend_client.schedule_job(Job(name="dup", schedule="@every 1h"))
    with pytest.raises(grpc.RpcError) as err:
        backend_client.schedule_job(Job(name="dup", schedule="@every 2h"))
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert err.value.details() == ("failed to schedule job due to: rpc error: code = AlreadyExists "
                                   "desc = job already exists: 'app||todo-app||backend||dup'")
    backend_client.schedule_job(Job(name="dup", schedule="@every 2h"), overwrite=True)
    assert backend_client.get_job("dup").schedule == "@every 2h"
    backend_client.delete_job("dup")
    backend_client.delete_job("dup")  # deleting a missing job is not an error


@pytest.mark.parametrize(("job", "code", "message"), [
    (Job(name="x", schedule="* * *"), grpc.StatusCode.INTERNAL,
     ("failed to schedule job due to: rpc error: code = Unknown desc = job failed validation: "
     "expected exactly 6 fields, found 3: [* * *]")),
    (Job(name="x", due_time="1s", ttl="10s"), grpc.StatusCode.INTERNAL,
     ("failed to schedule job due to: rpc error: code = Unknown desc = job failed validation: "
     "job must have a schedule to have a ttl")),
    (Job(name="x", due_time="soon"), grpc.StatusCode.INTERNAL,
     ("failed to schedule job due to: rpc error: code = Unknown desc = job failed validation: "
     "due time format not recognized")),
    (Job(name="x", schedule="@every 1s", due_time="2030-01-02T00:00:00Z", ttl="2030-01-01T00:00:00Z"),
     grpc.StatusCode.INTERNAL,
     ("failed to schedule job due to: rpc error: code = Unknown desc = job failed validation: "
     "ttl must be greater than due time")),
])
def test_invalid_jobs_are_refused(backend_client, job: Job, code: grpc.StatusCode, message: str) -> None:
    with pytest.raises(grpc.RpcError) as err:
        backend_client.schedule_job(job)
    assert (err.value.code(), err.value.details()) == (code, message)


def test_daprd_side_validation_and_list(backend: Sidecar) -> None:
    # checks the SDK does client-side too, so send the raw requests (jobs.go: "<field> is empty")
    with grpc.insecure_channel(f"127.0.0.1:{backend.grpc_port}") as channel:
        stub = dapr_pb2_grpc.DaprStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            stub.ScheduleJobAlpha1(jobs_pb2.ScheduleJobRequest(job=jobs_pb2.Job(name="", due_time="1s")))
        assert (err.value.code(), err.value.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "Name is empty")
        with pytest.raises(grpc.RpcError) as err:
            stub.ScheduleJob(jobs_pb2.ScheduleJobRequest(job=jobs_pb2.Job(name="x")))
        assert (err.value.code(), err.value.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "Schedule is empty")
        assert err.value.trailing_metadata() is not None
        stub.ScheduleJob(jobs_pb2.ScheduleJobRequest(job=jobs_pb2.Job(name="listed", schedule="@daily")))
        names = [j.name for j in stub.ListJobsAlpha1(jobs_pb2.ListJobsRequestAlpha1()).jobs]
        assert "listed" in names


def test_failed_trigger_follows_the_failure_policy(backend: Sidecar, backend_app: StubApp, backend_client) -> None:
    # failure policy constant: max_retries=1 -> 2 attempts 1s apart, then the tick is done
    backend_app.routes["/job/grumpy"] = (500, b"no")
    backend_client.schedule_job(Job(name="grumpy", due_time="0s",
                                    failure_policy=ConstantFailurePolicy(max_retries=1, interval_seconds=1)))
    calls = backend_app.wait_calls("/job/grumpy", 2, timeout=5)
    assert 0.8 < calls[1].at - calls[0].at < 1.8
    wait_until(lambda: _gone(backend_client, "grumpy"), 3, 0.05, "job done after its retries")
    assert len(backend_app.calls("/job/grumpy")) == 2


@pytest.fixture
def jobber_app() -> Iterator[StubApp]:
    app = start_app({"/job/survivor": (200, b"")})
    yield app
    app.stop()


def test_jobs_survive_a_sidecar_restart(sandbox: Sandbox, jobber_app: StubApp) -> None:
    first = sandbox.start("jobber", jobber_app.port)
    with first.client() as client:
        client.schedule_job(Job(name="survivor", due_time="2s", data=_value("still here")))
    assert first.stop() == 0  # graceful SIGTERM
    assert jobber_app.calls("/job/survivor") == []
    second = sandbox.start("jobber", jobber_app.port)
    call = jobber_app.wait_calls("/job/survivor", timeout=6)[0]
    assert json.loads(call.body) == "still here"
    second.stop()


def test_http_jobs_api(backend: Sidecar, backend_app: StubApp) -> None:
    # https://docs.dapr.io/reference/api/jobs_api/ : POST/GET/DELETE /v1.0-alpha1/jobs/<name> (and /v1.0)
    import httpx

    backend_app.routes["/job/http-once"] = (200, b"")
    base = f"{backend.http}/v1.0-alpha1/jobs"
    assert httpx.post(f"{base}/http-once", json={"dueTime": "0s", "data": {"task": "t9"}}).status_code == 204
    assert json.loads(backend_app.wait_calls("/job/http-once", timeout=3)[0].body) == {"task": "t9"}
    assert httpx.post(f"{backend.http}/v1.0/jobs/hourly", json={"schedule": "@every 1h", "repeats": 3}).status_code == 204
    got = httpx.get(f"{base}/hourly").json()
    assert (got["name"], got["schedule"], got["repeats"]) == ("hourly", "@every 1h", 3)
    assert httpx.delete(f"{base}/hourly").status_code == 204
    gone = httpx.get(f"{base}/hourly")
    assert gone.status_code == 500
    assert "job not found: hourly" in gone.json()["message"]
    named = httpx.post(f"{base}/x", json={"name": "x", "dueTime": "1s"})
    assert named.status_code == 400
    assert named.json()["message"] == "Set the job name in the url only"

"""Jobs conformance: one-shot jobs, firing on POST /job/<name>, errors, persistence; schedules refused.

https://docs.dapr.io/reference/api/jobs_api/ ,
https://docs.dapr.io/developing-applications/building-blocks/jobs/jobs-features-concepts/ ;
exact errors from dapr/dapr pkg/api/universal/jobs.go, pkg/api/errors/scheduler.go and the
Scheduler's go-etcd-cron (validation, "job already exists"), trigger body from
pkg/channel/http/http_channel.go (google.protobuf.Value -> its protojson, other types -> raw bytes),
the trigger's outcome from pkg/runtime/scheduler/internal/cluster/streamer.go (404 is handled).
Jobs with a `schedule` (cron, @every) are not implemented by the sandbox: refused, saying so.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import grpc
import httpx
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
    assert call.at - started > 0.8
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


def test_integers_in_the_data_stay_integers(backend: Sidecar, backend_app: StubApp, backend_client) -> None:
    # http_channel.go constructJobRequest: Value.MarshalJSON (protojson), which writes numbers as
    # encoding/json does: 1 stays 1, not Python's json_format 1.0
    backend_app.routes["/job/counts"] = (200, b"")
    backend_client.schedule_job(Job(name="counts", due_time="0s",
                                    data=_value({"attempt": 1, "limit": 250000, "ratio": 1.5, "tiny": 1e-7})))
    body = backend_app.wait_calls("/job/counts", timeout=5)[0].body
    data = json.loads(body)
    assert data == {"attempt": 1, "limit": 250000, "ratio": 1.5, "tiny": 1e-7}
    assert isinstance(data["attempt"], int)
    assert isinstance(data["limit"], int)
    assert b"1.0" not in body
    assert b"1e-7" in body  # Go trims the exponent's leading zero (Python writes 1e-07)


def test_a_404_from_the_app_is_handled_not_retried(backend: Sidecar, backend_app: StubApp, backend_client) -> None:
    # streamer.go invokeApp: codes.NotFound (HTTP 404) "treated as SUCCESS to avoid retriggers by the
    # scheduler"; the failure policy (here 2 retries 1 s apart) never runs. The job is removed only once
    # its triggering is over, so when it is gone every call it made has been made.
    backend_client.schedule_job(Job(name="no-route", due_time="0s",
                                    failure_policy=ConstantFailurePolicy(max_retries=2, interval_seconds=1)))
    wait_until(lambda: backend_app.calls("/job/no-route") and _gone(backend_client, "no-route"), 10, 0.05,
               "the job done after the app's 404")
    assert len(backend_app.calls("/job/no-route")) == 1


def test_a_job_with_a_schedule_is_refused(backend: Sidecar, backend_client) -> None:
    # the sandbox runs one-shot jobs only (all the product schedules): a cron or @every schedule is
    # UNIMPLEMENTED, saying so, where daprd's Scheduler would run it
    for schedule in ("@every 1s", "0 30 9 * * MON", "CRON_TZ=Europe/Paris 0 0 9 * * *"):
        with pytest.raises(grpc.RpcError) as err:
            backend_client.schedule_job(Job(name="tick", schedule=schedule))
        assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert (err.value.details() or "").startswith(f"job tick: a schedule ({schedule!r}) is not implemented by the dev "
                                              "sidecar: only one-shot jobs (a dueTime, no schedule) run in the sandbox")
    refused = httpx.post(f"{backend.http}/v1.0-alpha1/jobs/hourly", json={"schedule": "@every 1h"})
    assert refused.status_code == 501
    assert refused.json()["errorCode"] == "ERR_SANDBOX_NOT_IMPLEMENTED"
    assert _gone(backend_client, "tick")


def test_overwrite_semantics(backend_client) -> None:
    backend_client.schedule_job(Job(name="dup", due_time="1h"))
    with pytest.raises(grpc.RpcError) as err:
        backend_client.schedule_job(Job(name="dup", due_time="2h"))
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert err.value.details() == ("failed to schedule job due to: rpc error: code = AlreadyExists "
                                   "desc = job already exists: 'app||todo-app||backend||dup'")
    backend_client.schedule_job(Job(name="dup", due_time="2h"), overwrite=True)
    assert backend_client.get_job("dup").due_time == "2h"
    backend_client.delete_job("dup")
    backend_client.delete_job("dup")  # deleting a missing job is not an error


@pytest.mark.parametrize(("job", "code", "message"), [
    (Job(name="x", due_time="1s", ttl="10s"), grpc.StatusCode.INTERNAL,
     ("failed to schedule job due to: rpc error: code = Unknown desc = job failed validation: "
     "job must have a schedule to have a ttl")),
    (Job(name="x", due_time="1s", repeats=3), grpc.StatusCode.INTERNAL,
     ("failed to schedule job due to: rpc error: code = Unknown desc = job failed validation: "
     "job must have a schedule to repeat")),
    (Job(name="x", due_time="soon"), grpc.StatusCode.INTERNAL,
     ("failed to schedule job due to: rpc error: code = Unknown desc = job failed validation: "
     "due time format not recognized")),
    # Go's time.RFC3339 wants the offset's colon (and the T): builder.go parsePointInTime
    (Job(name="x", due_time="2030-01-01T09:00:00+0100"), grpc.StatusCode.INTERNAL,
     ("failed to schedule job due to: rpc error: code = Unknown desc = job failed validation: "
     "due time format not recognized")),
    (Job(name="x", due_time="2030-01-01 09:00:00+01:00"), grpc.StatusCode.INTERNAL,
     ("failed to schedule job due to: rpc error: code = Unknown desc = job failed validation: "
     "due time format not recognized")),
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
        stub.ScheduleJob(jobs_pb2.ScheduleJobRequest(job=jobs_pb2.Job(name="listed", due_time="1h")))
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
    backend_app.routes["/job/http-once"] = (200, b"")
    base = f"{backend.http}/v1.0-alpha1/jobs"
    assert httpx.post(f"{base}/http-once", json={"dueTime": "0s", "data": {"task": "t9"}}).status_code == 204
    assert json.loads(backend_app.wait_calls("/job/http-once", timeout=3)[0].body) == {"task": "t9"}
    assert httpx.post(f"{backend.http}/v1.0/jobs/hourly", json={"dueTime": "1h"}).status_code == 204
    got = httpx.get(f"{base}/hourly").json()
    assert (got["name"], got["dueTime"]) == ("hourly", "1h")
    assert httpx.delete(f"{base}/hourly").status_code == 204
    gone = httpx.get(f"{base}/hourly")
    assert gone.status_code == 500
    assert "job not found: hourly" in gone.json()["message"]
    named = httpx.post(f"{base}/x", json={"name": "x", "dueTime": "1s"})
    assert named.status_code == 400
    assert named.json()["message"] == "Set the job name in the url only"

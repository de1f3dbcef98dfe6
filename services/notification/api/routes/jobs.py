"""Where daprd triggers due jobs: POST /job/<job name> with the job's data.

Answers: 200 delivered or skipped (done either way); 503 when the task could not be checked or
the notifier failed (the Jobs API's failure policy triggers the job again); 404 for a job name
that is not a reminder and 422 for data that is not a reminder job (neither can succeed).

The trigger runs in the correlation of the request that scheduled the reminder (the job's data
carries its id), so the API call, the scheduling, the firing and the delivery share one id.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel

from services.notification.api.deps import NotifierDep, SettingsDep
from services.notification.firing import TryLater, fire
from services.notification.jobs import JOB_PREFIX, parse_job_body
from services.platform import correlation, metrics
from services.platform.dapr_gateway import DaprCallError, DaprUnavailable
from services.platform.deps import GatewayDep
from services.platform.problems import invalid, problem_responses

log = logging.getLogger(__name__)

router = APIRouter(prefix="/job", tags=["jobs"])


class JobAnswer(BaseModel):
    status: str
    reason: str


@router.post("/{name}", response_model=JobAnswer, responses=problem_responses(422, 503, said={
    404: "The job is not a reminder"}))
async def trigger(name: str, request: Request, settings: SettingsDep, gateway: GatewayDep,
                  notifier: NotifierDep) -> JobAnswer:
    if not name.startswith(JOB_PREFIX):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no handler for job {name!r}")
    try:
        job = parse_job_body(await request.body())
    except ValueError as exc:
        raise invalid(["body"], str(exc)[:1000]) from exc
    service = settings.service_name
    token = correlation.bind(correlation.from_headers(job.correlation_id, request.headers.get("traceparent")))
    try:
        outcome = await fire(job, gateway=gateway, notifier=notifier, backend_app_id=settings.backend_app_id,
                             internal_token=settings.internal_api_token or "")
        metrics.EVENTS_CONSUMED.labels(service, "jobs").inc()
        log.info("reminder job handled", extra={"job": name, "outcome": outcome.status, "reason": outcome.reason})
        return JobAnswer(status=outcome.status, reason=outcome.reason)
    except (TryLater, DaprUnavailable, DaprCallError) as exc:
        metrics.EVENTS_FAILED.labels(service, "jobs", "deliver").inc()
        log.warning("reminder not delivered yet", extra={"job": name, "error": str(exc)})
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "reminder not delivered; retry",
                            headers={"Retry-After": "1"}) from exc
    finally:
        correlation.reset(token)

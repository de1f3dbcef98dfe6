"""Every error answer of every service is RFC 9457 problem details, and the OpenAPI says so.

FastAPI answers errors in two shapes, `{"detail": "<text>"}` from an HTTPException and
`{"detail": [{loc, msg, type, input}]}` from request validation, and documents only the second
(as every route's 422). A client generated from the document then meets bodies it has no model
for. Here every 4xx and 5xx, whoever raises it (a route, a dependency, FastAPI's validation,
Starlette's routing, an unhandled error), has one shape, `application/problem+json`:

    {"type": "about:blank", "title": "Not Found", "status": 404, "detail": "task ... not found",
     "instance": "/api/tasks/...", "correlation_id": "4dbdbaab..."}

`detail` is always one readable line; `type` stays `about:blank` (the status tells the kind of
problem); `correlation_id` finds the request's log lines in every service. A 422 adds `errors`,
one `{loc, msg, type}` per unacceptable part of the request, located as FastAPI locates them
(`["body", "title"]`, `["query", "limit"]`, `["header", "Idempotency-Key"]`); the input itself is
not echoed back. Routes that refuse a value by their own rules raise `invalid(...)`, so those 422s
list the field too. A body that cannot be parsed at all (not JSON, not UTF-8) is a malformed
request, a 400, as a malformed header is.

Routes declare the answers they give with `problem_responses(...)`, which documents the headers
that come with them as well (`WWW-Authenticate` on 401, `ETag` on 412, `Retry-After` on 503).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from services.platform import correlation

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
_LISTED_IN_DETAIL = 5
_FASTAPI_UNPARSEABLE = "There was an error parsing the body"  # its 400 for a body that is not UTF-8


class FieldError(BaseModel):
    """One unacceptable part of a request: where it is and why."""

    loc: list[str | int] = Field(description='where: ["body", "title"], ["query", "limit"], ["path", "task_id"]')
    msg: str
    type: str = Field(description="the kind of error, e.g. missing, string_too_long, value_error")


class Problem(BaseModel):
    """An error answer (RFC 9457 problem details)."""

    type: str = Field("about:blank", description="about:blank: the status code says what kind of problem")
    title: str = Field(description="the status code's reason phrase")
    status: int = Field(ge=400, le=599)
    detail: str = Field(description="what went wrong, in one line")
    instance: str = Field(description="the request's path")
    correlation_id: str = Field(description="the request's correlation id, on every log line it caused")


class ValidationProblem(Problem):
    """A 422: the request is well-formed, but parts of it are not acceptable."""

    errors: list[FieldError] = Field(description="each unacceptable part of the request")


# What each status means wherever it is answered; a route says more with problem_responses(said=...).
_MEANING: dict[int, str] = {
    400: "Malformed request: a body that cannot be parsed, or a malformed header",
    401: "Missing, expired or invalid bearer token",
    403: "The token lacks the scope this operation needs",
    404: "Not found",
    409: "Conflicts with the current state",
    410: "Gone",
    412: "If-Match names a version that is no longer current",
    422: "Invalid input: `errors` lists each unacceptable part of the request",
    500: "An unexpected error: `correlation_id` finds its log lines",
    503: "A dependency is unavailable for now; retry after `Retry-After` seconds",
}

_HEADERS: dict[int, dict[str, dict[str, Any]]] = {
    401: {"WWW-Authenticate": {"description": '`Bearer`, with `error="invalid_token"` for a refused token',
                               "required": True, "schema": {"type": "string"}}},
    412: {"ETag": {"description": "the current version: read the resource again, or send it in If-Match",
                   "required": True, "schema": {"type": "string"}}},
    503: {"Retry-After": {"description": "seconds to wait before retrying", "required": True,
                          "schema": {"type": "integer"}}},
}


def problem_responses(*statuses: int, said: dict[int, str] | None = None) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route or router: each status as a problem, with its headers.

    `said` gives what a status means on this route (and adds it, if it is not among `statuses`).
    """
    said = said or {}
    responses: dict[int | str, dict[str, Any]] = {}
    for status in dict.fromkeys((*statuses, *said)):
        schema = "ValidationProblem" if status == 422 else "Problem"
        response: dict[str, Any] = {
            "description": said.get(status) or _MEANING.get(status) or _phrase(status),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
        }
        if status in _HEADERS:
            response["headers"] = _HEADERS[status]
        responses[status] = response
    return responses


def problem_schemas() -> dict[str, Any]:
    """The problem models as OpenAPI component schemas."""
    schemas: dict[str, Any] = {}
    for model in (Problem, ValidationProblem):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas


def invalid(loc: Sequence[str | int], msg: str, kind: str = "value_error") -> RequestValidationError:
    """A 422 for a value the route refuses by its own rules, located like FastAPI's own."""
    return RequestValidationError([{"loc": tuple(loc), "msg": msg, "type": kind}])


def problem(request: Request, status: int, detail: str, *, errors: Sequence[FieldError] | None = None,
            headers: Mapping[str, str] | None = None) -> JSONResponse:
    fields: dict[str, Any] = {"title": _phrase(status), "status": status, "detail": detail,
                              "instance": request.url.path,
                              "correlation_id": correlation.current().correlation_id}
    body = Problem(**fields) if errors is None else ValidationProblem(**fields, errors=list(errors))
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers,
                        media_type=PROBLEM_MEDIA_TYPE)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _field_errors(exc: RequestValidationError) -> list[FieldError]:
    return [FieldError(loc=list(error.get("loc", ())), msg=str(error.get("msg", "invalid")),
                       type=str(error.get("type", "value_error"))) for error in exc.errors()]


def _unparseable_body(exc: RequestValidationError) -> str | None:
    """Why the body could not be parsed as JSON, or None when it was.

    FastAPI reports a JSON syntax error as a 422 (`json_invalid`) but a body that is not UTF-8 as
    a 400; both are a malformed request, so both are the 400 the document lists."""
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            reason = (error.get("ctx") or {}).get("error", "JSON decode error")
            return f"the body is not JSON: {reason} at character {error.get('loc', ('body', 0))[-1]}"
    return None


def _summary(errors: Sequence[FieldError]) -> str:
    """`body.title: Field required; query.limit: ...`: the first few, for a human reading one line."""
    if not errors:
        return "invalid request"
    parts = [f"{'.'.join(str(part) for part in error.loc) or 'request'}: {error.msg}"
             for error in errors[:_LISTED_IN_DETAIL]]
    more = len(errors) - _LISTED_IN_DETAIL
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error the app raises as a problem (see the module docstring)."""

    @app.exception_handler(HTTPException)
    async def http_problem(request: Request, exc: HTTPException) -> JSONResponse:
        detail = str(exc.detail)
        if exc.status_code == 400 and detail == _FASTAPI_UNPARSEABLE:
            detail = "the body is not JSON in UTF-8"
        return problem(request, exc.status_code, detail, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_problem(request: Request, exc: RequestValidationError) -> JSONResponse:
        unparseable = _unparseable_body(exc)
        if unparseable is not None:
            return problem(request, 400, unparseable)
        errors = _field_errors(exc)
        return problem(request, 422, _summary(errors), errors=errors)

    @app.exception_handler(Exception)
    async def unhandled(request: Request, exc: Exception) -> JSONResponse:
        # Starlette runs this outside every middleware: the request's context is bound again, and
        # its id header added here, so the answer and the log line name the request.
        ctx = correlation.of_request(request.scope)
        token = correlation.bind(ctx)
        try:
            log.error("unhandled error", exc_info=exc, extra={"path": request.url.path})
            return problem(request, 500, "internal error",
                           headers={correlation.CORRELATION_HEADER: ctx.correlation_id})
        finally:
            correlation.reset(token)

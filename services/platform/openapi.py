"""A service's two OpenAPI documents: the public one, and the internal one beside it.

- `/openapi.json` (and `/docs` in development): the routes clients reach through the ingress,
  `/api/...`. What a client generated from it needs, and nothing it must not call.
- `/internal/openapi.json`: the routes only the Dapr sidecar calls, service invocation
  (`/internal/...`), subscriptions (`/events/...`) and job triggers (`/job/...`). The ingress
  forwards `/api` only, so it is read from inside the cluster, like the routes it describes.

FastAPI's document is finished the same way for both: the problem schemas every error answer
uses (services.platform.problems) replace FastAPI's `HTTPValidationError`, which no answer has,
every operation lists the 500 any route can give (as a problem, never a stack trace), and every
response names the `X-Correlation-ID` header the request middleware adds to it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.requests import Request
from starlette.routing import BaseRoute

from services.platform.correlation import CORRELATION_HEADER
from services.platform.problems import problem_responses, problem_schemas

INTERNAL_DOCUMENT = "/internal/openapi.json"
_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")
_CORRELATION = {"X-Correlation-ID": {
    "description": f"the request's correlation id (its `{CORRELATION_HEADER}` or `traceparent`, else a new one)",
    "required": True, "schema": {"type": "string"}}}


def install_documents(app: FastAPI, routers: Sequence[APIRouter], internal_routers: Sequence[APIRouter]) -> None:
    """Serve the public document (`routers`) as the app's own and, if it has any, the internal one.

    Each is built from the routers' own routes, which carry their router's prefix, responses and
    dependencies; the app includes them as they are.
    """
    public = [route for router in routers for route in router.routes]
    internal = [route for router in internal_routers for route in router.routes]
    app.openapi = _cached(lambda: _document(app, public, app.title))  # type: ignore[method-assign]
    if not internal:
        return
    internal_document = _cached(lambda: _document(app, internal, f"{app.title} (internal routes)"))

    async def serve_internal(_: Request) -> JSONResponse:
        return JSONResponse(internal_document())

    app.add_route(INTERNAL_DOCUMENT, serve_internal, include_in_schema=False)


def _cached(build: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """Built on first use, when every route is in place, then served as it is."""
    built: dict[str, Any] = {}

    def document() -> dict[str, Any]:
        if not built:
            built.update(build())
        return built

    return document


def _document(app: FastAPI, routes: Sequence[BaseRoute], title: str) -> dict[str, Any]:
    document = get_openapi(title=title, version=app.version, description=app.description, routes=routes)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    schemas.update(problem_schemas())
    validation, unexpected = problem_responses(422)[422], problem_responses(500)[500]
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if _is_fastapi_validation_error(responses.get("422")):
                responses["422"] = dict(validation)
            responses.setdefault("500", dict(unexpected))
            for status, response in responses.items():
                responses[status] = {**response, "headers": {**response.get("headers", {}), **_CORRELATION}}
    return document


def _is_fastapi_validation_error(response: dict[str, Any] | None) -> bool:
    """FastAPI's own 422 entry, added to every route with parameters unless the route declares a 422."""
    schema = (response or {}).get("content", {}).get("application/json", {}).get("schema", {})
    return schema.get("$ref", "").endswith("/HTTPValidationError")

"""The FastAPI app factory every service is built with.

It gives each service the same operational surface, so probes, dashboards and log
queries work alike everywhere: `/healthz` (liveness: the process serves requests),
`/readyz` (readiness: each registered check, e.g. the database and the Dapr sidecar),
`/metrics` (Prometheus), JSON request logs with a correlation id, error answers in one shape
that never leak a stack trace (services.platform.problems), and OpenAPI documents that keep the
routes only the Dapr sidecar calls (`internal_routers`) out of the public one
(services.platform.openapi).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.platform import correlation, metrics
from services.platform.openapi import install_documents
from services.platform.problems import install_problem_handlers
from services.platform.settings import ServiceSettings

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], Awaitable[None]]
"""Returns when the dependency is usable; raises (any exception, with a message) when not."""

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]

_UNROUTED = "unmatched"


class RequestContextMiddleware:
    """Binds the correlation id for the request, then logs and measures it.

    Pure ASGI rather than BaseHTTPMiddleware: it must wrap WebSocket connections too and
    must not buffer streaming responses.
    """

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        ctx = correlation.from_headers(headers.get(correlation.CORRELATION_HEADER), headers.get("traceparent"))
        scope[correlation.SCOPE_KEY] = ctx
        token = correlation.bind(ctx)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*list(message["headers"]), (b"x-correlation-id", ctx.correlation_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if scope["type"] == "http":
                route = getattr(scope.get("route"), "path", _UNROUTED)
                elapsed = time.perf_counter() - started
                method = scope["method"]
                metrics.HTTP_REQUESTS.labels(self.service, method, route, str(status)).inc()
                metrics.HTTP_LATENCY.labels(self.service, method, route).observe(elapsed)
                if route not in ("/healthz", "/readyz", "/metrics"):
                    log.info(
                        "request",
                        extra={"method": method, "path": scope["path"], "route": route,
                               "status": status, "duration_ms": round(elapsed * 1000, 2)},
                    )
            correlation.reset(token)


def create_app(
    settings: ServiceSettings,
    *,
    title: str,
    routers: Sequence[APIRouter] = (),
    internal_routers: Sequence[APIRouter] = (),
    readiness: dict[str, ReadinessCheck] | None = None,
    lifespan: Lifespan | None = None,
) -> FastAPI:
    checks = dict(readiness or {})
    state = {"stopping": False}

    @asynccontextmanager
    async def run(app: FastAPI) -> AsyncIterator[None]:
        log.info("starting", extra={"port": settings.port, "env": settings.app_env})
        if lifespan is None:
            yield
        else:
            async with lifespan(app):
                yield
        state["stopping"] = True
        log.info("stopped")

    app = FastAPI(title=title, lifespan=run, docs_url="/docs" if settings.is_development else None)
    app.state.settings = settings

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        results: dict[str, str] = {}
        ready = not state["stopping"]
        for name, check in checks.items():
            try:
                await check()
                results[name] = "ok"
            except Exception as exc:
                results[name] = f"failing: {exc}"
                ready = False
        body = {"status": "ready" if ready else "not ready", "checks": results}
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    install_problem_handlers(app)
    for router in (*routers, *internal_routers):
        app.include_router(router)
    install_documents(app, routers, internal_routers)
    app.add_middleware(RequestContextMiddleware, service=settings.service_name)
    return app

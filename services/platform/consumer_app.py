"""Assembling a consumer service: the same start-up, shutdown and readiness for all four.

Each consumer's main.py only names its settings, routers, and what its lifespan adds (a notifier,
a hub, a database); this module does the rest once: JSON logs, one DaprGateway (closed on
shutdown), secrets resolved through the sidecar before serving (SECRET_SOURCE=dapr), the sidecar
as a readiness check, and the lazy module-level `app` uvicorn imports.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI

from services.platform.app import create_app
from services.platform.dapr_gateway import DaprGateway
from services.platform.logs import configure_logging
from services.platform.settings import ServiceSettings


def sidecar_readiness(gateway: DaprGateway) -> Callable[[], Awaitable[None]]:
    """A readiness check for `create_app`: a consumer without its sidecar receives nothing."""

    async def check() -> None:
        if not await gateway.ready():
            raise RuntimeError(f"Dapr sidecar not answering on port {gateway.settings.dapr_http_port}")

    return check


Setup = Callable[[FastAPI, Any], Awaitable[Callable[[], None] | None]]
"""Service-specific start-up, run in the lifespan with the resolved settings; returns its clean-up."""
AppCheck = Callable[[FastAPI], Awaitable[None]]
"""A readiness check that needs the running app's state (a database engine...)."""


def build_consumer_app(settings: ServiceSettings, *, title: str, routers: Sequence[APIRouter],
                       setup: Setup | None = None, readiness: dict[str, AppCheck] | None = None) -> FastAPI:
    """A consumer service the way all four are assembled: JSON logs, one DaprGateway (closed on
    shutdown), secrets resolved through the sidecar before serving, the sidecar as a readiness check."""
    configure_logging(settings.service_name, settings.log_level)
    gateway = DaprGateway(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resolved = settings.with_secrets(gateway.get_secret_blocking)
        app.state.settings = resolved
        cleanup = await setup(app, resolved) if setup is not None else None
        try:
            yield
        finally:
            if cleanup is not None:
                cleanup()
            gateway.close()

    def bound(check: AppCheck) -> Callable[[], Awaitable[None]]:
        return lambda: check(app)

    checks = {"dapr": sidecar_readiness(gateway), **{n: bound(c) for n, c in (readiness or {}).items()}}
    app = create_app(settings, title=title, routers=routers, lifespan=lifespan, readiness=checks)
    app.state.gateway = gateway
    return app


def lazy_app(namespace: dict[str, Any], build: Callable[[], FastAPI]) -> Callable[[str], FastAPI]:
    """A module `__getattr__` (PEP 562) for `uvicorn services.<name>.main:app`: the app is built
    from the environment on first access, so importing the module (tests, alembic) reads no settings."""

    def module_getattr(name: str) -> FastAPI:
        if name == "app":
            namespace["app"] = built = build()
            return built
        raise AttributeError(name)

    return module_getattr

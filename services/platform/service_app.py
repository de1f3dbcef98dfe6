"""Assembling a service: the same start-up, shutdown and readiness for all five.

Each service's main.py only names its settings, routers, its database (if it owns one) and what
its lifespan adds (a relay, a notifier, a hub); this module does the rest once: JSON logs, one
DaprGateway (closed on shutdown), secrets resolved through the sidecar before serving
(SECRET_SOURCE=dapr), the token verifier of services that face users, the database opened and
migrated, the sidecar and the database as readiness checks, and the lazy module-level `app`
uvicorn imports.
"""

from __future__ import annotations

import asyncio
import functools
import gc
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar

from fastapi import APIRouter, FastAPI

from services.platform.app import ReadinessCheck, create_app
from services.platform.auth import TokenVerifier
from services.platform.dapr_gateway import DaprGateway
from services.platform.database import Database, DatabaseSettings, DatabaseSpec
from services.platform.logs import configure_logging
from services.platform.settings import ServiceSettings
from services.platform.web_auth import UserAuthSettings

S = TypeVar("S", bound=ServiceSettings)

Running = Callable[[FastAPI, S], AbstractAsyncContextManager[None]]
"""What a service runs beside its routes, with the resolved settings: set up on entry, torn down on exit."""


def sidecar_readiness(gateway: DaprGateway) -> ReadinessCheck:
    """A readiness check for `create_app`: a service without its sidecar can neither publish nor receive."""

    async def check() -> None:
        if not await gateway.ready():
            raise RuntimeError(f"Dapr sidecar not answering on port {gateway.settings.dapr_http_port}")

    return check


def build_service_app(settings: S, *, title: str, routers: Sequence[APIRouter],
                      internal_routers: Sequence[APIRouter] = (), running: Running[S] | None = None,
                      database: DatabaseSpec | None = None) -> FastAPI:
    """A service the way all five are assembled (see the module docstring).

    `routers` are what clients call through the ingress; `internal_routers` what only the Dapr
    sidecar calls (invocation, subscriptions, job triggers), kept out of the public OpenAPI.

    With `database`, the settings must be DatabaseSettings: the database at DATABASE_URL is
    opened and migrated before `running` starts, put on `app.state.database` and checked by
    `/readyz`.
    """
    if database is not None and not isinstance(settings, DatabaseSettings):
        raise TypeError(f"{type(settings).__name__} has no database settings")
    configure_logging(settings.service_name, settings.log_level)
    gateway = DaprGateway(settings)
    db: Database | None = None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        nonlocal db
        resolved = settings.with_secrets(gateway.get_secret_blocking)
        app.state.settings = resolved
        verifier = TokenVerifier(resolved.auth) if isinstance(resolved, UserAuthSettings) else None
        app.state.verifier = verifier
        try:
            if database is not None and isinstance(resolved, DatabaseSettings):
                db = app.state.database = Database(resolved.database_url, database)
                if resolved.db_migrate_on_start:
                    await asyncio.to_thread(db.migrate)
            async with running(app, resolved) if running is not None else _nothing():
                freeze_startup_heap()
                yield
        finally:
            await gateway.aclose()
            if verifier is not None:
                verifier.close()
            if db is not None:
                db.dispose()

    async def database_ready() -> None:
        if db is None:
            raise RuntimeError("database not opened yet")
        await asyncio.to_thread(db.ping)

    checks: dict[str, ReadinessCheck] = {"dapr": sidecar_readiness(gateway)}
    if database is not None:
        checks["database"] = database_ready
    app = create_app(settings, title=title, routers=routers, internal_routers=internal_routers,
                     lifespan=lifespan, readiness=checks)
    app.state.gateway = gateway
    return app


@functools.cache
def freeze_startup_heap() -> None:
    """Move everything start-up allocated (modules, the app, the ORM's and pydantic's schemas) out of
    the cyclic garbage collector's sight, once per process.

    A full collection scans every tracked object: in the backend serving the task API one took 160 ms of CPU,
    a pause for every request in flight, over objects that live as long as the process anyway.
    Collected first, so no garbage is frozen with them."""
    gc.collect()
    gc.freeze()


@asynccontextmanager
async def _nothing() -> AsyncIterator[None]:
    yield


def lazy_app(namespace: dict[str, Any], build: Callable[[], FastAPI]) -> Callable[[str], FastAPI]:
    """A module `__getattr__` (PEP 562) for `uvicorn services.<name>.main:app`: the app is built
    from the environment on first access, so importing the module (tests, alembic) reads no settings."""

    def module_getattr(name: str) -> FastAPI:
        if name == "app":
            namespace["app"] = built = build()
            return built
        raise AttributeError(name)

    return module_getattr


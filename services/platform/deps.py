"""Typed access to what a service's start-up put on `app.state`, as FastAPI dependencies.

`app.state` is untyped (every attribute is `Any`), so a route that reads
`request.app.state.gateway` is not type-checked. Routes declare the `Annotated` aliases below
instead (the FastAPI template's way), and event handlers, which get a `Delivery` rather than
dependencies, call the same providers with `delivery.request`. Each provider checks the type
once, so a service wired wrongly fails with a message naming the missing piece.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Depends
from starlette.applications import Starlette
from starlette.requests import HTTPConnection

from services.platform.auth import TokenVerifier
from services.platform.dapr_gateway import DaprGateway
from services.platform.database import Database

T = TypeVar("T")


def app_state(owner: HTTPConnection | Starlette, name: str, kind: type[T]) -> T:
    """`app.state.<name>` of a request's or a WebSocket's app (or of the app itself), checked to be a `kind`."""
    state = owner.state if isinstance(owner, Starlette) else owner.app.state
    value = getattr(state, name, None)
    if not isinstance(value, kind):
        raise RuntimeError(f"app.state.{name} is {type(value).__name__}, not {kind.__name__}: "
                           "is the service's lifespan running?")
    return value


def state_provider(name: str, kind: type[T]) -> Callable[[HTTPConnection], T]:
    """A dependency provider for `app.state.<name>`, a `kind`: `Depends(...)` it, or call it with a request."""

    def provide(connection: HTTPConnection) -> T:
        return app_state(connection, name, kind)

    provide.__name__ = f"get_{name}"
    return provide


get_gateway = state_provider("gateway", DaprGateway)
get_verifier = state_provider("verifier", TokenVerifier)
get_database = state_provider("database", Database)

GatewayDep = Annotated[DaprGateway, Depends(get_gateway)]
VerifierDep = Annotated[TokenVerifier, Depends(get_verifier)]

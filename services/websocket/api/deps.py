"""Typed access to the websocket service's state (settings, hub), for /ws and the subscription handler."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from services.platform.deps import app_state
from services.websocket.config import WebsocketSettings
from services.websocket.hub import Hub


def get_settings(connection: HTTPConnection) -> WebsocketSettings:
    return app_state(connection, "settings", WebsocketSettings)


def get_hub(connection: HTTPConnection) -> Hub:
    return app_state(connection, "hub", Hub)


SettingsDep = Annotated[WebsocketSettings, Depends(get_settings)]
HubDep = Annotated[Hub, Depends(get_hub)]

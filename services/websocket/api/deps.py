"""Typed access to the websocket service's state (settings, hub), for /ws and the subscription handler."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from services.platform.deps import state_provider
from services.websocket.config import WebsocketSettings
from services.websocket.hub import Hub

get_settings = state_provider("settings", WebsocketSettings)
get_hub = state_provider("hub", Hub)

SettingsDep = Annotated[WebsocketSettings, Depends(get_settings)]
HubDep = Annotated[Hub, Depends(get_hub)]

"""Typed access to the notification service's state (settings, notifier), for routes and handlers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from services.notification.config import NotificationSettings
from services.notification.notifiers import Notifier
from services.platform.deps import app_state


def get_settings(connection: HTTPConnection) -> NotificationSettings:
    return app_state(connection, "settings", NotificationSettings)


def get_notifier(connection: HTTPConnection) -> Notifier:
    return app_state(connection, "notifier", Notifier)  # type: ignore[type-abstract]  # a runtime-checkable Protocol


SettingsDep = Annotated[NotificationSettings, Depends(get_settings)]
NotifierDep = Annotated[Notifier, Depends(get_notifier)]

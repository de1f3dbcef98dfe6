"""Typed access to the notification service's state (settings, notifier), for routes and handlers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from services.notification.config import NotificationSettings
from services.notification.notifiers import Notifier
from services.platform.deps import state_provider

get_settings = state_provider("settings", NotificationSettings)
get_notifier = state_provider("notifier", Notifier)  # type: ignore[type-abstract]  # a runtime-checkable Protocol


SettingsDep = Annotated[NotificationSettings, Depends(get_settings)]
NotifierDep = Annotated[Notifier, Depends(get_notifier)]

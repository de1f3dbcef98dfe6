"""Pub/sub topic scoping from the component's metadata, as daprd enforces it.

`allowedTopics` limits every app; `protectedTopics` need an explicit grant; `publishingScopes` /
`subscriptionScopes` ("app1=t1,t2;app2=;...") limit one app — "app2=" means no topic at all,
an app that is not listed is not limited. A publish outside the scopes is refused with
PermissionDenied; a subscription outside them is not started (with a warning). Mirrors dapr/dapr
pkg/scopes/scopes.go and IsOperationAllowed in pkg/runtime/pubsub/adapter.go.
Docs: https://docs.dapr.io/developing-applications/building-blocks/pubsub/pubsub-scopes/
"""

from __future__ import annotations

from dataclasses import dataclass


def _param(metadata: dict[str, str], name: str) -> str:
    for key, value in metadata.items():
        if key.lower() == name.lower():
            return value
    return ""


def _topics(value: str) -> tuple[str, ...]:
    out: list[str] = []
    for topic in value.replace(" ", "").split(","):
        if topic not in out:
            out.append(topic)
    return tuple(out)


def _scoped(metadata: dict[str, str], name: str, app_id: str) -> tuple[str, ...]:
    """The app's topics in a *Scopes value; () when the app is not listed (no limit)."""
    value = _param(metadata, name).replace(" ", "")
    topics: list[str] = []
    for entry in value.split(";") if value else []:
        app, sep, listed = entry.partition("=")
        if sep and app == app_id:
            topics.extend(t for t in _topics(listed) if t not in topics)
    return tuple(topics)


@dataclass(frozen=True)
class TopicScopes:
    allowed: tuple[str, ...] = ()
    protected: tuple[str, ...] = ()
    publishing: tuple[str, ...] = ()
    subscribing: tuple[str, ...] = ()

    @classmethod
    def from_metadata(cls, metadata: dict[str, str], app_id: str) -> TopicScopes:
        allowed, protected = _param(metadata, "allowedTopics"), _param(metadata, "protectedTopics")
        return cls(
            allowed=_topics(allowed) if allowed else (),
            protected=_topics(protected) if protected else (),
            publishing=_scoped(metadata, "publishingScopes", app_id),
            subscribing=_scoped(metadata, "subscriptionScopes", app_id),
        )

    def _allowed(self, topic: str, scoped: tuple[str, ...]) -> bool:
        if self.allowed and topic not in self.allowed:
            return False
        if topic not in self.protected and not scoped:
            return True
        return topic in scoped

    def may_publish(self, topic: str) -> bool:
        return self._allowed(topic, self.publishing)

    def may_subscribe(self, topic: str) -> bool:
        return self._allowed(topic, self.subscribing)

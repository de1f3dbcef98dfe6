"""The hub: per-user isolation, redelivery dedupe, bounded resume, slow clients."""

from __future__ import annotations

import asyncio

from services.websocket.hub import Hub


def msg(n: int) -> dict:
    return {"type": "event", "id": f"e{n}"}


def drain(queue: asyncio.Queue) -> list[dict]:
    out = []
    while not queue.empty():
        out.append(queue.get_nowait())
    return out


def test_updates_reach_only_the_owners_connections() -> None:
    async def run() -> None:
        hub = Hub()
        alice1, _ = hub.subscribe("alice")
        alice2, _ = hub.subscribe("alice")
        bob, _ = hub.subscribe("bob")
        assert hub.publish("alice", "e1", msg(1)) == 2
        assert drain(alice1.queue) == [msg(1)]
        assert drain(alice2.queue) == [msg(1)]
        assert drain(bob.queue) == []
        hub.unsubscribe(alice2)
        assert hub.publish("alice", "e2", msg(2)) == 1
        assert hub.connections("alice") == 1
        hub.unsubscribe(alice1)
        hub.unsubscribe(bob)
        assert hub.connections() == 0

    asyncio.run(run())


def test_a_redelivered_event_is_not_pushed_twice() -> None:
    async def run() -> None:
        hub = Hub()
        sub, _ = hub.subscribe("alice")
        assert hub.publish("alice", "e1", msg(1)) == 1
        assert hub.publish("alice", "e1", msg(1)) == 0
        assert drain(sub.queue) == [msg(1)]

    asyncio.run(run())


def test_resume_replays_after_the_last_seen_id_or_asks_for_a_resync() -> None:
    async def run() -> None:
        hub = Hub(buffer_size=3)
        for n in range(1, 6):
            hub.publish("alice", f"e{n}", msg(n))
        _, backlog = hub.subscribe("alice", "e3")
        assert backlog == [msg(4), msg(5)]
        _, up_to_date = hub.subscribe("alice", "e5")
        assert up_to_date == []
        _, evicted = hub.subscribe("alice", "e2")  # left the 3-entry buffer
        assert evicted is None
        _, unknown_user = hub.subscribe("carol", "e5")  # never seen here (restart, other replica)
        assert unknown_user is None
        _, other_users_id = hub.subscribe("bob", "e4")  # alice's ids never resume bob
        assert other_users_id is None

    asyncio.run(run())


def test_buffers_are_bounded_in_users_too() -> None:
    async def run() -> None:
        hub = Hub(buffer_size=2, max_users=2)
        hub.publish("u1", "a", msg(1))
        hub.publish("u2", "b", msg(2))
        hub.publish("u1", "c", msg(3))  # u1 is now the most recent
        hub.publish("u3", "d", msg(4))  # evicts u2
        assert hub.subscribe("u2", "b")[1] is None
        assert hub.subscribe("u1", "a")[1] == [msg(3)]

    asyncio.run(run())


def test_a_slow_client_is_flagged_instead_of_blocking_the_others() -> None:
    async def run() -> None:
        hub = Hub(queue_size=2)
        slow, _ = hub.subscribe("alice")
        fast, _ = hub.subscribe("alice")
        for n in range(3):
            hub.publish("alice", f"e{n}", msg(n))
            drain(fast.queue)
        assert slow.overflowed
        assert slow.queue.qsize() == 2
        assert not fast.overflowed

    asyncio.run(run())

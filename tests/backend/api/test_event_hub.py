"""GET /events' one poller for all streams (``FeedHub``): every listener gets the same changes from
one read of the index per tick; the poller stops with the last listener and starts afresh; a
listener that falls too far behind is ended without holding the others back."""

from __future__ import annotations

import asyncio
from typing import Any

from gridledger.api.routes import events
from gridledger.api.routes.events import LAGGED, FeedHub

Event = tuple[str, dict[str, Any]]


class ScriptedFeed:
    """A feed whose polls return the scripted changes in turn, then nothing."""

    def __init__(self, script: list[list[Event]]) -> None:
        self.script = iter(script)
        self.polls = 0

    def poll(self) -> list[Event]:
        self.polls += 1
        return next(self.script, [])


CLEARED: Event = ("slot_cleared", {"delivery_start": 900})
SETTLED: Event = ("slot_settled", {"delivery_start": 900})


async def take(queue: asyncio.Queue[Event], n: int) -> list[Event]:
    return [await asyncio.wait_for(queue.get(), timeout=2) for _ in range(n)]


def test_every_listener_gets_each_change_from_one_shared_poll() -> None:
    feeds: list[ScriptedFeed] = []

    def make() -> ScriptedFeed:
        # The first poll is the start (its state is not sent); then a clearing, then a settlement.
        feeds.append(ScriptedFeed([[("order_accepted", {"order_hash": "0xbefore"})], [CLEARED], [], [SETTLED]]))
        return feeds[-1]

    async def scenario() -> None:
        hub = FeedHub(make, poll_s=0.01)
        first, second = hub.subscribe(), hub.subscribe()
        assert (await take(first, 2), await take(second, 2)) == ([CLEARED, SETTLED], [CLEARED, SETTLED])
        assert len(feeds) == 1 and feeds[0].polls == hub.polls + 1  # one read per tick for both
        hub.unsubscribe(first)
        hub.unsubscribe(second)
        await asyncio.sleep(0.05)
        stopped_at = feeds[0].polls
        await asyncio.sleep(0.05)
        assert feeds[0].polls == stopped_at  # no listener, no polling
        third = hub.subscribe()  # a fresh feed: what happened meanwhile is not replayed
        assert len(feeds) == 2 and await take(third, 2) == [CLEARED, SETTLED]
        hub.unsubscribe(third)

    asyncio.run(scenario())


def test_a_listener_too_far_behind_is_ended_and_the_others_keep_receiving(monkeypatch) -> None:
    monkeypatch.setattr(events, "QUEUE_LIMIT", 2)
    changes = [("order_accepted", {"order_hash": f"0x{i}"}) for i in range(3)]

    async def scenario() -> None:
        hub = FeedHub(lambda: ScriptedFeed([[], changes[:2], changes[2:]]), poll_s=0.01)
        slow, fast = hub.subscribe(), hub.subscribe()
        assert await take(fast, 3) == changes  # read as they come
        await asyncio.sleep(0.03)
        assert hub.listeners == 1  # the slow one, full when the third change came, was dropped
        assert await take(slow, 2) == [changes[1], LAGGED]  # its stream ends; its page reconnects
        hub.unsubscribe(fast)

    asyncio.run(scenario())


def test_a_commit_by_another_connection_is_read_at_the_next_tick_not_the_next_poll() -> None:
    version = [1]
    feed = ScriptedFeed([[], [CLEARED]])

    async def scenario() -> None:
        hub = FeedHub(lambda: feed, lambda: version[0], poll_s=60.0, tick_s=0.01)  # the fallback never comes
        listener = hub.subscribe()
        await asyncio.sleep(0.1)
        assert feed.polls == 1  # only the start: nothing was committed
        version[0] += 1  # the indexer commits
        assert await take(listener, 1) == [CLEARED]
        assert feed.polls == 2
        hub.unsubscribe(listener)

    asyncio.run(scenario())


def test_a_feed_that_fails_ends_every_stream_and_the_next_listener_starts_afresh() -> None:
    class BrokenFeed(ScriptedFeed):
        def poll(self) -> list[Event]:
            if self.polls == 1:  # the start worked; the next read of the index fails
                raise RuntimeError("database is locked")
            return super().poll()

    feeds: list[ScriptedFeed] = []

    def make() -> ScriptedFeed:
        feeds.append(BrokenFeed([[]]) if not feeds else ScriptedFeed([[], [CLEARED]]))
        return feeds[-1]

    async def scenario() -> None:
        hub = FeedHub(make, poll_s=0.01)
        first, second = hub.subscribe(), hub.subscribe()
        assert (await take(first, 1), await take(second, 1)) == ([LAGGED], [LAGGED])  # both told, not left hanging
        assert hub.listeners == 0
        third = hub.subscribe()
        assert len(feeds) == 2 and await take(third, 1) == [CLEARED]
        hub.unsubscribe(third)

    asyncio.run(scenario())

"""Server-sent events: what changes in the facilitator's index, as it changes.

One poller per app reads the index (``EventFeed``) for every connected stream and hands each
change to every stream's queue: the index is read once however many pages listen. It reads it
as soon as another connection commits to the database (SQLite's ``PRAGMA data_version``, checked
every ``TICK_S``: the chain thread's indexer writes through its own connection), and at least
every ``POLL_S`` (orders the API itself accepts are written through the connection it reads
with, which ``data_version`` does not count). A state that lasts a tick reaches every page."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import StreamingResponse

from gridledger.api.deps import FacilitatorDep
from gridledger.api.errors import refusals
from gridledger.api.schemas import ServerEvent
from gridledger.service.queries import EventFeed

log = logging.getLogger(__name__)

router = APIRouter(tags=["events"], responses=refusals(413, 503))
TICK_S = 0.02  # how often the database's version is checked (a cheap pragma)
POLL_S = 0.1  # the longest wait between two reads of the index
KEEPALIVE_S = 15.0  # a comment line keeps proxies from closing an idle stream
QUEUE_LIMIT = 10_000  # a stream this far behind is closed; its page reconnects (retry) and reads the routes
STREAM = ServerEvent.model_json_schema()
Event = tuple[str, dict[str, Any]]
LAGGED: Event = ("", {})  # the last item of a stream that fell too far behind


class Feed(Protocol):
    def poll(self) -> list[Event]: ...


class FeedHub:
    """Polls one feed while any stream listens and gives each change to every listener.

    The poller starts with the first listener (its first poll only takes the index's state as
    the start, as ``EventFeed`` does) and stops with the last; a later listener starts a fresh
    feed, so nothing that happened while no one listened is replayed."""

    def __init__(
        self,
        make_feed: Callable[[], Feed],
        version: Callable[[], int] | None = None,
        *,
        poll_s: float = POLL_S,
        tick_s: float = TICK_S,
    ) -> None:
        self._make_feed = make_feed
        self._version = version
        self.poll_s, self.tick_s = poll_s, tick_s
        self._queues: set[asyncio.Queue[Event]] = set()
        self._task: asyncio.Task[None] | None = None
        self.polls = 0

    @property
    def listeners(self) -> int:
        return len(self._queues)

    def subscribe(self) -> asyncio.Queue[Event]:
        queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=QUEUE_LIMIT)
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            feed = self._make_feed()
            feed.poll()  # the state now: later polls send what changes
            self._task = loop.create_task(self._run(feed))
        self._queues.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Event]) -> None:
        self._queues.discard(queue)

    async def _run(self, feed: Feed) -> None:
        try:
            await self._poll_while_listened(feed)
        except Exception:  # the index could not be read: end every stream (they reconnect; the next starts anew)
            log.exception("the event feed failed; ending its streams")
            for queue in list(self._queues):
                self._end(queue)

    def _end(self, queue: asyncio.Queue[Event]) -> None:
        """Ends one stream with LAGGED after what it holds (the last change is dropped if it is full);
        its page reconnects."""
        self._queues.discard(queue)
        if queue.full():
            queue.get_nowait()
        queue.put_nowait(LAGGED)

    async def _poll_while_listened(self, feed: Feed) -> None:
        seen = self._version() if self._version is not None else None
        waited = 0.0
        while True:
            await asyncio.sleep(self.tick_s)
            if not self._queues:
                return
            waited += self.tick_s
            now = self._version() if self._version is not None else None
            if now == seen and waited < self.poll_s:
                continue
            seen, waited = now, 0.0
            self.polls += 1
            events = feed.poll()
            for queue in list(self._queues):
                for event in events:
                    try:
                        queue.put_nowait(event)
                    except asyncio.QueueFull:  # this stream cannot keep up: end it, keep the others
                        self._end(queue)
                        break


def hub_of(app: FastAPI, make_feed: Callable[[], Feed], version: Callable[[], int]) -> FeedHub:
    hub: FeedHub | None = getattr(app.state, "event_hub", None)
    if hub is None:
        hub = app.state.event_hub = FeedHub(make_feed, version)
    return hub


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": (
                "text/event-stream: one event per change, `event:` its kind (order_accepted, order_on_chain, "
                "order_cancelled, slot_cleared, slot_settled, flexibility), `data:` a ServerEvent as JSON"
            ),
            "content": {"text/event-stream": {"schema": STREAM}},
        }
    },
)
async def events(service: FacilitatorDep, request: Request) -> StreamingResponse:
    """Orders accepted, recorded and cancelled, slots cleared and settled, flexibility requests that moved,
    from the index, from the moment of connecting (read the routes for the state before)."""
    db = service.ctx.db
    hub = hub_of(
        request.app, lambda: EventFeed(service.ctx), lambda: int(db.execute("PRAGMA data_version").fetchone()[0])
    )

    async def stream() -> AsyncIterator[str]:
        queue = hub.subscribe()  # here, not before: a stream that never starts never listens
        try:
            yield "retry: 2000\n\n"
            while not await request.is_disconnected():
                try:
                    kind, data = await asyncio.wait_for(queue.get(), timeout=KEEPALIVE_S)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if (kind, data) == LAGGED:
                    return
                yield frame(kind, data)
        finally:
            hub.unsubscribe(queue)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


def frame(kind: str, data: dict[str, Any]) -> str:
    body = ServerEvent.model_validate({"kind": kind, "data": data}).model_dump()
    return f"event: {kind}\ndata: {json.dumps(body, separators=(',', ':'))}\n\n"

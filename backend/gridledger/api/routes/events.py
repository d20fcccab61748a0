"""Server-sent events: what changes in the facilitator's index, as it changes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from gridledger.api.deps import FacilitatorDep
from gridledger.api.errors import refusals
from gridledger.api.schemas import ServerEvent
from gridledger.service.queries import EventFeed

router = APIRouter(tags=["events"], responses=refusals(413, 503))
POLL_S = 0.5
KEEPALIVE_S = 15.0  # a comment line keeps proxies from closing an idle stream
STREAM = ServerEvent.model_json_schema()


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
    feed = EventFeed(service.ctx)
    feed.poll()  # the state at connection: later polls send what changes

    async def stream() -> AsyncIterator[str]:
        yield "retry: 2000\n\n"
        idle = 0.0
        while not await request.is_disconnected():
            for kind, data in feed.poll():
                yield frame(kind, data)
                idle = 0.0
            await asyncio.sleep(POLL_S)
            idle += POLL_S
            if idle >= KEEPALIVE_S:
                yield ": keep-alive\n\n"
                idle = 0.0

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


def frame(kind: str, data: dict[str, Any]) -> str:
    body = ServerEvent.model_validate({"kind": kind, "data": data}).model_dump()
    return f"event: {kind}\ndata: {json.dumps(body, separators=(',', ':'))}\n\n"

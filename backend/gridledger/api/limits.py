"""The request size limit: a body above ``Settings.max_body_bytes`` is answered 413 with the
API's error body before anything parses it.

A declared ``Content-Length`` above the limit is refused at once. A body without one (chunked) is
read here, counting bytes, up to the limit, and then handed on; one byte more and it is refused.
(FastAPI's own ``max_body_size`` answers in plain text, not with ``ErrorBody``.)
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gridledger.api.errors import error_response
from gridledger.errors import BodyTooLargeError


class BodySizeLimit:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            # The server holds the client to its Content-Length, so the declared size is the size.
            if declared.isdigit() and int(declared) > self.max_body_bytes:
                await self._refuse(scope, receive, send, f"the request body has {int(declared)} bytes")
                return
            await self.app(scope, receive, send)
            return
        received: list[Message] = []
        size = 0
        while True:
            message = await receive()
            received.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.max_body_bytes:
                what = f"the request body, streamed without a Content-Length, reached {size} bytes"
                await self._refuse(scope, receive, send, what)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return received.pop(0) if received else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, what: str) -> None:
        refusal = BodyTooLargeError(
            f"{what}; at most {self.max_body_bytes} bytes are accepted (GRIDLEDGER_MAX_BODY_BYTES)"
        )
        await error_response(refusal)(scope, receive, send)

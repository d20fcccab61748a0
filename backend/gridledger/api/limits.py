"""The request size limit: a body above ``Settings.max_body_bytes`` is answered 413 with the
API's error body before anything parses it.

A declared ``Content-Length`` above the limit is refused at once. A body without one (chunked) is
read here, counting bytes, up to the limit, and then handed on; one byte more and it is refused.
(FastAPI's own ``max_body_size`` answers in plain text, not with ``ErrorBody``.)

A body nested deeper than ``MAX_JSON_DEPTH`` arrays and objects is refused too (422), before any
JSON parser sees it: the chain libraries (py_ecc) raise Python's recursion limit to 100,000, so
``json.loads`` of a 200 kB body of brackets would recurse until the process's C stack overflowed
and the service died (a segmentation fault, not an exception).
"""

from __future__ import annotations

import re

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gridledger.api.errors import ErrorBody, FieldProblem, error_response
from gridledger.errors import BodyTooLargeError

MAX_JSON_DEPTH = 64  # the deepest body the API takes is 3 ({"readings": [{…}]})
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_BRACKET = re.compile(rb"[\[\]{}]")


def json_depth(body: bytes) -> int:
    """How deep arrays and objects nest in ``body`` (brackets inside strings do not count); a
    body with no more brackets than the limit cannot nest deeper and is not scanned."""
    if body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH:
        return 0
    depth = deepest = 0
    for bracket in _BRACKET.findall(_STRING.sub(b'""', body)):
        if bracket in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


class BodySizeLimit:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        # The server holds the client to its Content-Length, so the declared size is the size.
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._refuse(scope, receive, send, f"the request body has {int(declared)} bytes")
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

        body = b"".join(m.get("body", b"") for m in received if m["type"] == "http.request")
        depth = json_depth(body)
        if depth > MAX_JSON_DEPTH:
            problem = FieldProblem(
                field="body", problem=f"nested {depth} deep; at most {MAX_JSON_DEPTH} arrays and objects", input=None
            )
            refusal = ErrorBody(error="InvalidRequest", detail=f"body: {problem.problem}", fields=[problem])
            await JSONResponse(refusal.model_dump(mode="json"), status_code=422)(scope, receive, send)
            return

        async def replay() -> Message:
            return received.pop(0) if received else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, what: str) -> None:
        refusal = BodyTooLargeError(
            f"{what}; at most {self.max_body_bytes} bytes are accepted (GRIDLEDGER_MAX_BODY_BYTES)"
        )
        await error_response(refusal)(scope, receive, send)

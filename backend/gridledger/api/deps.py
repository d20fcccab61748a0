"""The API's dependencies, as ``Annotated`` aliases the routes declare.

``FacilitatorDep`` and ``FlexDeskDep`` are the service the app was created with. The
``SignedBy*`` aliases authorise a privileged write as one role (the facilitator, the DSO, the
meter operator) and give the route the raw body it may then parse; they document the four
signed-request headers in OpenAPI (a security scheme per role for the signature, header
parameters for the address, timestamp and nonce).

Order of checks on a signed route, as before the routers: the path (422), then the signature
over the raw body (401/403/409), then the body (422). FastAPI itself would decode a declared
JSON body before any dependency runs and validate path parameters after them, so a signed
route declares no body parameter: its dependency checks the path first, authorises over the
bytes Starlette caches, and the route validates the body from those bytes (``parse_body``);
``openapi.json_body`` puts the body's schema into the document.
"""

# No ``from __future__ import annotations``: the signed-request dependency is built per role in a
# closure, and FastAPI must see its parameters' annotations evaluated (strings naming closure
# variables could not be resolved).

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Annotated, Literal, TypeVar

from eth_utils.address import to_checksum_address
from fastapi import Depends, Header, Path, Request
from fastapi.dependencies.utils import request_params_to_args
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader
from pydantic import BaseModel

from gridledger.api.schemas import Address
from gridledger.service.facilitator import Facilitator
from gridledger.service.flexibility import FlexDesk
from gridledger.wallet.requests import HEADER_ADDRESS, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
Role = Literal["facilitator", "DSO", "meter operator"]

# ─────────────── the service ───────────────


def get_facilitator(request: Request) -> Facilitator:
    service: Facilitator = request.app.state.service
    return service


FacilitatorDep = Annotated[Facilitator, Depends(get_facilitator)]


def get_flex_desk(service: FacilitatorDep) -> FlexDesk:
    return service.flex


FlexDeskDep = Annotated[FlexDesk, Depends(get_flex_desk)]


async def mined(future: Future[T]) -> T:
    """Waits, without blocking the event loop, for a write the chain thread runs."""
    return await asyncio.wrap_future(future)


# ─────────────── path parameters ───────────────


def checksummed(account: Annotated[Address, Path()]) -> str:
    return str(to_checksum_address(account))


AccountPath = Annotated[str, Depends(checksummed)]

# ─────────────── signed requests ───────────────

SIGNED_HEADERS = (
    f"Signed request: {HEADER_ADDRESS} (the signer), {HEADER_TIMESTAMP} (unix seconds, within 300 s of the "
    f"service's clock), {HEADER_NONCE} (random, at most 64 characters) and {HEADER_SIGNATURE}: the EIP-191 "
    "personal_sign of 'GridLedger API request\\n<METHOD> <path>\\n<timestamp>\\n<nonce>\\n<sha256 hex of the "
    "body>'. Each signed request is accepted once."
)
_SCHEME_NAMES: dict[Role, str] = {
    "facilitator": "FacilitatorSignature",
    "DSO": "DsoSignature",
    "meter operator": "MeterOperatorSignature",
}
SCHEMES: dict[Role, APIKeyHeader] = {
    role: APIKeyHeader(
        name=HEADER_SIGNATURE,
        scheme_name=name,
        description=f"The {role}'s signature. {SIGNED_HEADERS}",
        auto_error=False,  # a missing header is the service's 401, with its message
    )
    for role, name in _SCHEME_NAMES.items()
}


def _path_first(request: Request) -> None:
    """Validates the route's path parameters now, so a bad path is a 422 before a 401 (FastAPI
    validates them only after the dependencies ran)."""
    route = request.scope.get("route")
    if isinstance(route, APIRoute):
        _, errors = request_params_to_args(route.dependant.path_params, request.path_params)
        if errors:
            raise RequestValidationError(errors)


def _require_json(content_type: str | None, body: bytes) -> None:
    """A body sent as something other than JSON is refused (422), as FastAPI refuses it on the
    routes whose body it decodes itself; no content type at all is read as JSON, as there."""
    if not body or content_type is None:
        return
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        problem = {"loc": ("body",), "msg": f"the body must be application/json, not {media!r}", "input": None}
        raise RequestValidationError([problem])


def _signed_by(role: Role) -> Callable[..., Awaitable[bytes]]:
    scheme = SCHEMES[role]

    async def authorised(
        request: Request,
        service: FacilitatorDep,
        signature: Annotated[str | None, Depends(scheme)],
        address: Annotated[str | None, Header(alias=HEADER_ADDRESS, description=f"the {role}'s address")] = None,
        timestamp: Annotated[str | None, Header(alias=HEADER_TIMESTAMP, description="unix seconds")] = None,
        nonce: Annotated[str | None, Header(alias=HEADER_NONCE, description="random, at most 64 chars")] = None,
    ) -> bytes:
        # The header parameters are declared for the document; the service reads all four itself
        # and answers a missing one with a 401 that names it.
        _path_first(request)
        body = await request.body()  # Starlette caches it: the route parses the same bytes
        service.operations.authorise(request.headers, request.method, request.url.path, body, role=role)
        _require_json(request.headers.get("content-type"), body)
        return body

    authorised.__name__ = f"signed_by_{role.replace(' ', '_').lower()}"
    return authorised


SignedByFacilitator = Annotated[bytes, Depends(_signed_by("facilitator"))]
SignedByDso = Annotated[bytes, Depends(_signed_by("DSO"))]
SignedByMeterOperator = Annotated[bytes, Depends(_signed_by("meter operator"))]


def parse_body(model: type[M], raw: bytes) -> M:
    """The signed body, validated after the signature (a pydantic error is the API's 422)."""
    return model.model_validate_json(raw or b"{}")

"""HTTP status and body for every refusal: the error class decides the status, its message is
the detail. A client error is never a 500.

Every refusal has one body, ``ErrorBody``: ``error`` (a stable code: the exception's class or the
contract's custom error), ``detail`` (what was wrong and what is allowed) and ``fields`` (for
``InvalidRequest``, one entry per field that failed validation; empty otherwise). Routes document
their refusals with ``refusals(...)``, so the OpenAPI document shows the body the service sends.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from gridledger import errors

# The contract's custom errors that mean "this exists already" or "the state does not allow it now".
CONFLICTS = {"AlreadyRegistered", "MeterIdTaken", "NonceAlreadyUsed", "MeterReadingAlreadyPosted", "SlotAlreadyCleared"}
# ... that mean the input was outside what is allowed (a 4xx the caller fixes by changing the input).
INVALID = {
    "RequestPowerZero",
    "InvalidWindowSlots",
    "WindowNotOnSlotBoundary",
    "BidDeadlinePassed",
    "BidDeadlineNotBeforeWindow",
    "InvalidMinPerformance",
    "OfferAfterDeadline",
    "OutsideWindow",
    "PriceAboveCap",
    "InvalidPower",
    "ConnectionPointMismatch",
    "ActivationAboveContract",
    "ActivationTooLate",
}
NOT_FOUND = {"UnknownRequest", "UnknownOffer"}

STATUS: list[tuple[type[Exception], int]] = [
    (errors.SignatureError, 401),
    (errors.SignatureRejected, 401),
    (errors.ForbiddenError, 403),
    (errors.NotRegisteredError, 403),
    (errors.NotFoundError, 404),
    (errors.ConflictError, 409),
    (errors.ReplayRejected, 409),
    (errors.BodyTooLargeError, 413),
    (errors.OrderError, 422),
    (errors.NetworkError, 422),
    (errors.InsufficientFunds, 422),
    (errors.GateClosedError, 422),
    (errors.OrderExpiredError, 422),
    (errors.ConfigurationError, 503),
    (errors.LedgerError, 409),  # the contract refused a state change (clearing, metering, settlement)
]


class FieldProblem(BaseModel):
    """One field of a request that failed validation."""

    model_config = ConfigDict(extra="forbid")

    field: str = Field(description="where: a body field (`energy_wh`, `readings.0.account`) or `path.<name>`")
    problem: str = Field(description="what is wrong, with the allowed range")
    input: Any = Field(description="the value sent (its repr, cut to 200 characters, if not a JSON scalar)")


class ErrorBody(BaseModel):
    """The body of every 4xx and 503 answer of the API."""

    model_config = ConfigDict(extra="forbid")

    error: str = Field(
        description="a stable code: InvalidRequest, an exception class (NotFoundError, SignatureError, …) "
        "or the contract's custom error (GateClosed, SlotAlreadyCleared, …)"
    )
    detail: str = Field(description="what was wrong and what is allowed")
    fields: list[FieldProblem] = Field(
        default_factory=list, description="for InvalidRequest: every field that failed validation; else empty"
    )


DESCRIPTIONS = {
    401: "Signature missing, malformed, stale or not the expected party's",
    403: "Signed by a party that may not do this (not the role, not registered)",
    404: "No such participant, order, slot, report, flexibility request or offer",
    409: "A duplicate, a replayed signed request, or a state the ledger refuses now",
    413: "The request body is larger than the service accepts (GRIDLEDGER_MAX_BODY_BYTES)",
    422: "Invalid input: a field outside its range (see `fields`) or a value the market refuses",
    503: "The chain node or the service's configuration is unavailable; try again",
}


def refusals(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route that can answer ``statuses``: each with ``ErrorBody``."""
    return {status: {"model": ErrorBody, "description": DESCRIPTIONS[status]} for status in statuses}


def status_of(exc: errors.GridLedgerError) -> int:
    if isinstance(exc, errors.LedgerError) and exc.error in CONFLICTS:
        return 409
    if isinstance(exc, errors.LedgerError) and exc.error in INVALID:
        return 422
    if isinstance(exc, errors.LedgerError) and exc.error in NOT_FOUND:
        return 404
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 400


def _code(exc: errors.GridLedgerError) -> str:
    if isinstance(exc, errors.LedgerError) and exc.error:
        return exc.error
    return type(exc).__name__


def error_response(exc: errors.GridLedgerError) -> JSONResponse:
    body = ErrorBody(error=_code(exc), detail=str(exc))
    return JSONResponse(body.model_dump(mode="json"), status_code=status_of(exc))


async def gridledger_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.GridLedgerError)
    return error_response(exc)


def validation_body(problems: list[Any]) -> dict[str, Any]:
    fields = []
    for p in problems:
        location = ".".join(str(part) for part in p.get("loc", ()) if part not in ("body",))
        fields.append(FieldProblem(field=location, problem=p.get("msg", ""), input=_safe(p.get("input"))))
    detail = "; ".join(f"{f.field or 'body'}: {f.problem}" for f in fields)
    return ErrorBody(error="InvalidRequest", detail=detail, fields=fields).model_dump(mode="json")


async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, (RequestValidationError, ValidationError))
    return JSONResponse(validation_body(list(exc.errors())), status_code=422)


async def chain_unreachable(request: Request, exc: Exception) -> JSONResponse:
    """The chain node went away mid-request: the service is unavailable, not the request wrong."""
    body = ErrorBody(
        error="ChainUnavailable",
        detail=f"the chain node did not answer ({type(exc).__name__}); try again",
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=503)


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's and FastAPI's own refusals, in the API's error body. FastAPI answers a body it
    cannot decode (invalid UTF-8, nesting too deep for the JSON parser) with a 400; that is invalid
    input like any other, so it is the API's 422."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:
        cause = exc.__cause__
        reason = f" ({type(cause).__name__})" if cause is not None else ""
        problem = FieldProblem(field="body", problem=f"not a JSON document the service can read{reason}", input=None)
        body = ErrorBody(error="InvalidRequest", detail=f"body: {problem.problem}", fields=[problem])
        return JSONResponse(body.model_dump(mode="json"), status_code=422)
    body = ErrorBody(error=_HTTP_CODES.get(exc.status_code, "HTTPError"), detail=str(exc.detail))
    return JSONResponse(body.model_dump(mode="json"), status_code=exc.status_code, headers=exc.headers)


_HTTP_CODES = {404: "NotFound", 405: "MethodNotAllowed", 415: "UnsupportedMediaType"}


def _safe(value: Any) -> Any:
    """The input a field problem echoes: a JSON scalar as sent, anything else (a non-finite float,
    which JSON cannot carry; a container, however deeply nested) as a repr cut to 200 characters."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    try:
        return repr(value)[:200]
    except (RecursionError, ValueError):  # nested deeper than repr goes; an int beyond repr's digits
        return f"<{type(value).__name__}>"

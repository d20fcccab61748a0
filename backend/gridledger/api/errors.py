"""HTTP status and body for every refusal: the error class decides the status, its message is
the detail. A client error is never a 500."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

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
    (errors.OrderError, 422),
    (errors.NetworkError, 422),
    (errors.InsufficientFunds, 422),
    (errors.GateClosedError, 422),
    (errors.OrderExpiredError, 422),
    (errors.ConfigurationError, 503),
    (errors.LedgerError, 409),  # the contract refused a state change (clearing, metering, settlement)
]


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


async def gridledger_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.GridLedgerError)
    return JSONResponse({"error": _code(exc), "detail": str(exc)}, status_code=status_of(exc))


def validation_body(problems: list[Any]) -> dict[str, Any]:
    fields = []
    for p in problems:
        location = ".".join(str(part) for part in p.get("loc", ()) if part not in ("body",))
        fields.append({"field": location, "problem": p.get("msg", ""), "input": _safe(p.get("input"))})
    detail = "; ".join(f"{f['field'] or 'body'}: {f['problem']}" for f in fields)
    return {"error": "InvalidRequest", "detail": detail, "fields": fields}


async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, (RequestValidationError, ValidationError))
    return JSONResponse(validation_body(list(exc.errors())), status_code=422)


async def chain_unreachable(request: Request, exc: Exception) -> JSONResponse:
    """The chain node went away mid-request: the service is unavailable, not the request wrong."""
    return JSONResponse(
        {"error": "ChainUnavailable", "detail": f"the chain node did not answer ({type(exc).__name__}); try again"},
        status_code=503,
    )


def _safe(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)[:200]

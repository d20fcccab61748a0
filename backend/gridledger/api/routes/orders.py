"""Orders: submitted with the prosumer's EIP-712 signature in the body, their status, cancellation."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from gridledger.api.deps import FacilitatorDep
from gridledger.api.errors import refusals
from gridledger.api.schemas import (
    CancellationAccepted,
    CancellationCreate,
    OrderAccepted,
    OrderCreate,
    OrderHash,
    OrderPublic,
)
from gridledger.service.orders import OrderIn

router = APIRouter(prefix="/orders", tags=["orders"], responses=refusals(413, 422, 503))


@router.post("", status_code=202, response_model=OrderAccepted, responses=refusals(401, 403, 409))
async def submit_order(service: FacilitatorDep, body: OrderCreate) -> dict[str, Any]:
    """Accepts a prosumer-signed order: stored before this answers, relayed in the next batch."""
    r, vs = body.signature_parts()
    return service.orders.accept_order(OrderIn(body.to_order(), r, vs))


@router.get("/{order_hash}", response_model=OrderPublic, response_model_exclude_unset=True, responses=refusals(404))
async def order_status(service: FacilitatorDep, order_hash: Annotated[OrderHash, Path()]) -> dict[str, Any]:
    return service.queries.order_status(order_hash.lower())


@router.post(
    "/{order_hash}/cancellation",
    status_code=202,
    response_model=CancellationAccepted,
    responses=refusals(401, 404, 409),
)
async def cancel_order(
    service: FacilitatorDep, order_hash: Annotated[OrderHash, Path()], body: CancellationCreate
) -> dict[str, Any]:
    """Accepts the prosumer's EIP-712 signature of Cancellation(orderHash); relayed to the ledger."""
    r, vs = body.signature_parts()
    return service.orders.accept_cancellation(order_hash.lower(), r, vs)

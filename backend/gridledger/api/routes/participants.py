"""Participants: registration (the facilitator's signed request), their state, orders and trades."""

from __future__ import annotations

from typing import Any

from eth_utils.address import to_checksum_address
from fastapi import APIRouter

from gridledger.api.deps import AccountPath, FacilitatorDep, SignedByFacilitator, mined, parse_body
from gridledger.api.errors import refusals
from gridledger.api.openapi import json_body
from gridledger.api.schemas import OrderPublic, ParticipantCreate, ParticipantPublic, ParticipantTradePublic

router = APIRouter(prefix="/participants", tags=["participants"], responses=refusals(413, 422, 503))


@router.post(
    "",
    status_code=201,
    response_model=ParticipantPublic,
    responses=refusals(401, 403, 409),
    openapi_extra=json_body(ParticipantCreate),
)
async def register(service: FacilitatorDep, raw: SignedByFacilitator) -> dict[str, Any]:
    """Registers a participant (the facilitator's signed request)."""
    body = parse_body(ParticipantCreate, raw)
    account = str(to_checksum_address(body.account))
    await mined(service.operations.register(account, meter_id=body.meter_id, bus=body.bus, capacity_w=body.capacity_w))
    return service.queries.participant(account)


@router.get("/{account}", response_model=ParticipantPublic, responses=refusals(404))
async def participant(service: FacilitatorDep, account: AccountPath) -> dict[str, Any]:
    return service.queries.participant(account)


@router.get("/{account}/orders", response_model=list[OrderPublic], response_model_exclude_unset=True)
async def participant_orders(service: FacilitatorDep, account: AccountPath) -> list[dict[str, Any]]:
    """The account's orders, as ``GET /orders/{order_hash}`` shows each."""
    return service.queries.orders_of(account)


@router.get("/{account}/trades", response_model=list[ParticipantTradePublic])
async def participant_trades(service: FacilitatorDep, account: AccountPath) -> list[dict[str, Any]]:
    return service.queries.trades_of(account)

"""Read-only views the dashboard draws: slots with their price and volume, the grid's geometry,
every flexibility request, and a slot's audit."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from gridledger.api.deps import FacilitatorDep, FlexDeskDep, mined
from gridledger.api.errors import refusals
from gridledger.api.schemas import FlexRequestPublic, GridPublic, MarketSlotPublic, SlotAuditPublic, SlotStart
from gridledger.service import queries

router = APIRouter(tags=["overview"], responses=refusals(413, 503))


@router.get("/market/slots", response_model=list[MarketSlotPublic], responses=refusals(422))
async def market_slots(
    service: FacilitatorDep,
    limit: Annotated[int, Query(ge=1, le=2000, description="how many of the latest slots")] = 96,
) -> list[dict[str, Any]]:
    """The latest slots with orders or a clearing, newest first: book totals, price and volume."""
    return queries.market_slots(service.ctx, limit=limit)


@router.get("/network/grid", response_model=GridPublic)
async def grid(service: FacilitatorDep) -> dict[str, Any]:
    """The published network model drawn: buses with positions, lines, transformers."""
    return queries.grid(service.ctx)


@router.get("/flex/requests", response_model=list[FlexRequestPublic])
async def flex_requests(service: FacilitatorDep, desk: FlexDeskDep) -> list[dict[str, Any]]:
    """Every flexibility request, newest first, with its offers and their deliveries."""
    return [desk.request_view(i) for i in queries.flex_request_ids(service.ctx)]


@router.get("/audit/slots/{delivery_start}", response_model=SlotAuditPublic, responses=refusals(404, 422))
async def audit(service: FacilitatorDep, delivery_start: Annotated[SlotStart, Path()]) -> dict[str, Any]:
    """Re-runs the slot's clearing, network check and settlement from public records and says
    whether they match what was committed, and where not."""
    return await mined(queries.audit(service.ctx, delivery_start))

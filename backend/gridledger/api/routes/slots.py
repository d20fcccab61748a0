"""A delivery slot: its book, clearing (with the network check), trades, network report, meter
readings and settlement."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from gridledger.api.deps import FacilitatorDep, SignedByFacilitator, SignedByMeterOperator, mined, parse_body
from gridledger.api.errors import refusals
from gridledger.api.openapi import json_body
from gridledger.api.schemas import (
    BookPublic,
    ClearingPublic,
    Empty,
    MeterReadingsCreate,
    MeterReadingsPosted,
    NetworkReportPublic,
    SettlementPublic,
    SlotStart,
    TradePublic,
)

router = APIRouter(prefix="/slots/{delivery_start}", tags=["slots"], responses=refusals(404, 413, 422, 503))
SlotPath = Annotated[SlotStart, Path()]
SIGNED = refusals(401, 403, 409)


@router.get("/book", response_model=BookPublic)
async def book(service: FacilitatorDep, delivery_start: SlotPath) -> dict[str, Any]:
    """Open orders on the ledger by price level, with cumulative depth."""
    return service.queries.book(delivery_start)


@router.post("/clearing", response_model=ClearingPublic, responses=SIGNED)
async def clear(service: FacilitatorDep, delivery_start: SlotPath, raw: SignedByFacilitator) -> dict[str, Any]:
    """Clears the slot, checks it against the network and commits it (the facilitator's signed request)."""
    parse_body(Empty, raw)
    await mined(service.operations.clear_slot(delivery_start))
    return service.queries.clearing(delivery_start)


@router.get("/clearing", response_model=ClearingPublic)
async def clearing(service: FacilitatorDep, delivery_start: SlotPath) -> dict[str, Any]:
    return service.queries.clearing(delivery_start)


@router.get("/trades", response_model=list[TradePublic])
async def trades(service: FacilitatorDep, delivery_start: SlotPath) -> list[dict[str, Any]]:
    service.queries.clearing(delivery_start)  # 404 for a slot that is unknown or not cleared
    return service.queries.trades(delivery_start)


@router.get("/network-report", response_model=NetworkReportPublic)
async def network_report(service: FacilitatorDep, delivery_start: SlotPath) -> dict[str, Any]:
    """The slot's full network validation report; its keccak-256 is on-chain."""
    return service.queries.network_report(delivery_start)


@router.post(
    "/meter-readings",
    response_model=MeterReadingsPosted,
    responses=SIGNED,
    openapi_extra=json_body(MeterReadingsCreate),
)
async def meter_readings(
    service: FacilitatorDep, delivery_start: SlotPath, raw: SignedByMeterOperator
) -> dict[str, Any]:
    """Posts the slot's net metered energy per account (the meter operator's signed request)."""
    body = parse_body(MeterReadingsCreate, raw)
    readings = body.by_account()
    await mined(service.operations.post_meter_readings(delivery_start, readings))
    return {"delivery_start": delivery_start, "posted": len(readings)}


@router.post("/settlement", response_model=SettlementPublic, responses=SIGNED)
async def settle(service: FacilitatorDep, delivery_start: SlotPath, raw: SignedByFacilitator) -> dict[str, Any]:
    """Settles a cleared and metered slot (the facilitator's signed request)."""
    parse_body(Empty, raw)
    await mined(service.operations.settle_slot(delivery_start))
    return service.queries.settlement(delivery_start)


@router.get("/settlement", response_model=SettlementPublic)
async def settlement(service: FacilitatorDep, delivery_start: SlotPath) -> dict[str, Any]:
    return service.queries.settlement(delivery_start)

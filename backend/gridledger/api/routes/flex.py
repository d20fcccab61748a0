"""Flexibility: the DSO's requests, providers' offers, the award, activations, measurements and
settlement."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from gridledger.api.deps import FlexDeskDep, SignedByDso, SignedByFacilitator, SignedByMeterOperator, mined, parse_body
from gridledger.api.errors import refusals
from gridledger.api.openapi import json_body
from gridledger.api.schemas import (
    ActivationCreate,
    AwardReportPublic,
    Empty,
    FlexOfferCreate,
    FlexOfferPublic,
    FlexRequestCreate,
    FlexRequestPublic,
    MeasurementCreate,
    OfferId,
    RequestId,
)

router = APIRouter(prefix="/flex", tags=["flexibility"], responses=refusals(404, 413, 422, 503))
OfferPath = Annotated[OfferId, Path()]
RequestPath = Annotated[RequestId, Path()]
SIGNED = refusals(401, 403, 409)


@router.post(
    "/requests",
    status_code=201,
    response_model=FlexRequestPublic,
    responses=SIGNED,
    openapi_extra=json_body(FlexRequestCreate),
)
async def post_flex_request(desk: FlexDeskDep, raw: SignedByDso) -> dict[str, Any]:
    """The DSO's request (the DSO's signed request); its maximum spend is escrowed on-chain."""
    body = parse_body(FlexRequestCreate, raw)
    request_id = await mined(desk.post_request(body.to_request()))
    return desk.request_view(request_id)


@router.get("/requests/{request_id}", response_model=FlexRequestPublic)
async def flex_request(desk: FlexDeskDep, request_id: RequestPath) -> dict[str, Any]:
    return desk.request_view(request_id)


@router.post("/requests/{request_id}/offers", status_code=201, response_model=FlexOfferPublic, responses=SIGNED)
async def submit_offer(desk: FlexDeskDep, request_id: RequestPath, body: FlexOfferCreate) -> dict[str, Any]:
    """A provider's offer, authorised by its EIP-712 signature in the body."""
    r, vs = body.signature_parts()
    offer_id = await mined(desk.submit_offer(body.to_offer(request_id), r, vs))
    return desk.offer_view(offer_id)


@router.post("/requests/{request_id}/award", response_model=AwardReportPublic, responses=SIGNED)
async def award(desk: FlexDeskDep, request_id: RequestPath, raw: SignedByFacilitator) -> dict[str, Any]:
    """Awards by the published rule and commits the award (the facilitator's signed request)."""
    parse_body(Empty, raw)
    await mined(desk.award(request_id))
    return desk.award_report(request_id)


@router.get("/requests/{request_id}/award", response_model=AwardReportPublic)
async def award_report(desk: FlexDeskDep, request_id: RequestPath) -> dict[str, Any]:
    return desk.award_report(request_id)


@router.post("/requests/{request_id}/settlement", response_model=FlexRequestPublic, responses=SIGNED)
async def settle_flex(desk: FlexDeskDep, request_id: RequestPath, raw: SignedByFacilitator) -> dict[str, Any]:
    """Pays providers by the performance rule and refunds the DSO (the facilitator's signed request)."""
    parse_body(Empty, raw)
    await mined(desk.settle(request_id))
    return desk.request_view(request_id)


@router.get("/offers/{offer_id}", response_model=FlexOfferPublic)
async def flex_offer(desk: FlexDeskDep, offer_id: OfferPath) -> dict[str, Any]:
    return desk.offer_view(offer_id.lower())


@router.post(
    "/offers/{offer_id}/activations",
    response_model=FlexOfferPublic,
    responses=SIGNED,
    openapi_extra=json_body(ActivationCreate),
)
async def activate(desk: FlexDeskDep, offer_id: OfferPath, raw: SignedByDso) -> dict[str, Any]:
    """Activates an awarded offer for a slot (the DSO's signed request)."""
    body = parse_body(ActivationCreate, raw)
    await mined(desk.activate(offer_id.lower(), body.slot, body.power_w, by="dso"))
    return desk.offer_view(offer_id.lower())


@router.post(
    "/offers/{offer_id}/measurements",
    response_model=FlexOfferPublic,
    responses=SIGNED,
    openapi_extra=json_body(MeasurementCreate),
)
async def measure(desk: FlexDeskDep, offer_id: OfferPath, raw: SignedByMeterOperator) -> dict[str, Any]:
    """Records a slot's baseline and actual energy (the meter operator's signed request)."""
    body = parse_body(MeasurementCreate, raw)
    await mined(desk.measure(offer_id.lower(), body.slot, body.baseline_wh, body.actual_wh))
    return desk.offer_view(offer_id.lower())

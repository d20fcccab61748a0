"""A cleared slot's power flow per element: what the dashboard's network view colours the grid with
(``service.flows`` re-runs it from public facts; the answer is cached per slot)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Request
from pydantic import Field

from gridledger.api.deps import FacilitatorDep, mined
from gridledger.api.errors import refusals
from gridledger.api.schemas import Public, SlotStart
from gridledger.service.flows import FlowCache, slot_flows

router = APIRouter(tags=["overview"], responses=refusals(413, 503))


class BranchFlow(Public):
    index: int = Field(description="the line's or transformer's index in the published model")
    name: str
    loading_percent: float = Field(description="loading in % of its rating (pandapower's loading_percent)")


class BusVoltage(Public):
    index: int = Field(description="the bus's index in the published model")
    name: str
    vm_pu: float = Field(description="voltage magnitude in per unit of the bus's nominal voltage")


class SlotFlowsPublic(Public):
    delivery_start: int
    network_model: str
    model_version: str
    report_hash: str = Field(description="the stored report's keccak-256, equal to the one on-chain")
    engine: str = Field(description="the power flow that solved the slot (pandapower's AC Newton-Raphson)")
    limits: dict[str, float]
    matches_report: bool = Field(
        description="whether the re-run's worst loadings and voltages are the ones the report committed"
    )
    lines: list[BranchFlow]
    trafos: list[BranchFlow]
    buses: list[BusVoltage]
    curtailments: list[dict[str, Any]] = Field(description="each curtailed fill with its reasons, as in the report")
    activations: dict[str, int] = Field(description="flexibility the clearing activated: Wh per offer id")


def _cache(app: FastAPI) -> FlowCache:
    cache: FlowCache | None = getattr(app.state, "slot_flows", None)
    if cache is None:
        cache = app.state.slot_flows = FlowCache()
    return cache


@router.get("/network/slots/{delivery_start}/flows", response_model=SlotFlowsPublic, responses=refusals(404, 409, 422))
async def flows(
    service: FacilitatorDep, request: Request, delivery_start: Annotated[SlotStart, Path()]
) -> dict[str, Any]:
    """Every line's and transformer's loading and every bus's voltage in a cleared slot: its power flow
    re-run from the published model, the slot's baseline, the orders on the chain and the curtailments
    and activations of the report whose hash is on-chain (409 if that hash or the model does not match)."""
    ctx = service.ctx
    ctx.slot_row(delivery_start)  # 404 for a slot that is unknown or not cleared
    cache = _cache(request.app)
    cached = cache.get(delivery_start)
    if cached is not None:
        return cached
    # On the chain thread: it reads the chain's logs, and it owns the model's AC power-flow net.
    result = await mined(ctx.worker.call(lambda: slot_flows(ctx.ledger, ctx.model, ctx.worker_reports, delivery_start)))
    cache.put(delivery_start, result)
    return result

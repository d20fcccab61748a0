"""The market clock: where the calendar stands (what the dashboard shows as the clock and next gate)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter

from gridledger.api.deps import FacilitatorDep
from gridledger.api.errors import refusals
from gridledger.api.schemas import ClockPublic

router = APIRouter(tags=["clock"], responses=refusals(413, 503))


@router.get("/clock", response_model=ClockPublic)
def clock(service: FacilitatorDep) -> dict[str, Any]:
    """The market's time, the current slot, the next gate closure, the last cleared and settled
    slots, and the readings a delivered slot still waits for. (A plain ``def``: reading the
    chain's time waits on the chain thread, so FastAPI runs it in its thread pool.)"""
    state = service.clock.state()
    data = asdict(state)
    data["gate_closure_seconds"] = service.ctx.gate_closure_s
    data["missing_readings"] = [m | {"late": state.now > m["due"]} for m in data["missing_readings"]]
    return data

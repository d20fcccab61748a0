"""The service itself: health and version (with the EIP-712 domains wallets sign with)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from gridledger.api.deps import FacilitatorDep
from gridledger.api.errors import refusals
from gridledger.api.schemas import HealthPublic, VersionPublic

router = APIRouter(tags=["service"], responses=refusals(413, 503))


@router.get("/health", response_model=HealthPublic)
async def health(service: FacilitatorDep) -> dict[str, Any]:
    """The chain, the index and the relay queue as the service sees them."""
    return service.queries.health()


@router.get("/version", response_model=VersionPublic)
async def version(service: FacilitatorDep) -> dict[str, Any]:
    """Versions, contract addresses and the EIP-712 domains orders and offers are signed with."""
    return service.queries.version()

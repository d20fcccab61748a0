"""The facilitator's HTTP API: a router per resource (``routes/``) over ``service.facilitator.Facilitator``.

Anyone may read. Orders, cancellations and flexibility offers carry the signer's EIP-712
signature in the body; registration, clearing, settlement and the flexibility desk's writes need
the facilitator's or the DSO's signed request headers, meter readings and measurements the meter
operator's (see ``deps.py`` and ``wallet/requests.py``). Every refusal answers ``ErrorBody``
(``errors.py``); a body above ``GRIDLEDGER_MAX_BODY_BYTES`` is refused before it is parsed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import requests
from fastapi import APIRouter, Depends, FastAPI
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from gridledger import __version__
from gridledger.api import errors as api_errors
from gridledger.api.deps import SignedByDso
from gridledger.api.limits import BodySizeLimit
from gridledger.api.openapi import document
from gridledger.api.routes import ROUTERS
from gridledger.dashboard import mount_dashboard
from gridledger.errors import GridLedgerError
from gridledger.service.facilitator import Facilitator


def create_app(service: Facilitator, *, manage_worker: bool = True, uftp_config: str | None = None) -> FastAPI:
    """The API over ``service``; with ``manage_worker`` the app starts and stops its chain thread;
    with ``uftp_config`` (a UFTP register, ``uftp/registry.py``) it also speaks UFTP to aggregators."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if manage_worker:
            await asyncio.to_thread(service.start)
        try:
            yield
        finally:
            if manage_worker:
                await asyncio.to_thread(service.stop)

    app = FastAPI(
        title="GridLedger facilitator API",
        version=__version__,
        description="Signed P2P energy orders relayed to the ledger, cleared, checked against the network and settled.",
        lifespan=lifespan,
    )
    app.state.service = service  # what ``deps.get_facilitator`` hands the routes
    for router in ROUTERS:
        app.include_router(router)
    if uftp_config is not None:
        app.include_router(uftp_router(service, uftp_config))
    app.add_exception_handler(GridLedgerError, api_errors.gridledger_error)
    app.add_exception_handler(RequestValidationError, api_errors.invalid_request)
    app.add_exception_handler(ValidationError, api_errors.invalid_request)
    app.add_exception_handler(StarletteHTTPException, api_errors.http_error)
    app.add_exception_handler(requests.exceptions.ConnectionError, api_errors.chain_unreachable)
    app.add_exception_handler(requests.exceptions.Timeout, api_errors.chain_unreachable)
    mount_dashboard(app)  # last: the API's routes match first, the page's files take what is left
    app.add_middleware(BodySizeLimit, max_body_bytes=service.ctx.settings.max_body_bytes)

    def openapi() -> dict[str, Any]:
        return document(app)

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def uftp_router(service: Facilitator, config: str) -> APIRouter:
    """The UFTP endpoint over the service's deployment: ledger writes on its chain thread, messages
    kept in its SQLite file, operator routes behind the DSO's signed request."""
    # Imported here: shapeshifter-uftp takes seconds to import, and only a UFTP-enabled node needs it.
    from gridledger.uftp.cro import CommonReference
    from gridledger.uftp.gateway import UftpGateway
    from gridledger.uftp.registry import UftpRegistry
    from gridledger.uftp.router import make_router
    from gridledger.uftp.store import MessageStore

    def dso(raw: SignedByDso) -> None:
        del raw  # the dependency checks the DSO's signature; the routes take no body

    ctx = service.ctx
    registry = UftpRegistry.load(config)
    store = MessageStore(ctx.settings.database)
    cro = None
    if registry.cro is not None:  # congestion points' connections from the published model's feeders
        cro = CommonReference(
            ctx.ledger, registry, store, area=lambda bus: ctx.batch_engine().feeder_of(bus), on_chain=ctx.on_chain
        )
    gateway = UftpGateway(ctx.ledger, registry, store, on_chain=ctx.on_chain, cro=cro)
    return make_router(gateway, operator=[Depends(dso)])

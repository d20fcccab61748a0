"""The facilitator's HTTP API: thin routes over ``service.facilitator.Facilitator``.

Anyone may read. Orders and cancellations carry the prosumer's EIP-712 signature in the body;
registration, clearing and settlement need the facilitator's signed request headers, meter
readings the meter operator's (see ``service/auth.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import Future
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypeVar

import requests
from fastapi import FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from gridledger import __version__
from gridledger.api import errors as api_errors
from gridledger.api.schemas import (
    ActivationBody,
    Address,
    CancellationBody,
    FlexOfferBody,
    FlexRequestBody,
    MeasurementBody,
    MeterReadingsBody,
    OfferId,
    OrderBody,
    OrderHash,
    RegistrationBody,
    SlotStart,
)
from gridledger.errors import GridLedgerError
from gridledger.flex.products import BaselineMethod, Direction, FlexOffer, FlexRequest, ServiceType
from gridledger.market.orders import Order, Side
from gridledger.service.facilitator import Facilitator
from gridledger.service.orders import OrderIn
from gridledger.wallet.signing import split_signature

M = TypeVar("M", bound=BaseModel)


def create_app(service: Facilitator, *, manage_worker: bool = True) -> FastAPI:
    """The API over ``service``; with ``manage_worker`` the app starts and stops its chain thread."""

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
    app.add_exception_handler(GridLedgerError, api_errors.gridledger_error)
    app.add_exception_handler(RequestValidationError, api_errors.invalid_request)
    app.add_exception_handler(ValidationError, api_errors.invalid_request)
    app.add_exception_handler(requests.exceptions.ConnectionError, api_errors.chain_unreachable)
    app.add_exception_handler(requests.exceptions.Timeout, api_errors.chain_unreachable)

    async def signed_body(request: Request, model: type[M], role: str) -> M:
        """Authorises the request as ``role`` (401/403/409), then parses its body (422)."""
        body = await request.body()
        service.operations.authorise(request.headers, request.method, request.url.path, body, role=role)
        return model.model_validate_json(body or b"{}")

    async def done(future: Future[Any]) -> None:
        await asyncio.wrap_future(future)

    # ─────────────── service ───────────────

    @app.get("/health", tags=["service"])
    async def health() -> dict[str, Any]:
        return service.queries.health()

    @app.get("/version", tags=["service"])
    async def version() -> dict[str, Any]:
        return service.queries.version()

    # ─────────────── participants ───────────────

    @app.post("/participants", status_code=201, tags=["participants"])
    async def register(request: Request) -> dict[str, Any]:
        """Registers a participant (facilitator's signed request)."""
        body = await signed_body(request, RegistrationBody, "facilitator")
        account = _checksum(body.account)
        await done(
            service.operations.register(account, meter_id=body.meter_id, bus=body.bus, capacity_w=body.capacity_w)
        )
        return service.queries.participant(account)

    @app.get("/participants/{account}", tags=["participants"])
    async def participant(account: Annotated[Address, Path()]) -> dict[str, Any]:
        return service.queries.participant(_checksum(account))

    @app.get("/participants/{account}/orders", tags=["participants"])
    async def participant_orders(account: Annotated[Address, Path()]) -> list[dict[str, Any]]:
        return service.queries.orders_of(_checksum(account))

    @app.get("/participants/{account}/trades", tags=["participants"])
    async def participant_trades(account: Annotated[Address, Path()]) -> list[dict[str, Any]]:
        return service.queries.trades_of(_checksum(account))

    # ─────────────── orders ───────────────

    @app.post("/orders", status_code=202, tags=["orders"])
    async def submit_order(body: OrderBody) -> dict[str, Any]:
        """Accepts a prosumer-signed order: stored before this answers, relayed in the next batch."""
        r, vs = split_signature(bytes.fromhex(body.signature[2:]))
        order = Order(
            prosumer=body.prosumer,
            side=Side.BUY if body.side == "buy" else Side.SELL,
            delivery_start=body.delivery_start,
            energy_wh=body.energy_wh,
            price_per_kwh=body.price_per_kwh,
            nonce=body.nonce,
            expiry=body.expiry,
        )
        return service.orders.accept_order(OrderIn(order, r, vs))

    @app.get("/orders/{order_hash}", tags=["orders"])
    async def order_status(order_hash: Annotated[OrderHash, Path()]) -> dict[str, Any]:
        return service.queries.order_status(order_hash.lower())

    @app.post("/orders/{order_hash}/cancellation", status_code=202, tags=["orders"])
    async def cancel_order(order_hash: Annotated[OrderHash, Path()], body: CancellationBody) -> dict[str, Any]:
        """Accepts the prosumer's EIP-712 signature of Cancellation(orderHash); relayed to the ledger."""
        r, vs = split_signature(bytes.fromhex(body.signature[2:]))
        return service.orders.accept_cancellation(order_hash.lower(), r, vs)

    # ─────────────── market ───────────────

    @app.get("/slots/{delivery_start}/book", tags=["market"])
    async def book(delivery_start: Annotated[SlotStart, Path()]) -> dict[str, Any]:
        """Open orders on the ledger by price level, with cumulative depth."""
        return service.queries.book(delivery_start)

    @app.post("/slots/{delivery_start}/clearing", tags=["market"])
    async def clear(delivery_start: Annotated[SlotStart, Path()], request: Request) -> dict[str, Any]:
        """Clears the slot, checks it against the network and commits it (facilitator's signed request)."""
        await signed_body(request, _Empty, "facilitator")
        await done(service.operations.clear_slot(delivery_start))
        return service.queries.clearing(delivery_start)

    @app.get("/slots/{delivery_start}/clearing", tags=["market"])
    async def clearing(delivery_start: Annotated[SlotStart, Path()]) -> dict[str, Any]:
        return service.queries.clearing(delivery_start)

    @app.get("/slots/{delivery_start}/trades", tags=["market"])
    async def trades(delivery_start: Annotated[SlotStart, Path()]) -> list[dict[str, Any]]:
        service.queries.clearing(delivery_start)  # 404 for a slot that is unknown or not cleared
        return service.queries.trades(delivery_start)

    @app.get("/slots/{delivery_start}/network-report", tags=["market"])
    async def network_report(delivery_start: Annotated[SlotStart, Path()]) -> dict[str, Any]:
        """The slot's full network validation report; its keccak-256 is on-chain."""
        return service.queries.network_report(delivery_start)

    # ─────────────── settlement ───────────────

    @app.post("/slots/{delivery_start}/meter-readings", tags=["settlement"])
    async def meter_readings(delivery_start: Annotated[SlotStart, Path()], request: Request) -> dict[str, Any]:
        """Posts the slot's net metered energy per account (meter operator's signed request)."""
        body = await signed_body(request, MeterReadingsBody, "meter operator")
        readings = {_checksum(r.account): r.net_wh for r in body.readings}
        await done(service.operations.post_meter_readings(delivery_start, readings))
        return {"delivery_start": delivery_start, "posted": len(readings)}

    @app.post("/slots/{delivery_start}/settlement", tags=["settlement"])
    async def settle(delivery_start: Annotated[SlotStart, Path()], request: Request) -> dict[str, Any]:
        """Settles a cleared and metered slot (facilitator's signed request)."""
        await signed_body(request, _Empty, "facilitator")
        await done(service.operations.settle_slot(delivery_start))
        return service.queries.settlement(delivery_start)

    @app.get("/slots/{delivery_start}/settlement", tags=["settlement"])
    async def settlement(delivery_start: Annotated[SlotStart, Path()]) -> dict[str, Any]:
        return service.queries.settlement(delivery_start)

    # ─────────────── flexibility ───────────────

    desk = service.flex

    @app.post("/flex/requests", status_code=201, tags=["flexibility"])
    async def post_flex_request(request: Request) -> dict[str, Any]:
        """The DSO's request (DSO's signed request); its maximum spend is escrowed on-chain."""
        body = await signed_body(request, FlexRequestBody, "DSO")
        flex_request = FlexRequest(
            ServiceType[body.service.upper()],
            Direction[body.direction.upper()],
            BaselineMethod[body.baseline.upper()],
            body.congestion_bus,
            body.power_w,
            body.window_start,
            body.window_slots,
            body.bid_deadline,
            body.max_availability_price_per_kwh,
            body.max_utilisation_price_per_kwh,
            body.min_performance_bps,
        )
        request_id = await asyncio.wrap_future(desk.post_request(flex_request))
        return desk.request_view(request_id)

    @app.get("/flex/requests/{request_id}", tags=["flexibility"])
    async def flex_request(request_id: int) -> dict[str, Any]:
        return desk.request_view(request_id)

    @app.post("/flex/requests/{request_id}/offers", status_code=201, tags=["flexibility"])
    async def submit_offer(request_id: int, body: FlexOfferBody) -> dict[str, Any]:
        """A provider's offer, authorised by its EIP-712 signature in the body."""
        r, vs = split_signature(bytes.fromhex(body.signature[2:]))
        offer = FlexOffer(
            body.provider,
            request_id,
            body.window_start,
            body.power_w,
            body.availability_price_per_kwh,
            body.utilisation_price_per_kwh,
            body.bus,
            body.nonce,
        )
        offer_id = await asyncio.wrap_future(desk.submit_offer(offer, r, vs))
        return desk.offer_view(offer_id)

    @app.post("/flex/requests/{request_id}/award", tags=["flexibility"])
    async def award(request_id: int, request: Request) -> dict[str, Any]:
        """Awards by the published rule and commits the award (facilitator's signed request)."""
        await signed_body(request, _Empty, "facilitator")
        await done(desk.award(request_id))
        return desk.award_report(request_id)

    @app.get("/flex/requests/{request_id}/award", tags=["flexibility"])
    async def award_report(request_id: int) -> dict[str, Any]:
        return desk.award_report(request_id)

    @app.post("/flex/requests/{request_id}/settlement", tags=["flexibility"])
    async def settle_flex(request_id: int, request: Request) -> dict[str, Any]:
        """Pays providers by the performance rule and refunds the DSO (facilitator's signed request)."""
        await signed_body(request, _Empty, "facilitator")
        await done(desk.settle(request_id))
        return desk.request_view(request_id)

    @app.get("/flex/offers/{offer_id}", tags=["flexibility"])
    async def flex_offer(offer_id: Annotated[OfferId, Path()]) -> dict[str, Any]:
        return desk.offer_view(offer_id.lower())

    @app.post("/flex/offers/{offer_id}/activations", tags=["flexibility"])
    async def activate(offer_id: Annotated[OfferId, Path()], request: Request) -> dict[str, Any]:
        """Activates an awarded offer for a slot (the DSO's signed request)."""
        body = await signed_body(request, ActivationBody, "DSO")
        await done(desk.activate(offer_id.lower(), body.slot, body.power_w, by="dso"))
        return desk.offer_view(offer_id.lower())

    @app.post("/flex/offers/{offer_id}/measurements", tags=["flexibility"])
    async def measure(offer_id: Annotated[OfferId, Path()], request: Request) -> dict[str, Any]:
        """Records a slot's baseline and actual energy (the meter operator's signed request)."""
        body = await signed_body(request, MeasurementBody, "meter operator")
        await done(desk.measure(offer_id.lower(), body.slot, body.baseline_wh, body.actual_wh))
        return desk.offer_view(offer_id.lower())

    return app


class _Empty(BaseModel):
    model_config = {"extra": "forbid"}


def _checksum(address: str) -> str:
    from eth_utils.address import to_checksum_address

    return str(to_checksum_address(address))

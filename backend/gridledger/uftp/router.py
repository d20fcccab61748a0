"""UFTP over HTTP: the DSO's message endpoint and the public message archive.

``POST /shapeshifter/api/v3/message`` takes a SignedMessage as ``text/xml`` (the path and
behaviour of USEF's own service): a message that cannot be read answers 400, one not sealed by its
sender's registered key 401; a verified message answers 200 at once and is then processed, its
response message (Accepted, or Rejected with UFTP's reason) sent to the aggregator's endpoint.
``GET /uftp/messages/{hash}`` serves a kept message by the keccak-256 the ledger records;
``GET /uftp/terms`` the DSO's public terms (domain, verify key, time zone, currency, EAN → bus,
and the CRO's domain, verify key and path). With a CRO (``uftp/cro.py``),
``POST /cro/shapeshifter/api/v3/message`` takes the aggregators' portfolio messages, refused and
answered the same way, and ``POST /cro/mandates`` the participants' signed mandates to them.
The DSO's operator routes (``POST /uftp/requests/{id}/announce|orders|settlement``) send the
FlexRequests, FlexOrders and FlexSettlement of an on-chain request; ``operator`` guards them
(``gridledger serve`` passes the DSO's signed-request check).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import date
from typing import Annotated, Any

from eth_utils.address import to_checksum_address
from fastapi import APIRouter, BackgroundTasks, Path, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field, field_validator, model_validator

from gridledger.errors import NotFoundError
from gridledger.uftp.codec import UftpTransportError
from gridledger.uftp.cro import CRO_MESSAGE_PATH, CommonReference
from gridledger.uftp.gateway import UftpGateway
from gridledger.wallet.mandates import UINT64_MAX, Mandate

MESSAGE_PATH = "/shapeshifter/api/v3/message"
MANDATES_PATH = "/cro/mandates"
HashPath = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{64}$", description="keccak-256 of the sealed message, 0x hex")]


def make_router(gateway: UftpGateway, *, operator: Sequence[Any] = ()) -> APIRouter:
    router = APIRouter(tags=["uftp"])

    @router.post(MESSAGE_PATH, response_class=Response, responses={400: {}, 401: {}})
    async def receive(request: Request, tasks: BackgroundTasks) -> Response:
        """A UFTP SignedMessage from an aggregator to the DSO (text/xml)."""
        return _accept(gateway.receive, await request.body(), tasks)

    cro = gateway.cro
    if cro is not None:

        @router.post(CRO_MESSAGE_PATH, response_class=Response, responses={400: {}, 401: {}})
        async def receive_cro(request: Request, tasks: BackgroundTasks) -> Response:
            """A UFTP SignedMessage from an aggregator to the CRO: AGRPortfolioUpdate, AGRPortfolioQuery (text/xml)."""
            return _accept(cro.receive, await request.body(), tasks)

        @router.post(MANDATES_PATH, status_code=201, responses={401: {}, 404: {}, 409: {}})
        async def mandate(body: MandateBody) -> dict[str, Any]:
            """A participant's signed consent that an aggregator may represent its connection (EIP-712
            ``Mandate``, signed with the key registered with the meter); the newest nonce is in force."""
            signed = body.mandate()
            account = await run_in_threadpool(lambda: cro.on_chain(lambda: cro.record_mandate(signed, body.signature)))
            return {"account": account, **body.model_dump(mode="json")}

        @router.get(MANDATES_PATH + "/{account}")
        def mandates(account: Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{40}$")]) -> list[dict[str, Any]]:
            """The participant's mandates in force, one per aggregator, with their signatures: what anyone
            can check against the participant register (a new one needs a higher nonce)."""
            return cro.mandates_of(to_checksum_address(account))

    @router.get("/uftp/messages/{message_hash}", response_class=Response)
    def message(message_hash: HashPath) -> Response:
        """The sealed UFTP message (Ed25519 signature + XML) whose keccak-256 is ``message_hash``."""
        row = gateway.store.message(message_hash)
        if row is None or row["direction"] != "in":
            raise NotFoundError(f"no signed UFTP message {message_hash} was received here")
        return Response(
            bytes(row["body"]),
            media_type="application/octet-stream",
            headers={"X-UFTP-Sender": row["sender_domain"], "X-UFTP-Type": row["type"]},
        )

    @router.get("/uftp/terms")
    def terms() -> dict[str, Any]:
        """The DSO's public UFTP terms: what an aggregator and an auditor need (no secret)."""
        dso = gateway.registry.dso
        return {
            "dso_domain": dso.domain,
            "dso_public_key": dso.public_key,
            "time_zone": dso.time_zone,
            "currency": dso.currency,
            "congestion_points": gateway.registry.congestion_points,
            "message_path": MESSAGE_PATH,
            **(_cro_terms(cro) if cro is not None else {}),
        }

    @router.post("/uftp/requests/{request_id}/announce", dependencies=list(operator))
    async def announce(request_id: Annotated[int, Path(ge=1)]) -> dict[str, Any]:
        """Sends the on-chain request as a FlexRequest to each aggregator of its congestion point."""
        return {"request_id": request_id, **asdict(await run_in_threadpool(gateway.announce, request_id))}

    @router.post("/uftp/requests/{request_id}/orders", dependencies=list(operator))
    async def orders(request_id: Annotated[int, Path(ge=1)]) -> dict[str, Any]:
        """After the award: activates the awarded UFTP offers and sends their FlexOrders."""
        return {"request_id": request_id, **asdict(await run_in_threadpool(gateway.order, request_id))}

    @router.post("/uftp/requests/{request_id}/settlement", dependencies=list(operator))
    async def settlement(request_id: Annotated[int, Path(ge=1)]) -> dict[str, Any]:
        """After the on-chain settlement: sends each aggregator its FlexSettlement."""
        return {"request_id": request_id, **asdict(await run_in_threadpool(gateway.settle, request_id))}

    return router


class MandateBody(BaseModel):
    aggregator: str = Field(min_length=1, max_length=253, description="the aggregator's UFTP domain")
    meter_id: int = Field(ge=1, le=UINT64_MAX, description="the participant's meter in the register")
    valid_from: date = Field(description="first day, YYYY-MM-DD (the grid's time zone)")
    valid_until: date | None = Field(default=None, description="last day, YYYY-MM-DD; null: open end")
    nonce: int = Field(ge=0, le=UINT64_MAX, description="above the nonce of the mandate it replaces")
    signature: str = Field(pattern=r"^0x[0-9a-fA-F]{130}$", description="EIP-712 signature, 65 bytes")

    @field_validator("valid_from", "valid_until", mode="before")
    @classmethod
    def _as_signed(cls, value: Any) -> Any:
        # A day as signed, YYYY-MM-DD: not a date-time or a timestamp pydantic would convert.
        if value is not None and not (isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)):
            raise ValueError(f"a day as signed, YYYY-MM-DD, not {value!r}")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> MandateBody:
        if self.valid_until is not None and self.valid_until < self.valid_from:
            raise ValueError(f"valid_until ({self.valid_until}) is before valid_from ({self.valid_from})")
        return self

    def mandate(self) -> Mandate:
        return Mandate(self.aggregator, self.meter_id, self.valid_from, self.valid_until, self.nonce)


def _cro_terms(cro: CommonReference) -> dict[str, str]:
    return {
        "cro_domain": cro.cro.domain,
        "cro_public_key": cro.cro.public_key,
        "cro_message_path": CRO_MESSAGE_PATH,
        "cro_mandates_path": MANDATES_PATH,
    }


def _accept(receive: Callable[[bytes], Callable[[], None]], body: bytes, tasks: BackgroundTasks) -> Response:
    """HTTP 200 and the message's processing after it, or the transport refusal (nothing kept)."""
    try:
        job = receive(body)
    except UftpTransportError as exc:
        return Response(str(exc), status_code=exc.status, media_type="text/plain")
    tasks.add_task(job)
    return Response(status_code=200)

"""UFTP over HTTP: the DSO's message endpoint and the public message archive.

``POST /shapeshifter/api/v3/message`` takes a SignedMessage as ``text/xml`` (the path and
behaviour of USEF's own service): a message that cannot be read answers 400, one not sealed by its
sender's registered key 401; a verified message answers 200 at once and is then processed, its
response message (Accepted, or Rejected with UFTP's reason) sent to the aggregator's endpoint.
``GET /uftp/messages/{hash}`` serves a kept message by the keccak-256 the ledger records.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Path, Request, Response

from gridledger.errors import NotFoundError
from gridledger.uftp.codec import UftpTransportError
from gridledger.uftp.gateway import UftpGateway

MESSAGE_PATH = "/shapeshifter/api/v3/message"
HashPath = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{64}$", description="keccak-256 of the sealed message, 0x hex")]


def make_router(gateway: UftpGateway) -> APIRouter:
    router = APIRouter(tags=["uftp"])

    @router.post(MESSAGE_PATH, response_class=Response, responses={400: {}, 401: {}})
    async def receive(request: Request, tasks: BackgroundTasks) -> Response:
        """A UFTP SignedMessage from an aggregator (text/xml)."""
        body = await request.body()
        try:
            job = gateway.receive(body)
        except UftpTransportError as exc:
            return Response(str(exc), status_code=exc.status, media_type="text/plain")
        tasks.add_task(job)
        return Response(status_code=200)

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

    return router

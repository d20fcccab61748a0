"""The facilitator's UFTP desk: the DSO side of UFTP over GridLedger's flexibility market.

Incoming (aggregator → DSO), verified by ``codec.open_signed`` and kept by ``store``:
FlexRequestResponse, FlexOffer (→ ``submitUftpOffer`` on-chain, with the message's hash),
FlexOfferRevocation (→ ``withdrawUftpOffer``, with its hash), FlexOrderResponse, Metering,
FlexSettlementResponse, TestMessage.
Outgoing (DSO → aggregator) through the library's ``ShapeshifterDsoAgrClient``: FlexRequest
(``announce``), FlexOfferResponse, FlexOrder (``order``), FlexSettlement (``settle``) and the
responses UFTP requires.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from uuid import uuid4

import requests
from eth_utils.crypto import keccak
from shapeshifter_uftp import ShapeshifterDsoAgrClient, transport
from shapeshifter_uftp.exceptions import ClientTransportException
from shapeshifter_uftp.uftp import (
    AcceptedRejected,
    FlexOffer,
    FlexOfferResponse,
    FlexOfferRevocation,
    FlexOfferRevocationResponse,
    FlexOrder,
    FlexOrderResponse,
    FlexRequestResponse,
    FlexSettlement,
    FlexSettlementResponse,
    Metering,
    MeteringResponse,
    PayloadMessage,
    TestMessage,
    TestMessageResponse,
)

from gridledger.chain.ledger import Ledger
from gridledger.encoding import to_hex
from gridledger.errors import LedgerError, NotFoundError
from gridledger.flex.products import FlexRequest as LedgerRequest
from gridledger.uftp import mapping
from gridledger.uftp.codec import Opened, UftpRejection, keep_incoming, run_here
from gridledger.uftp.cro import CommonReference
from gridledger.uftp.registry import Aggregator, UftpRegistry
from gridledger.uftp.store import MessageStore

T = TypeVar("T")
Job = Callable[[], None]

# Incoming messages that only acknowledge one of ours: kept, nothing to answer.
ACKNOWLEDGEMENTS = (FlexRequestResponse, FlexOrderResponse, FlexSettlementResponse)


@dataclass
class Delivery:
    """What an outgoing round reached: MessageIDs sent, and why each undelivered one failed."""

    sent: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # aggregator domain → what went wrong

    def attempt(self, gateway: UftpGateway, aggregator: Aggregator, message: PayloadMessage) -> bool:
        try:
            gateway.send(aggregator, message)
        except (ClientTransportException, requests.RequestException) as exc:
            self.failed[aggregator.domain] = f"{type(exc).__name__}: {exc}"
            return False
        self.sent.append(str(message.message_id))
        return True


class UftpGateway:
    """``on_chain`` runs a ledger write on the deployment's chain thread (``ServiceContext.on_chain``
    in ``gridledger serve``); ``send`` delivers an outgoing message (the library's client by default);
    ``cro``, when GridLedger is also the CRO, adds the aggregators whose portfolio has connections
    on a request's congestion point to those the register lists for it."""

    def __init__(
        self,
        ledger: Ledger,
        registry: UftpRegistry,
        store: MessageStore,
        *,
        on_chain: Callable[[Callable[[], Any]], Any] = run_here,
        send: Callable[[Aggregator, PayloadMessage], None] | None = None,
        cro: CommonReference | None = None,
    ) -> None:
        self.cro = cro
        self.ledger = ledger
        self.registry = registry
        self.store = store
        self.on_chain = on_chain
        self._send = send or self._send_with_library

    # ─────────────── incoming ───────────────

    def receive(self, body: bytes) -> Job:
        """Verifies and keeps one SignedMessage (raises ``UftpTransportError`` for an HTTP refusal)
        and returns the work to do after the HTTP 200: process it and send the response message."""
        incoming = keep_incoming(body, self.registry, self.store)
        opened, aggregator, fresh = incoming.opened, incoming.aggregator, incoming.fresh
        payload = opened.payload

        def job() -> None:
            try:
                incoming.check_envelope(self.registry.dso.domain, "the DSO")
                # Reads and writes of the ledger happen on the chain thread, in one piece.
                result = incoming.processed(lambda: self.on_chain(lambda: self._process(opened, aggregator)))
            except UftpRejection as exc:
                if fresh:  # a replay must not overwrite the result of the message it repeats
                    self.store.set_result(to_hex(opened.hash), exc.reason)
                self._reply(aggregator, payload, AcceptedRejected.REJECTED, exc.reason)
            else:
                self.store.set_result(to_hex(opened.hash), "Accepted")
                if result is not None:
                    self._reply(aggregator, payload, AcceptedRejected.ACCEPTED, None)

        return job

    def _process(self, opened: Opened, aggregator: Aggregator) -> bool | None:
        """Acts on a verified message; True when it needs an Accepted response, None when it is one."""
        payload = opened.payload
        if isinstance(payload, ACKNOWLEDGEMENTS):
            return None
        if isinstance(payload, FlexOffer):
            self._offer(opened, payload, aggregator)
            return True
        if isinstance(payload, FlexOfferRevocation):
            self._revoke(opened, payload, aggregator)
            return True
        if isinstance(payload, Metering | TestMessage):
            return True  # kept as sent; the ledger's measurements are the meter operator's
        raise UftpRejection(
            f"Invalid Message: '{type(payload).__name__}' is not a message a DSO takes from an AGR (portfolio "
            "messages go to the CRO's endpoint, GET /uftp/terms)"
        )

    def _offer(self, opened: Opened, offer: FlexOffer, aggregator: Aggregator) -> None:
        sent = self.store.rows(
            "select request_id from uftp_flex_requests where message_id = ? and agr_domain = ?",
            offer.flex_request_message_id,
            aggregator.domain,
        )
        if not sent:
            raise UftpRejection(
                f"Unknown Reference: FlexRequestMessageID {offer.flex_request_message_id!r} is not a FlexRequest sent "
                f"to {aggregator.domain}; GridLedger takes offers in reply to its FlexRequests only"
            )
        request_id = int(sent[0]["request_id"])
        request = self.ledger_request(request_id)
        ean = self.registry.congestion_point_of(request.congestion_bus)
        assert ean is not None  # the FlexRequest was sent for it
        bound = bytes(self.ledger.flex.functions.uftpKey(aggregator.provider).call())
        if bound != aggregator.public_key_bytes:
            raise UftpRejection(
                f"Unauthorized: provider {aggregator.provider} has not bound {aggregator.domain}'s UFTP key on the "
                "ledger (FlexibilityMarket.bindUftpKey), so no offer can be made for it"
            )
        bus = int(self.ledger.registry.functions.participant(aggregator.provider).call()[1])
        ledger_offer = mapping.offer_from_uftp(
            offer,
            request_id=request_id,
            request=request,
            ean=ean,
            tz=self.registry.dso.time_zone,
            currency=self.registry.dso.currency,
            provider=aggregator.provider,
            bus=bus,
            nonce=mapping.nonce_of(opened.hash),
        )

        try:
            call = self.ledger.flex.functions.submitUftpOffer(ledger_offer.as_abi(), opened.hash)
            self.ledger.tx.send(self.ledger.roles.facilitator, call, action=f"UFTP offer of {aggregator.domain}")
            offer_id = bytes(self.ledger.flex.functions.offerHash(ledger_offer.as_abi()).call())
        except LedgerError as exc:
            raise UftpRejection(f"Invalid Message: the ledger refused the offer: {exc}") from None
        self.store.execute(
            "insert into uftp_offers (offer_id, message_id, message_hash, agr_domain, request_id) "
            "values (?, ?, ?, ?, ?)",
            to_hex(offer_id),
            offer.message_id,
            to_hex(opened.hash),
            aggregator.domain,
            request_id,
        )

    def _revoke(self, opened: Opened, revocation: FlexOfferRevocation, aggregator: Aggregator) -> None:
        """Withdraws the on-chain offer a FlexOffer of this aggregator made (``withdrawUftpOffer``,
        with the revocation's hash): only while it is unawarded, up to the request's bid deadline."""
        rows = self.store.rows(
            "select offer_id from uftp_offers where message_id = ? and agr_domain = ?",
            revocation.flex_offer_message_id,
            aggregator.domain,
        )
        if not rows:
            raise UftpRejection(
                f"Unknown Reference: FlexOfferMessageID {revocation.flex_offer_message_id!r} is no FlexOffer of "
                f"{aggregator.domain} that the ledger recorded"
            )
        offer_id = bytes.fromhex(str(rows[0]["offer_id"])[2:])
        try:
            call = self.ledger.flex.functions.withdrawUftpOffer(offer_id, opened.hash)
            self.ledger.tx.send(self.ledger.roles.facilitator, call, action=f"UFTP revocation of {aggregator.domain}")
        except LedgerError as exc:
            raise UftpRejection(f"Invalid Message: the ledger refused the revocation: {exc}") from None

    def _reply(
        self, aggregator: Aggregator, message: PayloadMessage, result: AcceptedRejected, reason: str | None
    ) -> None:
        fields: dict[str, Any] = {
            "recipient_domain": aggregator.domain,
            "conversation_id": message.conversation_id,
            "result": result,
            "rejection_reason": reason,
        }
        if isinstance(message, FlexOffer):
            response: PayloadMessage = FlexOfferResponse(flex_offer_message_id=message.message_id, **fields)
        elif isinstance(message, FlexOfferRevocation):
            response = FlexOfferRevocationResponse(flex_offer_revocation_message_id=message.message_id, **fields)
        elif isinstance(message, Metering):
            response = MeteringResponse(metering_message_id=message.message_id, **fields)
        elif isinstance(message, TestMessage):
            response = TestMessageResponse(**fields)
        else:
            return  # an acknowledgement (or an unknown type) gets no response message
        # Delivered once, as the library's service does; if the aggregator is down it gets no
        # response, and the kept message records the result.
        Delivery().attempt(self, aggregator, response)

    # ─────────────── outgoing ───────────────

    def announce(self, request_id: int) -> Delivery:
        """Sends on-chain request ``request_id`` as a FlexRequest to every aggregator that serves its
        congestion point: listed for it in the register, or with connections on it in the CRO's
        portfolio for the request's Period."""
        request: LedgerRequest = self.on_chain(lambda: self.ledger_request(request_id))
        ean = self.registry.congestion_point_of(request.congestion_bus)
        if ean is None:
            raise NotFoundError(
                f"request {request_id}'s congestion bus {request.congestion_bus} is no congestion point of the UFTP "
                f"register (known: {self.registry.congestion_points})"
            )
        domains = {a.domain for a in self.registry.serving(ean)}
        if self.cro is not None:
            period, _ = mapping.window_isps(request, self.registry.dso.time_zone)
            domains.update(self.cro.aggregators_on(ean, period))
        delivery = Delivery()
        for aggregator in (a for a in self.registry.aggregators if a.domain in domains):
            message = mapping.flex_request(
                request_id, request, ean=ean, tz=self.registry.dso.time_zone, recipient=aggregator.domain
            )
            # Recorded before it is sent: the aggregator may answer with an offer before the send returns.
            message.message_id = str(uuid4())
            self.store.execute(
                "insert into uftp_flex_requests values (?, ?, ?)", message.message_id, request_id, aggregator.domain
            )
            if not delivery.attempt(self, aggregator, message):
                self.store.execute("delete from uftp_flex_requests where message_id = ?", message.message_id)
        return delivery

    def order(self, request_id: int) -> Delivery:
        """After the award: activates every awarded UFTP offer of ``request_id`` at its contracted
        power in each slot of the window (the DSO's order) and sends each aggregator its FlexOrder.
        An order that could not be delivered is sent again by the next call (its activations stand)."""
        orders: list[tuple[Aggregator, FlexOrder, str]] = self.on_chain(lambda: self._activate(request_id))
        delivery = Delivery()
        for aggregator, message, offer_id in orders:
            if delivery.attempt(self, aggregator, message):
                self.store.execute("update uftp_offers set ordered = 1 where offer_id = ?", offer_id)
        return delivery

    def _activate(self, request_id: int) -> list[tuple[Aggregator, FlexOrder, str]]:
        request = self.ledger_request(request_id)
        orders = []
        for row in self.store.rows("select * from uftp_offers where request_id = ? and ordered = 0", request_id):
            offer_id = bytes.fromhex(row["offer_id"][2:])
            state = self.ledger.flex.functions.offer(offer_id).call()
            if not state[4]:  # not awarded
                continue
            power_w, utilisation = int(state[2]), int(state[6])
            for slot in request.slots:
                if self.ledger.flex_delivery(offer_id, slot)["ordered_wh"] == 0:  # a retry skips what is done
                    self.ledger.activate_flex(offer_id, slot, power_w, by="dso")
            offer = self._incoming(row["message_hash"])
            assert isinstance(offer, FlexOffer)
            message = mapping.flex_order(
                offer=offer,
                offer_id=offer_id,
                request=request,
                utilisation_price_per_kwh=utilisation,
                power_w=power_w,
                tz=self.registry.dso.time_zone,
                currency=self.registry.dso.currency,
            )
            aggregator = self.registry.aggregator(row["agr_domain"])
            assert aggregator is not None
            orders.append((aggregator, message, str(row["offer_id"])))
        return orders

    def settle(self, request_id: int) -> Delivery:
        """After the on-chain settlement: a FlexSettlement to each aggregator with activated UFTP offers."""
        settlements: list[tuple[Aggregator, FlexSettlement]] = self.on_chain(lambda: self._settlements(request_id))
        delivery = Delivery()
        for aggregator, message in settlements:
            if delivery.attempt(self, aggregator, message):
                self.store.execute(
                    "update uftp_offers set settled = 1 where request_id = ? and agr_domain = ?",
                    request_id,
                    aggregator.domain,
                )
        return delivery

    def _settlements(self, request_id: int) -> list[tuple[Aggregator, FlexSettlement]]:
        request = self.ledger_request(request_id)
        ean = self.registry.congestion_point_of(request.congestion_bus)
        events = self.ledger.flex.events.OfferSettled().get_logs(
            from_block=self.ledger.deployment.block, argument_filters={"requestId": request_id}
        )
        paid = {
            bytes(e["args"]["offerId"]): int(e["args"]["availabilityPayment"]) + int(e["args"]["utilisationPayment"])
            for e in events
        }
        if self.ledger.flex_request_status(request_id) != "settled":
            raise NotFoundError(f"request {request_id} has not been settled on the ledger")
        by_agr: dict[str, list[dict[str, Any]]] = {}
        for row in self.store.rows("select * from uftp_offers where request_id = ?", request_id):
            offer_id = bytes.fromhex(row["offer_id"][2:])
            state = self.ledger.flex.functions.offer(offer_id).call()
            deliveries = {s: self.ledger.flex_delivery(offer_id, s) for s in request.slots}
            ordered_wh = sum(int(d["ordered_wh"]) for d in deliveries.values())
            if ordered_wh == 0:  # not awarded, or never activated: nothing to settle
                continue
            by_agr.setdefault(row["agr_domain"], []).append(
                {
                    "offer_id": offer_id,
                    "request_id": request_id,
                    "power_w": int(state[2]),
                    "request": request,
                    "ean": ean,
                    "deliveries": deliveries,
                    "paid": paid.get(offer_id, 0),
                    "ordered_price": ordered_wh * int(state[6]) // 1_000,
                }
            )
        settlements = []
        for domain, orders in by_agr.items():
            aggregator = self.registry.aggregator(domain)
            assert aggregator is not None
            tz, currency = self.registry.dso.time_zone, self.registry.dso.currency
            settlements.append(
                (aggregator, mapping.flex_settlement(recipient=domain, orders=orders, tz=tz, currency=currency))
            )
        return settlements

    def send(self, aggregator: Aggregator, message: PayloadMessage) -> None:
        """Delivers ``message`` and keeps it (as XML, keyed by its keccak-256)."""
        self._send(aggregator, message)
        xml = transport.to_xml(message).encode()
        self.store.add_message(
            hash_=to_hex(keccak(xml)),
            direction="out",
            sender=self.registry.dso.domain,
            recipient=aggregator.domain,
            type_=type(message).__name__,
            message_id=str(message.message_id),
            conversation_id=message.conversation_id,
            body=xml,
        )

    def _send_with_library(self, aggregator: Aggregator, message: PayloadMessage) -> None:
        client = ShapeshifterDsoAgrClient(
            sender_domain=self.registry.dso.domain,
            signing_key=self.registry.dso.signing_key,
            recipient_domain=aggregator.domain,
            recipient_endpoint=aggregator.endpoint,
            recipient_signing_key=aggregator.public_key,
        )
        client._send_message(message)  # the library's send: fills the header fields, seals, POSTs

    # ─────────────── reads ───────────────

    def ledger_request(self, request_id: int) -> LedgerRequest:
        r = self.ledger.flex.functions.request(request_id).call()
        if r[4] == 0:
            raise NotFoundError(f"there is no flexibility request {request_id}")
        return mapping.request_from_chain(r)

    def _incoming(self, hash_: str) -> PayloadMessage:
        row = self.store.message(hash_)
        if row is None:
            raise NotFoundError(f"no UFTP message {hash_}")
        payload = transport.from_xml(bytes(row["body"])[64:])
        assert isinstance(payload, PayloadMessage)
        return payload

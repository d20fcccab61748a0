"""GridLedger as the Common Reference Operator (CRO) of its grid: the common reference of
congestion points and of the connections aggregators represent on them (UFTP's portfolio
messages), so that an aggregator finds the congestion points it can offer on.

- A **congestion point** is the DSO's: an EAN of the register, standing for a bus of the
  published network model, the bus an on-chain request names as ``congestionBus``. Its
  **connections** are the buses the grid feeds through the same transformer as that bus
  (``area``: ``BatchEngine.feeder_of``, the LV grid under its MV/LV transformer).
- A **connection** is a registered participant: EntityAddress ``ean.`` + its on-chain meter id
  as 18 digits (``connection_ean``); it lies in the congestion points whose area holds its bus.
- AGRPortfolioUpdate: the aggregator announces the connections it represents from StartPeriod
  (to EndPeriod). Each is checked against the participant register on the ledger (the meter is
  registered), against the participant's own consent (a mandate it signed to this aggregator for
  the whole period: ``wallet/mandates.py``, posted to ``POST /cro/mandates``) and against the
  portfolio (no other aggregator represents it in an overlapping period); all are kept or, if one
  fails, none. A connection counts only on the days its participant's mandate in force covers.
- AGRPortfolioQuery: answered with an AGRPortfolioQueryResponse sealed with the CRO's key: for the
  Period, the congestion points holding the aggregator's connections, each with those
  connections, and its connections outside every congestion point.
- The DSO side (DSOPortfolioUpdate / DSOPortfolioQuery) is internal: the DSO is GridLedger, its
  congestion points are the register's, and ``aggregators_on`` is the query the DSO's desk asks
  before it sends a FlexRequest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import requests
from eth_utils.crypto import keccak
from shapeshifter_uftp import ShapeshifterCroAgrClient, transport
from shapeshifter_uftp.exceptions import ClientTransportException
from shapeshifter_uftp.uftp import (
    AcceptedRejected,
    AgrPortfolioQuery,
    AgrPortfolioQueryResponse,
    AgrPortfolioQueryResponseCongestionPoint,
    AgrPortfolioQueryResponseConnection,
    AgrPortfolioQueryResponseDSOPortfolio,
    AgrPortfolioQueryResponseDSOView,
    AgrPortfolioUpdate,
    AgrPortfolioUpdateResponse,
    PayloadMessage,
    RedispatchBy,
    TestMessage,
    TestMessageResponse,
)
from xsdata.models.datatype import XmlDate

from gridledger.chain.ledger import Ledger
from gridledger.encoding import to_hex
from gridledger.errors import ConfigurationError, ConflictError, NotFoundError, SignatureError
from gridledger.uftp.codec import Opened, UftpRejection, keep_incoming, run_here
from gridledger.uftp.mapping import to_date
from gridledger.uftp.registry import Aggregator, Cro, UftpRegistry
from gridledger.uftp.store import MessageStore
from gridledger.wallet.mandates import UINT64_MAX, Mandate, mandate_signer

CRO_MESSAGE_PATH = "/cro/shapeshifter/api/v3/message"
EAN_DIGITS = 18
Job = Callable[[], None]
Area = Callable[[int], frozenset[int]]  # a congestion point's bus → the buses of its connections


def connection_ean(meter_id: int) -> str:
    """The EntityAddress of the connection metered by ``meter_id``."""
    return f"ean.{meter_id:0{EAN_DIGITS}d}"


def meter_of(ean: str) -> int | None:
    """The meter id an ``ean.`` + digits EntityAddress stands for, if it can be one (uint64)."""
    digits = ean.removeprefix("ean.")
    if digits == ean or not digits.isdigit() or not digits.isascii():
        return None
    value = int(digits)
    return value if 1 <= value <= UINT64_MAX else None


@dataclass(frozen=True)
class Connection:
    ean: str
    account: str
    bus: int
    start: date
    end: date | None

    def valid_on(self, period: date) -> bool:
        return self.start <= period and (self.end is None or period <= self.end)


class CommonReference:
    """The CRO's desk. ``area`` maps a congestion point's bus to the buses of its connections;
    ``on_chain`` runs ledger reads on the deployment's chain thread, as the DSO's desk does."""

    def __init__(
        self,
        ledger: Ledger,
        registry: UftpRegistry,
        store: MessageStore,
        *,
        area: Area,
        on_chain: Callable[[Callable[[], Any]], Any] = run_here,
        send: Callable[[Aggregator, PayloadMessage], None] | None = None,
    ) -> None:
        if registry.cro is None:
            raise ConfigurationError("the UFTP register has no 'cro' (domain, signing_key): GridLedger is no CRO")
        self.cro: Cro = registry.cro
        self.ledger = ledger
        self.registry = registry
        self.store = store
        self.area = area
        self.on_chain = on_chain
        self._send = send or self._send_with_library

    # ─────────────── incoming ───────────────

    def receive(self, body: bytes) -> Job:
        """Verifies and keeps one SignedMessage for the CRO (raises ``UftpTransportError`` for an
        HTTP refusal: nothing is kept) and returns the work to do after the HTTP 200."""
        incoming = keep_incoming(body, self.registry, self.store)
        opened, aggregator, fresh = incoming.opened, incoming.aggregator, incoming.fresh
        payload = opened.payload

        def job() -> None:
            try:
                incoming.check_envelope(self.cro.domain, "the CRO")
                response = incoming.processed(lambda: self.on_chain(lambda: self._process(opened, aggregator)))
            except UftpRejection as exc:
                if fresh:  # a replay must not overwrite the result of the message it repeats
                    self.store.set_result(to_hex(opened.hash), exc.reason)
                response = _rejected(payload, exc.reason)
            else:
                self.store.set_result(to_hex(opened.hash), "Accepted")
            if response is not None:
                self.attempt(aggregator, response)

        return job

    def _process(self, opened: Opened, aggregator: Aggregator) -> PayloadMessage:
        payload = opened.payload
        if isinstance(payload, AgrPortfolioUpdate):
            self._update(opened, payload, aggregator)
            return AgrPortfolioUpdateResponse(
                agr_portfolio_update_message_id=payload.message_id,
                conversation_id=payload.conversation_id,
                result=AcceptedRejected.ACCEPTED,
            )
        if isinstance(payload, AgrPortfolioQuery):
            return self._answer(payload, aggregator)
        if isinstance(payload, TestMessage):
            return TestMessageResponse(conversation_id=payload.conversation_id)
        raise UftpRejection(
            f"Invalid Message: the CRO takes AGRPortfolioUpdate, AGRPortfolioQuery and TestMessage from an AGR, "
            f"not '{type(payload).__name__}' (send flexibility messages to the DSO's endpoint)"
        )

    def _check_time_zone(self, time_zone: str) -> None:
        if time_zone != self.registry.dso.time_zone:
            raise UftpRejection(
                f"TimeZone Rejected: the grid's TimeZone is {self.registry.dso.time_zone}, got {time_zone}"
            )

    def _update(self, opened: Opened, message: AgrPortfolioUpdate, aggregator: Aggregator) -> None:
        self._check_time_zone(message.time_zone)
        rows: list[tuple[str, tuple[Any, ...]]] = []
        seen: set[str] = set()
        for c in message.connections:
            ean, start = c.entity_address, to_date(c.start_period)
            end = to_date(c.end_period) if c.end_period is not None else None
            if ean in seen:
                raise UftpRejection(f"Invalid Message: connection {ean} is given twice")
            seen.add(ean)
            if end is not None and end < start:
                raise UftpRejection(f"Invalid Message: connection {ean} ends ({end}) before it starts ({start})")
            account, bus = self._registered(ean)
            mandate = self.mandate(account, aggregator.domain)
            if mandate is None or mandate.meter_id != meter_of(ean) or not mandate.covers(start, end):
                raise UftpRejection(
                    f"Invalid Connection: the participant of {ean} has not mandated {aggregator.domain} "
                    f"from {start} to {end or 'open end'} (its mandate: {_span(mandate)}); the participant signs one "
                    "with its meter's key and posts it to /cro/mandates"
                )
            for other in self.store.rows(
                "select * from uftp_portfolio where ean = ? and agr_domain != ?", ean, aggregator.domain
            ):
                # The other aggregator holds the connection only for the days its mandate in force
                # still covers: a participant that withdrew consent is free to mandate another.
                held = _held(_connection(other), self.mandate(str(other["account"]), str(other["agr_domain"])))
                if held is not None and _overlap(start, end, *held):
                    raise UftpRejection(
                        f"Invalid Connection: {ean} is represented by {other['agr_domain']} from {held[0]} to "
                        f"{held[1] or 'open end'}; a connection has one aggregator at a time"
                    )
            rows.append(
                (
                    "insert or replace into uftp_portfolio values (?, ?, ?, ?, ?, ?, ?)",
                    (
                        aggregator.domain,
                        ean,
                        account,
                        bus,
                        start.isoformat(),
                        end.isoformat() if end else None,
                        to_hex(opened.hash),
                    ),
                )
            )
        self.store.execute_many(rows)

    def _registered(self, ean: str) -> tuple[str, int]:
        """The account and bus of the participant whose meter ``ean`` names, read from the ledger."""
        meter = meter_of(ean)
        if meter is None:
            raise UftpRejection(
                f"Invalid Connection: {ean} is not a connection of this grid; a connection's EntityAddress is "
                f"ean. + its meter id in the participant register ({EAN_DIGITS} digits, e.g. {connection_ean(1000)})"
            )
        account = str(self.ledger.registry.functions.accountOfMeter(meter).call())
        if int(account, 16) == 0:
            raise UftpRejection(f"Invalid Connection: no participant is registered with meter {meter} ({ean})")
        bus = int(self.ledger.registry.functions.participant(account).call()[1])
        return account, bus

    def _answer(self, query: AgrPortfolioQuery, aggregator: Aggregator) -> AgrPortfolioQueryResponse:
        self._check_time_zone(query.time_zone)
        period = to_date(query.period)
        mine = self.connections(aggregator.domain, period)
        if not mine:
            raise UftpRejection(
                f"Invalid Message: {aggregator.domain} represents no connection on {period}; announce them with an "
                "AGRPortfolioUpdate first"
            )
        points = []
        placed: set[str] = set()
        for ean, bus in self.registry.congestion_points.items():
            area = self.area(bus)  # walks the feeder: once a congestion point, not once a connection
            inside = [c for c in mine if c.bus in area]
            placed.update(c.ean for c in inside)
            if inside:
                points.append(
                    AgrPortfolioQueryResponseCongestionPoint(
                        entity_address=ean,
                        # one on-chain offer per FlexOffer, and any of them may be awarded
                        mutex_offers_supported=False,
                        day_ahead_redispatch_by=RedispatchBy.DSO,
                        intraday_redispatch_by=RedispatchBy.DSO,
                        connections=[AgrPortfolioQueryResponseConnection(entity_address=c.ean) for c in inside],
                    )
                )
        if not points:
            raise UftpRejection(
                f"Invalid Message: none of {aggregator.domain}'s connections on {period} lies in a congestion point of "
                f"{self.registry.dso.domain}"
            )
        return AgrPortfolioQueryResponse(
            agr_portfolio_query_message_id=query.message_id,
            conversation_id=query.conversation_id,
            result=AcceptedRejected.ACCEPTED,
            time_zone=self.registry.dso.time_zone,
            period=XmlDate(period.year, period.month, period.day),
            dso_views=[
                AgrPortfolioQueryResponseDSOView(
                    dso_portfolios=[
                        AgrPortfolioQueryResponseDSOPortfolio(
                            dso_domain=self.registry.dso.domain, congestion_points=points
                        )
                    ],
                    connections=[
                        AgrPortfolioQueryResponseConnection(entity_address=c.ean) for c in mine if c.ean not in placed
                    ],
                )
            ],
        )

    # ─────────────── the common reference ───────────────

    def connections(self, domain: str, period: date) -> list[Connection]:
        """The connections ``domain`` represents on ``period`` under a mandate in force."""
        rows = self.store.rows("select * from uftp_portfolio where agr_domain = ? order by ean", domain)
        return [c for c in map(_connection, rows) if c.valid_on(period) and self._mandated(c, domain, period)]

    def _mandated(self, connection: Connection, domain: str, period: date) -> bool:
        mandate = self.mandate(connection.account, domain)
        return mandate is not None and mandate.meter_id == meter_of(connection.ean) and mandate.valid_on(period)

    # ─────────────── mandates ───────────────

    def mandate(self, account: str, domain: str) -> Mandate | None:
        """The mandate in force of participant ``account`` to aggregator ``domain``."""
        rows = self.store.rows("select * from uftp_mandates where account = ? and agr_domain = ?", account, domain)
        if not rows:
            return None
        r = rows[0]
        until = date.fromisoformat(r["valid_until"]) if r["valid_until"] else None
        return Mandate(domain, int(r["meter_id"]), date.fromisoformat(r["valid_from"]), until, int(r["nonce"]))

    def mandates_of(self, account: str) -> list[dict[str, Any]]:
        """The mandates in force of participant ``account``, as posted (signature included)."""
        rows = self.store.rows("select * from uftp_mandates where account = ? order by agr_domain", account)
        return [
            {
                "account": r["account"],
                "aggregator": r["agr_domain"],
                "meter_id": int(r["meter_id"]),
                "valid_from": r["valid_from"],
                "valid_until": r["valid_until"],
                "nonce": int(r["nonce"]),
                "signature": r["signature"],
            }
            for r in rows
        ]

    def record_mandate(self, mandate: Mandate, signature: str) -> str:
        """Keeps a participant's signed mandate (call it on the chain thread: it reads the
        participant register); returns the signer. Refused, and nothing kept: an aggregator
        this register does not know, a signature not by the meter's registered account, a nonce
        not above the one in force."""
        if all(a.domain != mandate.aggregator for a in self.registry.aggregators):
            raise NotFoundError(f"no aggregator {mandate.aggregator!r} is registered with this CRO")
        account = str(self.ledger.registry.functions.accountOfMeter(mandate.meter_id).call())
        if int(account, 16) == 0:
            raise NotFoundError(f"no participant is registered with meter {mandate.meter_id}")
        chain_id, registry_address = self.ledger.chain.chain_id, self.ledger.registry.address
        signer = mandate_signer(mandate, signature, chain_id=chain_id, registry_address=registry_address)
        if signer != account:
            raise SignatureError(
                f"the signature recovers to {signer or 'no valid key'}, but meter {mandate.meter_id} is registered to "
                f"{account}: sign with that account's key, over exactly the body's fields (dates as YYYY-MM-DD, "
                f'validUntil "" for an open end) in the domain "GridLedger CRO" of chain {chain_id} and the '
                f"registry {registry_address}"
            )
        current = self.mandate(account, mandate.aggregator)
        if current is not None and mandate.nonce <= current.nonce:
            raise ConflictError(
                f"nonce {mandate.nonce} is not above {current.nonce}, the nonce of the mandate in force: a new "
                "mandate replaces the old one with a higher nonce"
            )
        self.store.execute(
            "insert or replace into uftp_mandates values (?, ?, ?, ?, ?, ?, ?)",
            account,
            mandate.aggregator,
            mandate.meter_id,
            mandate.valid_from.isoformat(),
            mandate.valid_until.isoformat() if mandate.valid_until else None,
            mandate.nonce,
            signature,
        )
        return account

    def aggregators_on(self, ean: str, period: date) -> list[str]:
        """The DSO's portfolio query, asked internally: the aggregators with a connection in
        congestion point ``ean`` on ``period``."""
        bus = self.registry.congestion_points[ean]
        area = self.area(bus)
        domains = {
            str(r["agr_domain"])
            for r in self.store.rows("select * from uftp_portfolio")
            if int(r["bus"]) in area
            and _connection(r).valid_on(period)
            and self._mandated(_connection(r), str(r["agr_domain"]), period)
        }
        return sorted(domains)

    # ─────────────── outgoing ───────────────

    def attempt(self, aggregator: Aggregator, message: PayloadMessage) -> str | None:
        """Sends a response once, as the library's service does; what went wrong, if it did."""
        try:
            self._send(aggregator, message)
        except (ClientTransportException, requests.RequestException) as exc:
            return f"{type(exc).__name__}: {exc}"
        xml = transport.to_xml(message).encode()
        self.store.add_message(
            hash_=to_hex(keccak(xml)),
            direction="out",
            sender=self.cro.domain,
            recipient=aggregator.domain,
            type_=type(message).__name__,
            message_id=str(message.message_id),
            conversation_id=message.conversation_id,
            body=xml,
        )
        return None

    def _send_with_library(self, aggregator: Aggregator, message: PayloadMessage) -> None:
        client = ShapeshifterCroAgrClient(
            sender_domain=self.cro.domain,
            signing_key=self.cro.signing_key,
            recipient_domain=aggregator.domain,
            recipient_endpoint=aggregator.endpoint,
            recipient_signing_key=aggregator.public_key,
        )
        client._send_message(message)  # the library's send: fills the header fields, seals with the CRO key, POSTs


def _connection(row: dict[str, Any]) -> Connection:
    end = row["end_period"]
    return Connection(
        str(row["ean"]),
        str(row["account"]),
        int(row["bus"]),
        date.fromisoformat(row["start_period"]),
        date.fromisoformat(end) if end else None,
    )


def _held(connection: Connection, mandate: Mandate | None) -> tuple[date, date | None] | None:
    """The days of ``connection`` its mandate in force covers, None if none."""
    if mandate is None:
        return None
    start = max(connection.start, mandate.valid_from)
    ends = [e for e in (connection.end, mandate.valid_until) if e is not None]
    end = min(ends) if ends else None
    return None if end is not None and end < start else (start, end)


def _span(mandate: Mandate | None) -> str:
    if mandate is None:
        return "none"
    return f"meter {mandate.meter_id} from {mandate.valid_from} to {mandate.valid_until or 'open end'}"


def _overlap(a_start: date, a_end: date | None, b_start: date, b_end: date | None) -> bool:
    return (a_end is None or b_start <= a_end) and (b_end is None or a_start <= b_end)


def _rejected(message: PayloadMessage, reason: str) -> PayloadMessage | None:
    """The Rejected response to ``message``. An AGRPortfolioQueryResponse carries no DSO-View when
    Rejected (the specification); shapeshifter-uftp 2.4's class demands one, so it is built with
    one and the view removed before it is sealed."""
    fields: dict[str, Any] = {
        "conversation_id": message.conversation_id,
        "result": AcceptedRejected.REJECTED,
        "rejection_reason": reason,
    }
    if isinstance(message, AgrPortfolioUpdate):
        return AgrPortfolioUpdateResponse(agr_portfolio_update_message_id=message.message_id, **fields)
    if isinstance(message, AgrPortfolioQuery):
        period = to_date(message.period) if message.period else date.today()
        response = AgrPortfolioQueryResponse(
            agr_portfolio_query_message_id=message.message_id,
            time_zone=message.time_zone,
            period=XmlDate(period.year, period.month, period.day),
            dso_views=[_PLACEHOLDER_VIEW],
            **fields,
        )
        response.dso_views = []
        return response
    return None


_PLACEHOLDER_VIEW = AgrPortfolioQueryResponseDSOView(
    dso_portfolios=[
        AgrPortfolioQueryResponseDSOPortfolio(
            dso_domain="placeholder.invalid",
            congestion_points=[
                AgrPortfolioQueryResponseCongestionPoint(
                    entity_address=connection_ean(1),
                    mutex_offers_supported=False,
                    day_ahead_redispatch_by=RedispatchBy.DSO,
                    connections=[AgrPortfolioQueryResponseConnection(entity_address=connection_ean(1))],
                )
            ],
        )
    ]
)

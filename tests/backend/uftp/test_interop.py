"""Interoperability with USEF's shapeshifter-uftp: its aggregator service and client, unmodified,
against GridLedger's DSO endpoint through request → offer → order → metering → settlement, with
the on-chain records and token movements checked; and every refusal UFTP defines."""

from __future__ import annotations

import dataclasses
import re
from decimal import Decimal

import pytest
import requests
from eth_utils.crypto import keccak
from shapeshifter_uftp import (
    AgrPortfolioQuery,
    AgrPortfolioUpdate,
    AgrPortfolioUpdateConnection,
    FlexOffer,
    FlexOfferOption,
    FlexOfferOptionISP,
    FlexOfferRevocation,
    Metering,
    MeteringISP,
    MeteringProfile,
    MeteringProfileEnum,
    MeteringUnit,
    ShapeshifterAgrCroClient,
    ShapeshifterAgrDsoClient,
    SignedMessage,
    TestMessage,
    UsefRole,
)
from shapeshifter_uftp.exceptions import ClientTransportException, InvalidSignatureException
from shapeshifter_uftp.transport import from_xml, to_xml
from tests.backend.uftp.conftest import (
    AGR_DOMAIN,
    CRO_DOMAIN,
    DSO_DOMAIN,
    EAN,
    TZ,
    Exchange,
    keypair,
    post_mandate,
    wait_until,
    window_start,
)
from xsdata.models.datatype import XmlDate, XmlDuration

from gridledger.audit import audit_uftp_offers
from gridledger.encoding import from_hex, to_hex
from gridledger.uftp.codec import verify_sealed
from gridledger.uftp.cro import CRO_MESSAGE_PATH, connection_ean
from gridledger.uftp.mapping import isp_of
from gridledger.uftp.router import MESSAGE_PATH


def agr_client(ex: Exchange, *, secret: str | None = None, domain: str = AGR_DOMAIN) -> ShapeshifterAgrDsoClient:
    return ShapeshifterAgrDsoClient(
        sender_domain=domain,
        signing_key=secret or ex.agr_secret,
        recipient_domain=DSO_DOMAIN,
        recipient_endpoint=ex.dso_url + MESSAGE_PATH,
        recipient_signing_key=ex.dso_public,
    )


def cro_client(ex: Exchange, *, secret: str | None = None) -> ShapeshifterAgrCroClient:
    return ShapeshifterAgrCroClient(
        sender_domain=AGR_DOMAIN,
        signing_key=secret or ex.agr_secret,
        recipient_domain=CRO_DOMAIN,
        recipient_endpoint=ex.dso_url + CRO_MESSAGE_PATH,
        recipient_signing_key=ex.cro_public,
    )


def ean_of(ex: Exchange, account: str) -> str:
    """The connection EntityAddress of a registered participant: ean. + its meter id."""
    return connection_ean(int(ex.chain(lambda: ex.ledger.registry.functions.participant(account).call()[0])))


def update(ex: Exchange, *accounts: str) -> AgrPortfolioUpdate:
    period, _ = isp_of(ex.request.window_start, TZ)
    return AgrPortfolioUpdate(
        time_zone=TZ,
        connections=[
            AgrPortfolioUpdateConnection(entity_address=ean, start_period=XmlDate.from_date(period))
            for ean in (a if a.startswith("ean.") else ean_of(ex, a) for a in accounts)
        ],
    )


def portfolio(ex: Exchange) -> list[dict[str, object]]:
    return ex.gateway.store.rows("select agr_domain, ean, bus from uftp_portfolio order by ean")


def ledger_state(ex: Exchange) -> tuple[int, int, int]:
    """Block height, the flexibility market's token balance and the number of UFTP offers."""
    return ex.chain(
        lambda: (
            ex.ledger.chain.w3.eth.block_number,
            ex.ledger.token_balance(ex.ledger.flex.address),
            len(ex.ledger.flex.events.OfferSourced.get_logs(from_block=0)),
        )
    )


def audit(ex: Exchange, fetch):  # type: ignore[no-untyped-def]
    return ex.chain(
        lambda: audit_uftp_offers(
            ex.ledger, fetch, congestion_points={EAN: ex.request.congestion_bus}, time_zone=TZ, currency="EUR"
        )
    )


def served(ex: Exchange, h: bytes) -> bytes | None:
    r = requests.get(f"{ex.dso_url}/uftp/messages/{to_hex(h)}", timeout=10)
    return r.content if r.status_code == 200 else None


def test_transport_refusals_answer_http_errors_and_change_nothing(exchange: Exchange) -> None:
    ex = exchange
    before = ledger_state(ex)
    url = ex.dso_url + MESSAGE_PATH

    malformed = requests.post(url, data=b"<SignedMessage", headers={"Content-Type": "text/xml"}, timeout=10)
    assert malformed.status_code == 400 and "not a UFTP SignedMessage" in malformed.text

    # Unsigned: the payload XML itself as the Body, without libsodium's seal.
    payload = TestMessage(
        version="3.1.0",
        sender_domain=AGR_DOMAIN,
        recipient_domain=DSO_DOMAIN,
        time_stamp="2026-01-01T00:00:00+00:00",
        message_id="6f0c1a4e-0000-4000-8000-000000000001",
        conversation_id="6f0c1a4e-0000-4000-8000-000000000002",
    )
    unsigned = to_xml(SignedMessage(sender_domain=AGR_DOMAIN, sender_role=UsefRole.AGR, body=to_xml(payload).encode()))
    r = requests.post(url, data=unsigned.encode(), headers={"Content-Type": "text/xml"}, timeout=10)
    assert r.status_code == 401 and "not sealed with agr.gridledger.test's registered key" in r.text

    # Wrongly signed: the library's own client with a key that is not the registered one.
    other_secret, _, _ = keypair()
    with pytest.raises(ClientTransportException) as wrong:
        agr_client(ex, secret=other_secret).send_test_message()
    assert wrong.value.response.status_code == 401

    # Unknown sender: a domain the DSO's register does not list.
    with pytest.raises(ClientTransportException) as unknown:
        agr_client(ex, domain="stranger.test").send_test_message()
    assert unknown.value.response.status_code == 401 and "unknown sender stranger.test" in unknown.value.response.text

    assert ledger_state(ex) == before
    assert ex.gateway.store.rows("select count(*) as n from uftp_messages")[0]["n"] == 0


def test_functional_refusal_is_a_rejected_response_and_changes_nothing(exchange: Exchange) -> None:
    ex = exchange
    before = ledger_state(ex)
    period, first = isp_of(ex.request.window_start, TZ)
    offer = FlexOffer(
        isp_duration=XmlDuration("PT15M"),
        time_zone=TZ,
        period=XmlDate(period.year, period.month, period.day),
        congestion_point=EAN,
        expiration_date_time="2030-01-01T00:00:00+00:00",
        flex_request_message_id="6f0c1a4e-0000-4000-8000-00000000dead",  # no FlexRequest has this id
        currency="EUR",
        offer_options=[
            FlexOfferOption(
                isps=[FlexOfferOptionISP(power=-8_000, start=first + k, duration=1) for k in range(4)],
                option_reference="x",
                price=Decimal("1.00"),
                min_activation_factor=Decimal("1.00"),
            )
        ],
    )
    agr_client(ex).send_flex_offer(offer)
    response = wait_until(lambda: ex.agr_messages("FlexOfferResponse"), "the FlexOfferResponse")[0]
    parsed = from_xml(response["xml"])
    assert parsed.flex_offer_message_id == offer.message_id
    assert parsed.result == "Rejected" and parsed.rejection_reason.startswith("Unknown Reference")
    # The same message again (same MessageID): UFTP's Duplicate Identifier; the first result stands.
    agr_client(ex).send_flex_offer(offer)
    second = wait_until(lambda: ex.agr_messages("FlexOfferResponse")[1:], "the second FlexOfferResponse")[0]
    assert from_xml(second["xml"]).rejection_reason.startswith("Duplicate Identifier")
    (kept,) = ex.gateway.store.rows("select result from uftp_messages where type = 'FlexOffer'")
    assert kept["result"].startswith("Unknown Reference")
    assert ledger_state(ex) == before


def test_portfolio_refusals_keep_nothing(exchange: Exchange) -> None:
    ex = exchange
    before = ledger_state(ex)
    url = ex.dso_url + CRO_MESSAGE_PATH
    kept = ex.gateway.store.rows("select count(*) as n from uftp_messages")[0]["n"]

    malformed = requests.post(url, data=b"<SignedMessage", headers={"Content-Type": "text/xml"}, timeout=10)
    assert malformed.status_code == 400 and "not a UFTP SignedMessage" in malformed.text
    # Unsigned: the AGRPortfolioUpdate's XML itself as the Body.
    message = update(ex, ex.provider.address)
    message.version, message.sender_domain, message.recipient_domain = "3.1.0", AGR_DOMAIN, CRO_DOMAIN
    message.time_stamp, message.message_id = "2026-01-01T00:00:00+00:00", "6f0c1a4e-0000-4000-8000-000000000003"
    message.conversation_id = "6f0c1a4e-0000-4000-8000-000000000004"
    body = to_xml(SignedMessage(sender_domain=AGR_DOMAIN, sender_role=UsefRole.AGR, body=to_xml(message).encode()))
    unsigned = requests.post(url, data=body.encode(), headers={"Content-Type": "text/xml"}, timeout=10)
    assert unsigned.status_code == 401 and "not sealed with agr.gridledger.test's registered key" in unsigned.text
    # Wrongly signed: the library's own CRO client with a key that is not the aggregator's.
    other_secret, _, _ = keypair()
    with pytest.raises(ClientTransportException) as wrong:
        cro_client(ex, secret=other_secret).send_agr_portfolio_update(update(ex, ex.provider.address))
    assert wrong.value.response.status_code == 401
    assert ex.gateway.store.rows("select count(*) as n from uftp_messages")[0]["n"] == kept

    # Signed, but one connection is no registered meter: Rejected, and the good one is not kept either.
    unknown = connection_ean(999_999)
    updates = len(ex.agr_messages("AgrPortfolioUpdateResponse"))
    cro_client(ex).send_agr_portfolio_update(update(ex, ex.provider.address, unknown))
    (answer,) = wait_until(
        lambda: ex.agr_messages("AgrPortfolioUpdateResponse")[updates:], "the AGRPortfolioUpdateResponse"
    )
    rejected = from_xml(answer["xml"])
    assert rejected.result == "Rejected"
    assert rejected.rejection_reason == (
        f"Invalid Connection: no participant is registered with meter 999999 ({unknown})"
    )
    # A query before any accepted update: Rejected as well (kept with its result; nothing to answer).
    period, _ = isp_of(ex.request.window_start, TZ)
    cro_client(ex).send_agr_portfolio_query(
        AgrPortfolioQuery(time_zone=TZ, period=XmlDate(period.year, period.month, period.day))
    )
    (query,) = wait_until(lambda: ex.dso_received("AgrPortfolioQuery"), "the AGRPortfolioQuery's result")
    assert query["result"].startswith(f"Invalid Message: {AGR_DOMAIN} represents no connection on {period}")

    # A registered meter whose participant has not mandated the aggregator: Rejected.
    updates = len(ex.agr_messages("AgrPortfolioUpdateResponse"))
    cro_client(ex).send_agr_portfolio_update(update(ex, ex.outsider.address))
    (answer,) = wait_until(
        lambda: ex.agr_messages("AgrPortfolioUpdateResponse")[updates:], "the AGRPortfolioUpdateResponse"
    )
    assert from_xml(answer["xml"]).rejection_reason.startswith(
        f"Invalid Connection: the participant of {ean_of(ex, ex.outsider.address)} has not mandated {AGR_DOMAIN}"
    )
    # Mandates the endpoint refuses, each saying why: signed by another participant's key (401), an
    # aggregator the CRO does not know (404), dates out of order (422); none is kept.
    url, mandates = ex.dso_url, ex.gateway.store.rows("select * from uftp_mandates")
    forged = post_mandate(url, ex.ledger, ex.provider, meter_id=1001)
    assert forged.status_code == 401
    assert f"meter 1001 is registered to {ex.outsider.address}" in forged.json()["detail"]
    stranger = post_mandate(url, ex.ledger, ex.outsider, meter_id=1001, aggregator="agr.x.test")
    assert stranger.status_code == 404 and "no aggregator 'agr.x.test'" in stranger.json()["detail"]
    backwards = post_mandate(url, ex.ledger, ex.outsider, meter_id=1001, valid_until="2025-12-31")
    assert backwards.status_code == 422 and "valid_until (2025-12-31) is before valid_from" in backwards.text
    assert ex.gateway.store.rows("select * from uftp_mandates") == mandates
    assert portfolio(ex) == [] and ledger_state(ex) == before


def test_a_whole_cycle_with_the_library_aggregator(exchange: Exchange) -> None:
    ex = exchange
    ledger, rid, request = ex.ledger, ex.request_id, ex.request
    # The aggregator's log holds the earlier tests' rejections: count from here.
    seen = len(ex.agr_messages("FlexOfferResponse"))
    updates = len(ex.agr_messages("AgrPortfolioUpdateResponse"))
    queries = len(ex.agr_messages("AgrPortfolioQueryResponse"))
    period, first = isp_of(request.window_start, TZ)

    # 0. The aggregator tells the CRO which connections it represents (the provider's, and one
    # outside the congestion point's feeder) and asks where they are.
    mine, outside = ean_of(ex, ex.provider.address), ean_of(ex, ex.outsider.address)
    if not ex.gateway.store.rows("select 1 from uftp_mandates where account = ?", ex.outsider.address):
        mandate = post_mandate(ex.dso_url, ex.ledger, ex.outsider, meter_id=1001)
        assert mandate.status_code == 201 and mandate.json()["account"] == ex.outsider.address
    cro_client(ex).send_agr_portfolio_update(update(ex, ex.provider.address, ex.outsider.address))
    answers = wait_until(
        lambda: ex.agr_messages("AgrPortfolioUpdateResponse")[updates:], "the AGRPortfolioUpdateResponse"
    )
    assert from_xml(answers[0]["xml"]).result == "Accepted"
    outsider_bus = ex.chain(lambda: ex.ledger.registry.functions.participant(ex.outsider.address).call()[1])
    assert portfolio(ex) == sorted(
        [
            {"agr_domain": AGR_DOMAIN, "ean": mine, "bus": request.congestion_bus},
            {"agr_domain": AGR_DOMAIN, "ean": outside, "bus": outsider_bus},
        ],
        key=lambda r: str(r["ean"]),
    )
    cro_client(ex).send_agr_portfolio_query(
        AgrPortfolioQuery(time_zone=TZ, period=XmlDate(period.year, period.month, period.day))
    )
    # The library's service logs the answer only after verifying its seal with the CRO's key.
    (answer,) = wait_until(
        lambda: ex.agr_messages("AgrPortfolioQueryResponse")[queries:], "the AGRPortfolioQueryResponse"
    )
    reference = from_xml(answer["xml"])
    assert reference.result == "Accepted" and reference.sender_domain == CRO_DOMAIN
    (view,) = reference.dso_views
    (dso,) = view.dso_portfolios
    (point,) = dso.congestion_points
    assert dso.dso_domain == DSO_DOMAIN and point.entity_address == EAN
    assert [c.entity_address for c in point.connections] == [mine]
    assert [c.entity_address for c in view.connections] == [outside]  # on no congestion point

    # 1. The on-chain request goes out as a FlexRequest, to the aggregator the CRO's portfolio puts
    # on its congestion point (the register lists none for it); the library's service offers.
    announced = ex.gateway.announce(rid)
    assert announced.failed == {}
    (request_message_id,) = announced.sent
    # The aggregator logs the FlexRequest before it answers: its response at GridLedger is the event.
    wait_until(lambda: ex.dso_received("FlexRequestResponse"), "the FlexRequestResponse at GridLedger")
    (flex_request,) = ex.agr_messages("FlexRequest")
    received = from_xml(flex_request["xml"])
    assert received.message_id == request_message_id and received.congestion_point == point.entity_address
    assert received.period.to_date() == period and [i.start for i in received.isps] == [first + k for k in range(4)]
    assert {(i.min_power, i.max_power) for i in received.isps} == {(-8_000, 0)}  # Up: consume up to 8 kW less
    responses = wait_until(lambda: ex.agr_messages("FlexOfferResponse")[seen:], "the offer's FlexOfferResponse")
    assert from_xml(responses[0]["xml"]).result == "Accepted"

    (accepted,) = ex.dso_received("FlexRequestResponse")
    assert verify_sealed(bytes(accepted["body"]), ex.agr_public).result == "Accepted"  # the aggregator's answer
    (row,) = ex.gateway.store.rows("select * from uftp_offers where request_id = ?", rid)
    offer_id, source = bytes.fromhex(row["offer_id"][2:]), bytes.fromhex(row["message_hash"][2:])
    state = ex.chain(lambda: ledger.flex.functions.offer(offer_id).call())
    # 6.00 EUR for 8 kW over an hour (8 kWh): 0.75 EUR per kWh; no availability price.
    assert (state[0], state[1], state[2], state[5], state[6]) == (ex.provider.address, rid, 8_000, 0, 750_000)
    assert ex.chain(lambda: bytes(ledger.flex.functions.offerSource(offer_id).call())) == source

    # The signed message is served by its hash, and it is the aggregator's: the seal verifies.
    sealed = served(ex, source)
    assert sealed is not None and keccak(sealed) == source
    assert type(verify_sealed(sealed, ex.agr_public)).__name__ == "FlexOffer"

    # 2. Award, then the FlexOrder: every slot activated at the offered 8 kW.
    ex.chain(lambda: ledger.chain.move_time_to(request.bid_deadline + 1))
    ex.chain(lambda: ledger.award_flex(rid, [offer_id], b"\x01" * 32))
    assert ex.gateway.order(rid).failed == {}
    (order,) = wait_until(lambda: ex.agr_messages("FlexOrder"), "the FlexOrder")
    order_message = from_xml(order["xml"])
    assert order_message.order_reference == to_hex(offer_id) and order_message.price == Decimal("6.000000")
    assert [(i.start, i.power) for i in order_message.isps] == [(first + k, -8_000) for k in range(4)]
    assert all(ex.chain(lambda s=s: ledger.flex_delivery(offer_id, s))["ordered_wh"] == 2_000 for s in request.slots)
    wait_until(
        lambda: ex.gateway.store.rows("select * from uftp_messages where type = 'FlexOrderResponse'"),
        "FlexOrderResponse",
    )

    # 3. After the window: the meter operator measures; the aggregator sends its own Metering.
    ex.chain(lambda: ledger.chain.move_time_to(request.window_end))
    actual = [1_000, 1_000, 1_000, 2_500]  # baseline 3,000 Wh: 2,000 delivered ×3, 500 (25 %) in the last
    for slot, wh in zip(request.slots, actual, strict=True):
        ex.chain(
            lambda slot=slot, wh=wh: ledger.record_flex_measurement(offer_id, slot, baseline_wh=3_000, actual_wh=wh)
        )
    metering = Metering(
        revision=1,
        isp_duration=XmlDuration("PT15M"),
        time_zone=TZ,
        period=XmlDate(period.year, period.month, period.day),
        ean="E871685900000000777",
        profiles=[
            MeteringProfile(
                profile_type=MeteringProfileEnum.POWER,
                unit=MeteringUnit.K_W,
                isps=[MeteringISP(start=first + k, value=Decimal(wh * 4) / 1000) for k, wh in enumerate(actual)],
            )
        ],
    )
    agr_client(ex).send_metering(metering)
    wait_until(lambda: ex.agr_messages("MeteringResponse"), "the MeteringResponse")
    assert from_xml(ex.agr_messages("MeteringResponse")[0]["xml"]).result == "Accepted"

    # 4. Settlement on-chain, then the FlexSettlement; the provider claims its payment.
    ex.chain(lambda: ledger.settle_flex(rid))
    assert ex.gateway.settle(rid).failed == {}
    (settlement,) = wait_until(lambda: ex.agr_messages("FlexSettlement"), "the FlexSettlement")
    (order_settlement,) = from_xml(settlement["xml"]).flex_order_settlements
    # Slots 1–3 pay 2 kWh × 0.75; the last (25 % < the 50 % minimum) pays nothing.
    assert order_settlement.net_settlement == Decimal("4.500000") and order_settlement.penalty == Decimal("1.500000")
    assert [i.delivered_flex_power for i in order_settlement.isps] == [-8_000, -8_000, -8_000, -2_000]
    wait_until(
        lambda: ex.gateway.store.rows("select * from uftp_messages where type = 'FlexSettlementResponse'"),
        "FlexSettlementResponse",
    )
    before = ex.chain(lambda: ledger.token_balance(ex.provider.address))
    ex.chain(lambda: ledger.claim_flex(ex.provider))
    assert ex.chain(lambda: ledger.token_balance(ex.provider.address)) - before == 4_500_000

    # 5. The audit traces the offer to the signed message; a tampered copy is caught.
    (checked,) = audit(ex, lambda h: served(ex, h))
    assert checked.confirmed and checked.offer_id == offer_id, checked.differences
    tampered = re.sub(rb'Price="[0-9.]+"', b'Price="5.0000"', sealed, count=1)
    assert tampered != sealed
    (caught,) = audit(ex, lambda h: tampered)
    assert caught.differences and "hashes to" in caught.differences[0]
    # Served under its own hash, the tampered copy still fails: its seal does not verify.
    assert not ex.chain(lambda: _unsealable(tampered, ex.agr_public))


def _unsealable(sealed: bytes, key: bytes) -> bool:
    try:
        verify_sealed(sealed, key)
    except InvalidSignatureException:
        return False
    return True


def test_a_revocation_withdraws_the_offer_on_chain(exchange: Exchange) -> None:
    ex = exchange
    # The aggregator's portfolio (as the whole cycle announced it; again here so this test stands alone).
    updates, queries = (len(ex.agr_messages(t)) for t in ("AgrPortfolioUpdateResponse", "AgrPortfolioQueryResponse"))
    cro_client(ex).send_agr_portfolio_update(update(ex, ex.provider.address))
    wait_until(lambda: ex.agr_messages("AgrPortfolioUpdateResponse")[updates:], "the AGRPortfolioUpdateResponse")
    start = ex.chain(lambda: window_start(ex.ledger))
    period, _ = isp_of(start, TZ)
    cro_client(ex).send_agr_portfolio_query(AgrPortfolioQuery(time_zone=TZ, period=XmlDate.from_date(period)))
    wait_until(lambda: ex.agr_messages("AgrPortfolioQueryResponse")[queries:], "the AGRPortfolioQueryResponse")

    request = dataclasses.replace(ex.request, window_start=start, bid_deadline=start - 3_600)
    rid = ex.chain(lambda: ex.ledger.post_flex_request(request))
    assert ex.gateway.announce(rid).failed == {}
    (row,) = wait_until(
        lambda: ex.gateway.store.rows("select * from uftp_offers where request_id = ?", rid), "the offer on the ledger"
    )
    offer_id = from_hex(row["offer_id"])
    before = ledger_state(ex)[1:]  # the market's token balance and its UFTP offers
    seen = len(ex.agr_messages("FlexOfferRevocationResponse"))

    agr_client(ex).send_flex_offer_revocation(FlexOfferRevocation(flex_offer_message_id=row["message_id"]))
    (answer,) = wait_until(lambda: ex.agr_messages("FlexOfferRevocationResponse")[seen:], "the revocation's response")
    assert from_xml(answer["xml"]).result == "Accepted"
    assert ex.chain(lambda: ex.ledger.flex.functions.offerWithdrawn(offer_id).call()) is True
    (kept,) = ex.gateway.store.rows("select hash from uftp_messages where type = 'FlexOfferRevocation'")
    (event,) = ex.chain(lambda: ex.ledger.flex.events.OfferWithdrawn.get_logs(from_block=0))
    assert (bytes(event["args"]["offerId"]), to_hex(event["args"]["sourceMessage"])) == (offer_id, kept["hash"])

    # Revoked twice: the ledger refuses, the aggregator hears why.
    agr_client(ex).send_flex_offer_revocation(FlexOfferRevocation(flex_offer_message_id=row["message_id"]))
    (again,) = wait_until(lambda: ex.agr_messages("FlexOfferRevocationResponse")[seen + 1 :], "the second response")
    refused = from_xml(again["xml"])
    assert refused.result == "Rejected"
    assert "the ledger refused the revocation" in refused.rejection_reason
    assert "was withdrawn: it can be neither awarded nor withdrawn again" in refused.rejection_reason
    assert ledger_state(ex)[1:] == before

    # The audit traces the withdrawal to the aggregator's signed revocation, and catches a swap.
    (traced,) = [a for a in audit(ex, lambda h: served(ex, h)) if a.offer_id == offer_id]
    assert traced.confirmed, traced.differences
    swapped = from_hex(kept["hash"])
    (caught,) = [a for a in audit(ex, lambda h: b"x" if h == swapped else served(ex, h)) if a.offer_id == offer_id]
    assert caught.differences == [f"the revocation served as {kept['hash']} hashes to {to_hex(keccak(b'x'))}"]

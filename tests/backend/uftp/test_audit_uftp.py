"""The audit's UFTP check against a facilitator that cheats: an offer whose recorded message is
signed by another key, or whose fields differ from the signed message, is named."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from eth_utils.crypto import keccak
from shapeshifter_uftp import FlexOffer, FlexOfferOption, FlexOfferOptionISP
from shapeshifter_uftp.transport import from_xml, seal_message
from tests.backend.uftp.conftest import EAN, TZ, keypair
from xsdata.models.datatype import XmlDate, XmlDuration

from gridledger.audit import audit_uftp_offers
from gridledger.flex.products import FlexRequest
from gridledger.uftp.mapping import isp_of, nonce_of, offer_from_uftp


def signed_offer(request: FlexRequest, secret: str, price: str = "6.00") -> bytes:
    period, first = isp_of(request.window_start, TZ)
    message = FlexOffer(
        sender_domain="agr.test",
        recipient_domain="dso.test",
        message_id="6f0c1a4e-0000-4000-8000-000000000010",
        conversation_id="6f0c1a4e-0000-4000-8000-000000000011",
        time_stamp="2026-01-01T00:00:00+00:00",
        isp_duration=XmlDuration("PT15M"),
        time_zone=TZ,
        period=XmlDate(period.year, period.month, period.day),
        congestion_point=EAN,
        expiration_date_time="2030-01-01T00:00:00+00:00",
        flex_request_message_id="6f0c1a4e-0000-4000-8000-000000000012",
        currency="EUR",
        offer_options=[
            FlexOfferOption(
                isps=[FlexOfferOptionISP(power=-8_000, start=first + k, duration=1) for k in range(4)],
                option_reference="o",
                price=Decimal(price),
                min_activation_factor=Decimal("1.00"),
            )
        ],
    )
    return bytes(seal_message(message, secret))


def record(ledger, provider, bus, request, rid, sealed: bytes, *, utilisation: int | None = None):
    offer = offer_from_uftp(
        from_xml(sealed[64:]),
        request_id=rid,
        request=request,
        ean=EAN,
        tz=TZ,
        currency="EUR",
        provider=provider.address,
        bus=bus,
        nonce=nonce_of(keccak(sealed)),
    )
    if utilisation is not None:
        offer = dataclasses.replace(offer, utilisation_price_per_kwh=utilisation)
    call = ledger.flex.functions.submitUftpOffer(offer.as_abi(), keccak(sealed))
    ledger.tx.send(ledger.roles.facilitator, call, action="UFTP offer")


def run_audit(ledger, bus, store):
    return audit_uftp_offers(ledger, store.get, congestion_points={EAN: bus}, time_zone=TZ, currency="EUR")


def test_an_honest_offer_is_confirmed(setup) -> None:
    ledger, provider, bus, request, rid, secret = setup
    sealed = signed_offer(request, secret)
    record(ledger, provider, bus, request, rid, sealed)
    (audit,) = run_audit(ledger, bus, {keccak(sealed): sealed})
    assert audit.confirmed, audit.differences


def test_a_message_signed_by_another_key_is_named(setup) -> None:
    ledger, provider, bus, request, rid, _ = setup
    forged_secret, _, _ = keypair()
    sealed = signed_offer(request, forged_secret)
    record(ledger, provider, bus, request, rid, sealed)
    (audit,) = run_audit(ledger, bus, {keccak(sealed): sealed})
    assert audit.differences == [
        f"the message 0x{keccak(sealed).hex()} is not signed with {provider.address}'s bound key 0x"
        f"{bytes(ledger.flex.functions.uftpKey(provider.address).call()).hex()}"
    ]


def test_an_offer_that_differs_from_its_message_is_named(setup) -> None:
    ledger, provider, bus, request, rid, secret = setup
    sealed = signed_offer(request, secret, price="6.00")  # 750,000 per kWh
    record(ledger, provider, bus, request, rid, sealed, utilisation=900_000)
    (audit,) = run_audit(ledger, bus, {keccak(sealed): sealed})
    assert len(audit.differences) == 1 and "the message maps to offer" in audit.differences[0]
    assert "utilisation_price_per_kwh=750000" in audit.differences[0]


def test_a_missing_message_is_named(setup) -> None:
    ledger, provider, bus, request, rid, secret = setup
    sealed = signed_offer(request, secret)
    record(ledger, provider, bus, request, rid, sealed)
    (audit,) = run_audit(ledger, bus, {})
    assert audit.differences == [f"the signed UFTP message 0x{keccak(sealed).hex()} is not available"]

"""The flexibility market on-chain: a request's life from escrow to settlement, and every refusal."""

from __future__ import annotations

import dataclasses

import pytest
from web3.logs import DISCARD

from gridledger.chain.connection import derive_account
from gridledger.config import Settings
from gridledger.errors import FlexRejected, LedgerError, NotRegisteredError, OrderError, ReplayRejected
from gridledger.flex.products import BaselineMethod, Direction, FlexOffer, FlexRequest, ServiceType
from gridledger.sim.participants import make_prosumers

DSO_FUNDS = 100_000_000


@pytest.fixture
def setup(ledger):
    """Three registered providers at buses 0, 1, 2 and a funded DSO; a request posted for a
    4-slot window two hours ahead, bids until one hour before."""
    providers = make_prosumers(ledger, count=3, deposit=1_000_000)
    dso = ledger.roles.dso
    ledger.fund_gas(dso.address, 10**18)
    ledger.mint(dso.address, DSO_FUNDS)
    start = (ledger.chain.now() // 900 + 8) * 900
    request = FlexRequest(
        service=ServiceType.SECURE,
        direction=Direction.UP,
        baseline=BaselineMethod.HISTORICAL,
        congestion_bus=2,
        power_w=20_000,
        window_start=start,
        window_slots=4,
        bid_deadline=start - 3_600,
        max_availability_price_per_kwh=100_000,
        max_utilisation_price_per_kwh=300_000,
    )
    request_id = ledger.post_flex_request(request)
    return ledger, providers, request, request_id


def offer(provider, request_id, request, *, power_w, availability, utilisation, bus, nonce=0) -> FlexOffer:
    return FlexOffer(provider.address, request_id, request.window_start, power_w, availability, utilisation, bus, nonce)


def test_a_request_from_escrow_to_settlement_pays_by_the_performance_rule(setup) -> None:
    ledger, (a, b, c), request, rid = setup
    assert request.max_spend == 8_000_000  # 20 kW × 1 h × (0.10 + 0.30)
    assert ledger.token_balance(ledger.flex.address) == 8_000_000
    assert ledger.token_balance(ledger.roles.dso.address) == DSO_FUNDS - 8_000_000

    sa = ledger.sign_offer(a, offer(a, rid, request, power_w=10_000, availability=50_000, utilisation=200_000, bus=0))
    sb = ledger.sign_offer(b, offer(b, rid, request, power_w=8_000, availability=80_000, utilisation=250_000, bus=1))
    sc = ledger.sign_offer(c, offer(c, rid, request, power_w=5_000, availability=90_000, utilisation=290_000, bus=2))
    for signed in (sa, sb, sc):
        receipt = ledger.submit_offer(signed)
        (event,) = ledger.flex.events.OfferSubmitted().process_receipt(receipt, errors=DISCARD)
        assert bytes(event["args"]["offerId"]) == signed.offer_id

    ledger.chain.move_time_to(request.bid_deadline + 1)
    receipt = ledger.award_flex(rid, [sa.offer_id, sb.offer_id], b"\x07" * 32)
    (awarded,) = ledger.flex.events.Awarded().process_receipt(receipt, errors=DISCARD)
    assert awarded["args"]["awardedPowerW"] == 18_000 and bytes(awarded["args"]["awardReportHash"]) == b"\x07" * 32
    assert ledger.flex_request_status(rid) == "awarded"

    s0, s1 = request.slots[:2]
    ledger.activate_flex(sa.offer_id, s0, 10_000)  # 2,500 Wh ordered
    ledger.activate_flex(sa.offer_id, s1, 8_000, by="facilitator")  # 2,000 Wh ordered
    ledger.activate_flex(sb.offer_id, s0, 8_000)  # 2,000 Wh ordered

    ledger.chain.move_time_to(request.window_end)
    ledger.record_flex_measurement(sa.offer_id, s0, baseline_wh=3_000, actual_wh=500)  # 2,500: 100 %
    ledger.record_flex_measurement(sa.offer_id, s1, baseline_wh=3_000, actual_wh=1_600)  # 1,400: 70 %
    receipt = ledger.record_flex_measurement(sb.offer_id, s0, baseline_wh=2_500, actual_wh=1_800)  # 700: 35 %
    (measured,) = ledger.flex.events.Measured().process_receipt(receipt, errors=DISCARD)
    assert (measured["args"]["deliveredWh"], measured["args"]["deficiencyWh"]) == (700, 1_300)
    assert ledger.flex_delivery(sa.offer_id, s1) == {
        "ordered_wh": 2_000,
        "measured": True,
        "baseline_wh": 3_000,
        "actual_wh": 1_600,
        "delivered_wh": 1_400,
    }

    before = {p.address: ledger.token_balance(p.address) for p in (a, b, c)}
    receipt = ledger.settle_flex(rid)
    settled = {
        bytes(e["args"]["offerId"]): e["args"]
        for e in ledger.flex.events.OfferSettled().process_receipt(receipt, errors=DISCARD)
    }
    # A: availability 10 kW × 1 h × 0.05 = 0.5; utilisation (2,500 + 1,400 Wh) × 0.20 = 0.78.
    assert (settled[sa.offer_id]["availabilityPayment"], settled[sa.offer_id]["utilisationPayment"]) == (
        500_000,
        780_000,
    )
    # B delivered 35 % < 50 % when called: no utilisation, and unavailable, so no availability either.
    assert (settled[sb.offer_id]["availabilityPayment"], settled[sb.offer_id]["utilisationPayment"]) == (0, 0)
    (total,) = ledger.flex.events.RequestSettled().process_receipt(receipt, errors=DISCARD)
    assert (total["args"]["paid"], total["args"]["refunded"]) == (1_280_000, 6_720_000)
    # Settlement credits; it moves no tokens. Each party pulls its balance with claim.
    dso = ledger.roles.dso
    assert {p.address: ledger.token_balance(p.address) for p in (a, b, c)} == before
    assert [ledger.flex_claimable(x) for x in (a.address, b.address, c.address, dso.address)] == [
        1_280_000,
        0,
        0,
        6_720_000,
    ]
    assert ledger.token_balance(ledger.flex.address) == 8_000_000  # escrow = the credits

    receipt = ledger.claim_flex(a)
    (claimed,) = ledger.flex.events.Claimed().process_receipt(receipt, errors=DISCARD)
    assert (claimed["args"]["account"], claimed["args"]["amount"]) == (a.address, 1_280_000)
    ledger.claim_flex(dso)
    assert ledger.token_balance(a.address) == before[a.address] + 1_280_000
    assert ledger.token_balance(b.address) == before[b.address]
    assert ledger.token_balance(c.address) == before[c.address]  # not awarded
    assert ledger.token_balance(dso.address) == DSO_FUNDS - 1_280_000
    assert ledger.token_balance(ledger.flex.address) == 0
    assert ledger.flex_claimable(a.address) == ledger.flex_claimable(dso.address) == 0
    with pytest.raises(FlexRejected, match="nothing to claim") as info:  # nothing is paid twice
        ledger.claim_flex(a)
    assert info.value.error == "NothingToClaim"
    with pytest.raises(FlexRejected, match="nothing to claim"):
        ledger.claim_flex(b)

    with pytest.raises(FlexRejected, match="is settled"):  # nothing settles twice
        ledger.settle_flex(rid)


def test_a_request_nobody_was_awarded_refunds_the_dso(setup) -> None:
    ledger, _, request, rid = setup
    ledger.chain.move_time_to(request.window_end)
    ledger.settle_flex(rid)
    assert ledger.flex_claimable(ledger.roles.dso.address) == 8_000_000
    ledger.claim_flex(ledger.roles.dso)
    assert ledger.token_balance(ledger.roles.dso.address) == DSO_FUNDS


def test_requests_that_make_no_sense_or_come_from_another_key_are_refused(setup) -> None:
    ledger, (a, *_), request, _ = setup
    balance = ledger.token_balance(ledger.roles.dso.address)
    with pytest.raises(OrderError, match="must be before the window starts"):
        dataclasses.replace(request, bid_deadline=request.window_start)
    with pytest.raises(FlexRejected, match="the bid deadline must be before the window"):
        ledger.post_flex_request(_raw(request, bid_deadline=request.window_start))
    with pytest.raises(FlexRejected, match="1 to 96 slots"):
        ledger.post_flex_request(_raw(request, window_slots=97))
    with pytest.raises(LedgerError) as info:
        ledger.tx.send(a, ledger.flex.functions.postRequest(request.as_abi()), action="request by a prosumer")
    assert info.value.error == "AccessControlUnauthorizedAccount"
    assert ledger.token_balance(ledger.roles.dso.address) == balance


def test_a_posted_request_carries_its_minimum_performance(setup) -> None:
    ledger, _, request, _ = setup
    strict = dataclasses.replace(request, min_performance_bps=8_000)
    dso = ledger.roles.dso
    ledger.tx.send(dso, ledger.token.functions.approve(ledger.flex.address, strict.max_spend), action="approve escrow")
    receipt = ledger.tx.send(dso, ledger.flex.functions.postRequest(strict.as_abi()), action="flexibility request")
    (event,) = ledger.flex.events.RequestPosted().process_receipt(receipt, errors=DISCARD)
    assert event["args"]["minPerformanceBps"] == 8_000
    assert ledger.flex.functions.request(event["args"]["requestId"]).call()[10] == 8_000


def _raw(request: FlexRequest, **changes):
    """A request the Python model would refuse, to reach the contract's own check."""
    raw = object.__new__(FlexRequest)
    for field in dataclasses.fields(FlexRequest):
        object.__setattr__(raw, field.name, changes.get(field.name, getattr(request, field.name)))
    return raw


def test_bad_offers_are_refused_with_reasons_and_change_nothing(setup) -> None:
    ledger, (a, b, _), request, rid = setup

    def submit(provider, **fields):
        base = {"power_w": 5_000, "availability": 50_000, "utilisation": 100_000, "bus": 0, "nonce": 1} | fields
        signed = ledger.sign_offer(provider, offer(provider, rid, request, **base))
        ledger.submit_offer(signed)
        return signed

    with pytest.raises(FlexRejected, match="names bus 3, but the provider is connected at bus 0") as info:
        submit(a, bus=3)
    assert info.value.error == "ConnectionPointMismatch"
    with pytest.raises(FlexRejected, match="above the DSO's cap"):
        submit(a, utilisation=300_001)
    with pytest.raises(FlexRejected, match="it must be 1 to 20000 W"):
        submit(a, power_w=20_001)
    stranger = derive_account(Settings().mnemonic, 77)
    with pytest.raises(NotRegisteredError, match="only registered providers offer flexibility"):
        signed = ledger.sign_offer(stranger, FlexOffer(stranger.address, rid, request.window_start, 1_000, 1, 1, 0, 0))
        ledger.submit_offer(signed)
    moved = FlexOffer(a.address, rid, request.window_start + 900, 1_000, 1, 1, 0, 5)
    with pytest.raises(FlexRejected, match="outside request"):
        ledger.submit_offer(ledger.sign_offer(a, moved))
    forged = ledger.sign_offer(b, FlexOffer(b.address, rid, request.window_start, 1_000, 1, 1, 1, 9))
    with pytest.raises(LedgerError) as sig:
        ledger.submit_offer(dataclasses.replace(forged, offer=dataclasses.replace(forged.offer, power_w=2_000)))
    assert sig.value.error == "InvalidOfferSignature"
    with pytest.raises(FlexRejected, match="there is no flexibility request 99"):
        ledger.submit_offer(ledger.sign_offer(a, FlexOffer(a.address, 99, request.window_start, 1_000, 1, 1, 0, 6)))

    good = submit(a)
    with pytest.raises(ReplayRejected):
        submit(a, power_w=4_000)  # same nonce
    ledger.chain.move_time_to(request.bid_deadline + 1)
    with pytest.raises(FlexRejected, match="closed at"):
        submit(b, bus=1, nonce=2)
    # None of the refused offers exists on-chain.
    assert ledger.flex.functions.offer(good.offer_id).call()[0] == a.address
    assert ledger.flex.functions.offer(forged.offer_id).call()[0] == "0x" + "00" * 20


def test_awards_activations_and_measurements_outside_the_rules_are_refused(setup) -> None:
    ledger, (a, *_), request, rid = setup
    signed = ledger.sign_offer(a, offer(a, rid, request, power_w=6_000, availability=1, utilisation=1, bus=0))
    ledger.submit_offer(signed)
    with pytest.raises(FlexRejected, match="takes offers until"):
        ledger.award_flex(rid, [signed.offer_id], b"\0" * 32)
    ledger.chain.move_time_to(request.bid_deadline + 1)
    with pytest.raises(FlexRejected, match="was not awarded"):
        ledger.activate_flex(signed.offer_id, request.window_start, 1_000)
    ledger.award_flex(rid, [signed.offer_id], b"\0" * 32)

    with pytest.raises(FlexRejected, match=r"exceeds offer .* contracted 6000 W") as info:
        ledger.activate_flex(signed.offer_id, request.window_start, 6_001)
    assert info.value.error == "ActivationAboveContract"
    with pytest.raises(FlexRejected, match="outside request"):
        ledger.activate_flex(signed.offer_id, request.window_end, 1_000)
    ledger.activate_flex(signed.offer_id, request.window_start, 6_000)
    with pytest.raises(FlexRejected, match="already activated"):
        ledger.activate_flex(signed.offer_id, request.window_start, 1_000)
    assert ledger.flex_delivery(signed.offer_id, request.window_start)["ordered_wh"] == 1_500

    with pytest.raises(FlexRejected, match="measure after that"):
        ledger.record_flex_measurement(signed.offer_id, request.window_start, baseline_wh=1, actual_wh=0)
    ledger.chain.move_time_to(request.window_end)
    with pytest.raises(FlexRejected, match="outside request"):
        ledger.record_flex_measurement(signed.offer_id, request.window_end, baseline_wh=1, actual_wh=0)
    with pytest.raises(FlexRejected, match=r"activated for .* but not measured"):
        ledger.settle_flex(rid)
    ledger.record_flex_measurement(signed.offer_id, request.window_start, baseline_wh=2_000, actual_wh=500)
    with pytest.raises(FlexRejected, match="already measured"):
        ledger.record_flex_measurement(signed.offer_id, request.window_start, baseline_wh=2_000, actual_wh=0)
    ledger.settle_flex(rid)
    assert ledger.flex_request_status(rid) == "settled"

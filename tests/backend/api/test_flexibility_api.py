"""The flexibility market over HTTP: the DSO's request, signed offers, the award by rule,
activation, measurement and settlement; and each refusal as a 4xx that changes nothing."""

from __future__ import annotations

import pytest
from tests.backend.api.test_errors import refused
from tests.conftest import flex_request_body

from gridledger.api.client import ApiError
from gridledger.flex.products import FlexOffer
from gridledger.market.orders import Side
from gridledger.service.flexibility import _request_of

DSO_FUNDS = 50_000_000


@pytest.fixture
def flex(api, wallets):
    """A funded DSO and a request for a 4-slot window at Bob's bus (4), bids until 1 h before."""
    ledger = api.ledger
    dso = ledger.roles.dso

    def fund() -> None:
        ledger.fund_gas(dso.address, 10**18)
        ledger.mint(dso.address, DSO_FUNDS)

    api.chain(fund)
    start = api.next_slot() + 4 * 3_600
    body = flex_request_body(start)
    posted = api.client.request("POST", "/flex/requests", body=body, signer=dso)
    return posted, body


def test_a_flexibility_request_traded_over_http(api, wallets, flex) -> None:
    alice, bob = wallets
    posted, body = flex
    rid = posted["request_id"]
    assert (posted["status"], posted["escrow"], posted["direction"]) == ("open", 4_000_000, "up")
    assert api.chain(lambda: api.ledger.token_balance(api.ledger.flex.address)) == 4_000_000

    near = api.client.offer(
        bob, rid, power_w=8_000, availability_price_per_kwh=50_000, utilisation_price_per_kwh=200_000
    )
    other = api.client.offer(alice, rid, power_w=8_000, availability_price_per_kwh=1, utilisation_price_per_kwh=1)
    assert near["bus"] == 4 and other["bus"] == 3 and not near["awarded"]

    api.move_time_to(body["bid_deadline"] + 1)
    report = api.client.request("POST", f"/flex/requests/{rid}/award", signer=api.ledger.roles.facilitator)
    awarded = [o["offer_id"] for o in report["report"]["offers"] if o["awarded"]]
    assert near["offer_id"] in awarded  # Bob's bus is the congestion point: relief ratio 1
    view = api.client.get(f"/flex/requests/{rid}")
    assert view["status"] == "awarded" and view["award_report_hash"] == report["report_hash"]

    slot = body["window_start"]
    activated = api.client.request(
        "POST",
        f"/flex/offers/{near['offer_id']}/activations",
        body={"slot": slot, "power_w": 8_000},
        signer=api.ledger.roles.dso,
    )
    assert activated["deliveries"][0]["ordered_wh"] == 2_000
    too_much = {"slot": slot + 900, "power_w": 8_001}
    above = refused(
        lambda: api.client.request(
            "POST", f"/flex/offers/{near['offer_id']}/activations", body=too_much, signer=api.ledger.roles.dso
        ),
        422,
    )
    assert above["error"] == "ActivationAboveContract" and "contracted 8000 W" in above["detail"]

    api.move_time_to(body["window_start"] + 4 * 900)
    outside = {"slot": slot + 4 * 900, "baseline_wh": 3_000, "actual_wh": 1_000}
    path = f"/flex/offers/{near['offer_id']}/measurements"
    assert (
        refused(lambda: api.client.request("POST", path, body=outside, signer=api.ledger.roles.meter), 422)["error"]
        == "OutsideWindow"
    )
    measured = api.client.request(
        "POST", path, body={"slot": slot, "baseline_wh": 3_000, "actual_wh": 1_200}, signer=api.ledger.roles.meter
    )
    assert (measured["deliveries"][0]["delivered_wh"], measured["deliveries"][0]["deficiency_wh"]) == (1_800, 200)

    settled = api.client.request("POST", f"/flex/requests/{rid}/settlement", signer=api.ledger.roles.facilitator)
    paid = {o["offer_id"]: (o["availability_payment"], o["utilisation_payment"]) for o in settled["offers"]}
    # 8 kW × 1 h × 0.05 = 0.40 availability; 1,800 Wh (90 %) × 0.20 = 0.36 utilisation.
    assert paid[near["offer_id"]] == (400_000, 360_000)
    assert settled["status"] == "settled" and settled["paid"] + settled["refunded"] == 4_000_000
    # Settlement credits Bob's balance in the contract; he pulls it with claim.
    assert api.chain(lambda: api.ledger.flex_claimable(bob.address)) == 760_000
    before = api.chain(lambda: api.ledger.token_balance(bob.address))
    api.chain(lambda: api.ledger.claim_flex(bob))
    assert api.chain(lambda: api.ledger.token_balance(bob.address)) == before + 760_000


def test_a_requests_minimum_performance_is_indexed_and_served(api, flex) -> None:
    posted, body = flex
    assert posted["min_performance_bps"] == 5_000  # the API's default when the DSO names none
    strict = api.client.request(
        "POST", "/flex/requests", body=body | {"min_performance_bps": 8_000}, signer=api.ledger.roles.dso
    )
    assert strict["min_performance_bps"] == 8_000
    assert api.client.get(f"/flex/requests/{strict['request_id']}")["min_performance_bps"] == 8_000
    # The request the desk awards by is rebuilt from the index, with the DSO's threshold.
    assert _request_of(api.service.flex.request(strict["request_id"])).min_performance_bps == 8_000


def test_bad_offers_over_http_are_4xx_and_record_nothing(api, wallets, flex, stranger) -> None:
    alice, bob = wallets
    posted, body = flex
    rid = posted["request_id"]

    def offer(account, **fields):
        base = dict(
            provider=account.address,
            request_id=rid,
            window_start=body["window_start"],
            power_w=5_000,
            availability_price_per_kwh=1_000,
            utilisation_price_per_kwh=1_000,
            bus=3,
            nonce=1,
        )
        signed = api.client.offer_body(account, FlexOffer(**(base | fields)))
        return api.client.request("POST", f"/flex/requests/{rid}/offers", body=signed)

    assert refused(lambda: offer(alice, bus=4), 422)["error"] == "ConnectionPointMismatch"
    assert "bus 99999" in refused(lambda: offer(alice, bus=99_999), 422)["detail"]
    assert refused(lambda: offer(alice, utilisation_price_per_kwh=300_001), 422)["error"] == "PriceAboveCap"
    assert refused(lambda: offer(alice, window_start=body["window_start"] + 900), 422)["error"] == "OutsideWindow"
    assert refused(lambda: offer(stranger, bus=0), 403)["error"] == "ProviderNotRegistered"
    forged = api.client.offer_body(bob, FlexOffer(bob.address, rid, body["window_start"], 5_000, 1, 1, 4, 1))
    wrong = refused(
        lambda: api.client.request(
            "POST", f"/flex/requests/{rid}/offers", body={**forged, "provider": alice.address, "bus": 3}
        ),
        401,
    )
    assert f"expected the signature of provider {alice.address}" in wrong["detail"]
    assert refused(lambda: api.client.get(f"/flex/requests/{rid + 1}"), 404)["error"] == "NotFoundError"
    api.move_time_to(body["bid_deadline"] + 1)
    late = refused(lambda: offer(alice), 422)
    assert late["error"] == "OfferAfterDeadline" and "closed at" in late["detail"]
    assert api.client.get(f"/flex/requests/{rid}")["offers"] == []
    with pytest.raises(ApiError) as info:  # the DSO's routes need the DSO's key
        api.client.request("POST", "/flex/requests", body=body, signer=alice)
    assert info.value.status == 403 and "is not the DSO" in info.value.body["detail"]


def test_flexibility_the_dso_activated_is_in_the_slots_network_check_and_audited(api, wallets, flex) -> None:
    from gridledger.audit import audit_slot
    from gridledger.network.validation import BatchEngine
    from gridledger.store.reports import ReportStore

    alice, bob = wallets
    posted, body = flex
    rid, slot = posted["request_id"], body["window_start"]
    offer = api.client.offer(bob, rid, power_w=8_000, availability_price_per_kwh=1, utilisation_price_per_kwh=1)
    sell = api.client.place(alice, side=Side.SELL, delivery_start=slot, energy_wh=1_000, price_per_kwh=50_000)
    api.client.place(bob, side=Side.BUY, delivery_start=slot, energy_wh=1_000, price_per_kwh=90_000)
    api.wait_for(sell["order_hash"], "on_chain")
    api.move_time_to(body["bid_deadline"] + 1)
    api.client.request("POST", f"/flex/requests/{rid}/award", signer=api.ledger.roles.facilitator)
    path = f"/flex/offers/{offer['offer_id']}/activations"
    api.client.request("POST", path, body={"slot": slot, "power_w": 8_000}, signer=api.ledger.roles.dso)

    api.move_time_to(slot - 300)
    api.client.request("POST", f"/slots/{slot}/clearing", signer=api.ledger.roles.facilitator)
    report = api.client.get(f"/slots/{slot}/network-report")["report"]
    assert report["flexibility"]["dispatched_by_dso"] == [
        {"offer_id": offer["offer_id"], "bus": 4, "direction": "up", "energy_wh": 2_000}
    ]
    model, database = api.service.ctx.model, api.service.ctx.settings.database
    audit = api.chain(lambda: audit_slot(api.ledger, model, BatchEngine(model), ReportStore(database), slot))
    assert audit.confirmed, audit.differences

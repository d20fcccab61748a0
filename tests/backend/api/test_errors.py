"""Every refusal of the API: its status, a body that says what was wrong and what is allowed,
and nothing written (no submission row, no transaction)."""

from __future__ import annotations

import json

import pytest

from gridledger import errors
from gridledger.api.client import ApiError
from gridledger.api.errors import status_of
from gridledger.market.orders import Order, Side
from gridledger.wallet.requests import sign_request

JSON = {"content-type": "application/json"}


def sell(api, account, slot: int, energy_wh: int, price: int = 1):
    return api.client.place(account, side=Side.SELL, delivery_start=slot, energy_wh=energy_wh, price_per_kwh=price)


def buy(api, account, slot: int, energy_wh: int, price: int):
    return api.client.place(account, side=Side.BUY, delivery_start=slot, energy_wh=energy_wh, price_per_kwh=price)


def refused(call, status: int) -> dict:
    with pytest.raises(ApiError) as info:
        call()
    assert info.value.status == status, info.value.body
    return info.value.body


@pytest.fixture
def order_body(api, wallets):
    """A valid signed sell order body of Alice's, to be broken one field at a time."""
    alice, _ = wallets
    slot = api.next_slot()
    return api.client.order_body(alice, Order(alice.address, Side.SELL, slot, 1_000, 80_000, 0, slot))


def test_malformed_orders_get_422_naming_the_field_and_the_range(api, order_body) -> None:
    cases = {
        "energy_wh": (0, "greater than or equal to 1"),
        "price_per_kwh": (2**64, "less than or equal to 18446744073709551615"),
        "delivery_start": (order_body["delivery_start"] + 1, "multiple of 900"),
        "side": ("hold", "'buy' or 'sell'"),
        "prosumer": ("0x1234", "match pattern"),
        "signature": ("0xabcd", "match pattern"),
        # The ledger keeps a prosumer's next nonce in 32 bits: a larger one could never be relayed.
        "nonce": (2**32 - 1, "less than 4294967295"),
    }
    for field, (value, allowed) in cases.items():
        body = refused(lambda f=field, v=value: api.client.request("POST", "/orders", body={**order_body, f: v}), 422)
        assert body["error"] == "InvalidRequest"
        assert body["fields"][0]["field"] == field, body
        assert allowed in body["detail"], body
    missing = refused(lambda: api.client.request("POST", "/orders", body={"side": "buy"}), 422)
    assert {"prosumer", "energy_wh", "signature"} <= {f["field"] for f in missing["fields"]}
    raw = api.client.http.post("/orders", content=b"{not json", headers={"content-type": "application/json"})
    assert raw.status_code == 422 and raw.json()["error"] == "InvalidRequest"
    assert api.count("submissions") == 0


def test_a_signature_not_the_prosumers_gets_401_saying_whose_was_expected(api, wallets, order_body) -> None:
    alice, bob = wallets
    forged = api.client.order_body(
        bob, Order(bob.address, Side.SELL, order_body["delivery_start"], 1_000, 80_000, 0, 0)
    )
    body = refused(
        lambda: api.client.request("POST", "/orders", body={**order_body, "signature": forged["signature"]}), 401
    )
    assert body["error"] == "SignatureError"
    assert f"expected the signature of prosumer {alice.address}" in body["detail"]
    tampered = refused(lambda: api.client.request("POST", "/orders", body={**order_body, "energy_wh": 999}), 401)
    assert "recovers to" in tampered["detail"]
    assert api.count("submissions") == 0


def test_an_unregistered_prosumer_gets_403(api, wallets, stranger) -> None:
    slot = api.next_slot()
    body = refused(
        lambda: api.client.submit_order(stranger, Order(stranger.address, Side.SELL, slot, 100, 1, 0, slot)), 403
    )
    assert f"{stranger.address} is not a registered participant" in body["detail"]


def test_duplicates_get_409(api, wallets, order_body) -> None:
    alice, _ = wallets
    first = api.client.request("POST", "/orders", body=order_body)
    again = refused(lambda: api.client.request("POST", "/orders", body=order_body), 409)
    assert f"order {first['order_hash']} was already submitted" in again["detail"]
    api.wait_for(first["order_hash"], "on_chain")
    again_on_chain = refused(lambda: api.client.request("POST", "/orders", body=order_body), 409)
    assert "already submitted" in again_on_chain["detail"]
    same_nonce = Order(alice.address, Side.BUY, order_body["delivery_start"], 10, 1, 0, order_body["delivery_start"])
    body = refused(lambda: api.client.submit_order(alice, same_nonce), 409)
    assert f"nonce 0 of {alice.address} is used up" in body["detail"]
    assert "the lowest it may still use is 1" in body["detail"]
    assert api.count("submissions") == 1


def test_a_closed_gate_or_an_expired_order_says_when(api, wallets) -> None:
    alice, _ = wallets
    slot = api.next_slot()
    api.move_time_to(slot - 300)
    late = refused(
        lambda: api.client.place(alice, side=Side.SELL, delivery_start=slot, energy_wh=100, price_per_kwh=1), 422
    )
    assert late["error"] == "GateClosed"
    assert f"closed at {slot - 300}" in late["detail"] and "UTC" in late["detail"]
    later = slot + 3_600
    expired = refused(
        lambda: api.client.place(
            alice, side=Side.SELL, delivery_start=later, energy_wh=100, price_per_kwh=1, expiry=slot - 600
        ),
        422,
    )
    assert expired["error"] == "OrderExpired" and f"expired at {slot - 600}" in expired["detail"]
    assert api.count("submissions") == 0


def test_energy_beyond_the_connection_and_escrow_beyond_the_balance_get_422(api, wallets) -> None:
    alice, bob = wallets
    slot = api.next_slot()
    big = refused(
        lambda: api.client.place(alice, side=Side.SELL, delivery_start=slot, energy_wh=5_001, price_per_kwh=1), 422
    )
    assert "at most 5000 Wh (20000 W for 15 minutes)" in big["detail"]
    # 100 tokens buy at most 400 kWh at 0.25; Bob asks for 4 kWh at 30 tokens/kWh = 120 tokens.
    poor = refused(
        lambda: api.client.place(bob, side=Side.BUY, delivery_start=slot, energy_wh=4_000, price_per_kwh=30_000_000),
        422,
    )
    assert poor["error"] == "InsufficientBalance" and "needs an escrow of 120000000" in poor["detail"]
    # Two orders that each fit but not together: the second sees the first's pending escrow.
    buy(api, bob, slot, 4_000, 20_000_000)
    second = refused(lambda: buy(api, bob, slot, 4_000, 20_000_000), 422)
    assert second["error"] == "InsufficientBalance"
    assert api.count("submissions") == 1


def test_unknown_orders_and_slots_get_404_and_bad_identifiers_422(api, wallets) -> None:
    unknown = "0x" + "ab" * 32
    assert "unknown" in refused(lambda: api.client.get(f"/orders/{unknown}"), 404)["detail"]
    assert refused(lambda: api.client.get("/orders/0x1234"), 422)["fields"][0]["field"] == "path.order_hash"
    slot = api.next_slot()
    for path in ("book", "clearing", "trades", "settlement", "network-report"):
        assert refused(lambda p=path: api.client.get(f"/slots/{slot}/{p}"), 404)["error"] == "NotFoundError"
    assert "multiple of 900" in refused(lambda: api.client.get(f"/slots/{slot + 1}/book"), 422)["detail"]
    alice, _ = wallets
    assert refused(lambda: api.client.cancel(alice, unknown), 404)["error"] == "NotFoundError"
    stranger = "0x" + "12" * 20
    assert "not a registered participant" in refused(lambda: api.client.get(f"/participants/{stranger}"), 404)["detail"]


def test_a_cancellation_signed_by_another_key_gets_401_and_a_second_one_409(api, wallets) -> None:
    alice, bob = wallets
    slot = api.next_slot()
    sell = api.client.place(alice, side=Side.SELL, delivery_start=slot, energy_wh=100, price_per_kwh=1)
    api.wait_for(sell["order_hash"], "on_chain")
    body = refused(lambda: api.client.cancel(bob, sell["order_hash"]), 401)
    assert f"expected the signature of prosumer {alice.address}" in body["detail"]
    api.client.cancel(alice, sell["order_hash"])
    assert "already submitted" in refused(lambda: api.client.cancel(alice, sell["order_hash"]), 409)["detail"]
    api.wait_for(sell["order_hash"], "cancelled")


def test_privileged_writes_need_the_right_partys_fresh_signature(api, wallets, stranger) -> None:
    alice, _ = wallets
    ledger = api.ledger
    registration = {"account": stranger.address, "meter_id": 555, "bus": 5, "capacity_w": 10_000}
    unsigned = refused(lambda: api.client.request("POST", "/participants", body=registration), 401)
    assert f"needs the facilitator's signature ({ledger.roles.facilitator.address})" in unsigned["detail"]
    wrong = refused(lambda: api.client.request("POST", "/participants", body=registration, signer=alice), 403)
    assert f"{alice.address} is not the facilitator" in wrong["detail"]

    # A captured request cannot be replayed, nor sent stale, nor altered.
    content = json.dumps(registration).encode()
    headers = {"content-type": "application/json"} | sign_request(
        ledger.roles.facilitator, "POST", "/participants", content
    )
    assert api.client.http.post("/participants", content=content, headers=headers).status_code == 201
    replay = api.client.http.post("/participants", content=content, headers=headers)
    assert replay.status_code == 409 and "replay refused" in replay.json()["detail"]
    stale = sign_request(ledger.roles.facilitator, "POST", "/participants", content, timestamp=1_000_000_000)
    late = api.client.http.post("/participants", content=content, headers=JSON | stale)
    assert late.status_code == 401 and "allowed are 300 s either way" in late.json()["detail"]
    altered = json.dumps({**registration, "meter_id": 556}).encode()
    fresh = sign_request(ledger.roles.facilitator, "POST", "/participants", content)
    changed = api.client.http.post(
        "/participants", content=altered, headers={"content-type": "application/json"} | fresh
    )
    assert changed.status_code == 401 and "recovers to" in changed.json()["detail"]

    # Meter readings are the meter operator's, not the facilitator's.
    slot = api.next_slot()
    readings = {"readings": [{"account": alice.address, "net_wh": 1}]}
    body = refused(
        lambda: api.client.request(
            "POST", f"/slots/{slot}/meter-readings", body=readings, signer=ledger.roles.facilitator
        ),
        403,
    )
    assert "is not the meter operator" in body["detail"]


def test_registration_errors_change_nothing(api, wallets, stranger) -> None:
    alice, _ = wallets
    facilitator = api.ledger.roles.facilitator
    before = api.chain(lambda: api.ledger.chain.w3.eth.block_number)

    def register(**fields):
        body = {"account": stranger.address, "meter_id": 900, "bus": 5, "capacity_w": 10_000} | fields
        return api.client.request("POST", "/participants", body=body, signer=facilitator)

    assert refused(lambda: register(capacity_w=0), 422)["fields"][0]["field"] == "capacity_w"
    nobus = refused(lambda: register(bus=99_999), 422)
    assert nobus["error"] == "NetworkError" and "99999" in nobus["detail"]
    taken = refused(lambda: register(account=alice.address), 409)
    assert taken["error"] == "AlreadyRegistered"
    meter = refused(lambda: register(meter_id=100), 409)
    assert meter["error"] == "MeterIdTaken"
    assert api.chain(lambda: api.ledger.chain.w3.eth.block_number) == before
    assert refused(lambda: api.client.get(f"/participants/{stranger.address}"), 404)


def test_clearing_and_settlement_refusals_are_conflicts_with_reasons(api, wallets) -> None:
    alice, bob = wallets
    facilitator = api.ledger.roles.facilitator
    slot = api.next_slot()
    sell = api.client.place(alice, side=Side.SELL, delivery_start=slot, energy_wh=500, price_per_kwh=50_000)
    api.client.place(bob, side=Side.BUY, delivery_start=slot, energy_wh=500, price_per_kwh=60_000)
    api.wait_for(sell["order_hash"], "on_chain")
    early = refused(lambda: api.client.request("POST", f"/slots/{slot}/clearing", signer=facilitator), 409)
    assert early["error"] == "GateNotClosed"
    api.move_time_to(slot - 300)
    api.client.request("POST", f"/slots/{slot}/clearing", signer=facilitator)
    twice = refused(lambda: api.client.request("POST", f"/slots/{slot}/clearing", signer=facilitator), 409)
    assert twice["error"] == "SlotAlreadyCleared"
    unmetered = refused(lambda: api.client.request("POST", f"/slots/{slot}/settlement", signer=facilitator), 409)
    assert unmetered["error"] == "DeliveryNotEnded"
    assert api.client.get(f"/slots/{slot}/settlement")["status"] == "cleared"


def test_a_refused_second_clearing_leaves_the_committed_report_in_place(api, wallets, stranger) -> None:
    """A retried clearing of a committed slot is refused before anything is stored: the served
    report keeps hashing to the chain's, even when the retry would compute another report (here a
    participant registered since the commit changes the slot's baseline)."""
    alice, bob = wallets
    facilitator = api.ledger.roles.facilitator
    slot = api.next_slot()
    sell(api, alice, slot, 500, 50_000)
    placed = buy(api, bob, slot, 500, 60_000)
    api.wait_for(placed["order_hash"], "on_chain")
    api.move_time_to(slot - 300)
    committed = api.client.request("POST", f"/slots/{slot}/clearing", signer=facilitator)
    report = api.client.get(f"/slots/{slot}/network-report")
    assert report["report_hash"] == committed["network_report_hash"]
    loads = api.service.ctx.model.net.load
    api.register(
        stranger,
        meter_id=901,
        bus=int(loads.bus[loads.index.difference(report["report"]["baseline"]["replaced_loads"])[0]]),
    )
    again = refused(lambda: api.client.request("POST", f"/slots/{slot}/clearing", signer=facilitator), 409)
    assert again["error"] == "SlotAlreadyCleared"
    assert api.client.get(f"/slots/{slot}/network-report") == report


@pytest.mark.parametrize(
    "error",
    [
        "RequestPowerZero",
        "InvalidWindowSlots",
        "WindowNotOnSlotBoundary",
        "BidDeadlinePassed",
        "BidDeadlineNotBeforeWindow",
        "InvalidMinPerformance",
    ],
)
def test_a_flexibility_request_the_contract_refuses_is_a_422(error) -> None:
    """Each of these replaced the contract's InvalidRequest(string), which was a 422."""
    assert status_of(errors.FlexRejected("flexibility request rejected", error=error)) == 422

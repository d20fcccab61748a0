"""EnergyMarket orders: EIP-712 signatures from Python, relaying, replay, expiry, gate, escrow."""

from __future__ import annotations

import dataclasses

import pytest
from tests.conftest import DEPOSIT, make_order
from web3.logs import DISCARD

from gridledger.chain.slots import order_args
from gridledger.errors import (
    GateClosedError,
    InsufficientFunds,
    LedgerError,
    NotRegisteredError,
    OrderExpiredError,
    ReplayRejected,
    SignatureRejected,
)
from gridledger.market.orders import Order, Side, SignedOrder
from gridledger.sim.participants import make_prosumers
from gridledger.wallet.signing import order_hash


def test_signature_made_in_python_is_accepted_on_chain(ledger, prosumers, next_slot) -> None:
    alice = prosumers[0]
    slot = next_slot()
    order = make_order(alice, Side.BUY, slot, 1_500, 250_000)
    signed = ledger.sign(alice, order)

    receipt = ledger.relay_orders([signed])[0]

    # The digest Python signs is the one the contract computes.
    assert signed.order_hash == ledger.order_hash(order)
    assert signed.order_hash == order_hash(order, chain_id=ledger.chain.chain_id, market_address=ledger.market.address)
    events = ledger.market.events.OrderRecorded().process_receipt(receipt, errors=DISCARD)
    assert len(events) == 1
    args = order_args(events[0]["args"])  # the packed head and terms, unpacked
    assert args["prosumer"] == alice.address
    assert (args["deliveryStart"], args["energyWh"], args["pricePerKWh"]) == (slot, 1_500, 250_000)
    assert (args["side"], args["nonce"], args["expiry"]) == (int(Side.BUY), 0, slot)
    assert ledger.hash_of(Order.from_event(args)) == signed.order_hash
    assert ledger.next_nonce(alice.address) == 1
    # Buy orders escrow energy × limit price: 1.5 kWh × 0.25 = 0.375 tokens.
    assert ledger.account_of(alice.address) == (DEPOSIT - 375_000, 375_000)
    assert ledger.slot_state(slot).open_orders == 1


def test_tampered_signature_is_rejected_with_its_custom_error(ledger, prosumers, next_slot) -> None:
    alice = prosumers[0]
    signed = ledger.sign(alice, make_order(alice, Side.SELL, next_slot(), 800, 90_000))
    forged_r = bytes([signed.r[0] ^ 1]) + signed.r[1:]
    with pytest.raises(SignatureRejected) as info:
        ledger.relay_orders([dataclasses.replace(signed, r=forged_r)])
    assert info.value.error == "InvalidSignature"
    assert info.value.args_["prosumer"] == alice.address
    assert info.value.args_["recovered"] != alice.address
    assert ledger.next_nonce(alice.address) == 0


def test_order_changed_after_signing_is_rejected(ledger, prosumers, next_slot) -> None:
    alice = prosumers[0]
    signed = ledger.sign(alice, make_order(alice, Side.SELL, next_slot(), 800, 90_000))
    inflated = dataclasses.replace(signed.order, energy_wh=8_000)
    with pytest.raises(SignatureRejected, match="only the prosumer's own signature is accepted"):
        ledger.relay_orders([SignedOrder(inflated, signed.order_hash, signed.r, signed.vs)])
    assert ledger.slot_state(signed.order.delivery_start).open_orders == 0


def test_facilitator_cannot_sign_for_a_prosumer(ledger, prosumers, next_slot) -> None:
    alice, bob = prosumers[:2]
    order = make_order(alice, Side.BUY, next_slot(), 500, 200_000)
    by_bob = ledger.sign(bob, dataclasses.replace(order, prosumer=bob.address))
    with pytest.raises(SignatureRejected):
        ledger.relay_orders([SignedOrder(order, by_bob.order_hash, by_bob.r, by_bob.vs)])


def test_replay_is_rejected(ledger, prosumers, next_slot) -> None:
    alice = prosumers[0]
    signed = ledger.sign(alice, make_order(alice, Side.BUY, next_slot(), 500, 200_000))
    ledger.relay_orders([signed])
    before = ledger.account_of(alice.address)
    with pytest.raises(ReplayRejected, match=r"nonce 0 .* is used up: .* the lowest it may still use is 1") as info:
        ledger.relay_orders([signed])
    assert info.value.error == "NonceAlreadyUsed"
    assert ledger.account_of(alice.address) == before
    assert ledger.slot_state(signed.order.delivery_start).orders == 1


def test_nonces_only_go_up(ledger, prosumers, next_slot) -> None:
    """A prosumer may skip nonces, never go back: an order below the next nonce is refused."""
    alice = prosumers[0]
    slot = next_slot()
    ledger.relay_orders([ledger.sign(alice, make_order(alice, Side.SELL, slot, 500, 50_000, nonce=5))])
    assert ledger.next_nonce(alice.address) == 6
    lower = ledger.sign(alice, make_order(alice, Side.SELL, slot, 600, 50_000, nonce=4))
    with pytest.raises(ReplayRejected) as info:
        ledger.relay_orders([lower])
    assert info.value.args_ == {"prosumer": alice.address, "nonce": 4, "nextNonce": 6}
    too_large = ledger.sign(alice, make_order(alice, Side.SELL, slot, 600, 50_000, nonce=2**32 - 1))
    with pytest.raises(LedgerError, match="must be below 4,294,967,295") as large:
        ledger.relay_orders([too_large])
    assert large.value.error == "NonceTooLarge"
    assert ledger.next_nonce(alice.address) == 6
    assert ledger.slot_state(slot).orders == 1


def test_expired_order_is_rejected_with_times_in_the_message(ledger, prosumers, next_slot) -> None:
    alice = prosumers[0]
    slot = next_slot()
    now = ledger.chain.now()
    signed = ledger.sign(alice, make_order(alice, Side.BUY, slot, 500, 200_000, expiry=now - 60))
    with pytest.raises(OrderExpiredError, match=r"expired at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC") as info:
        ledger.relay_orders([signed])
    assert info.value.args_["expiry"] == now - 60


def test_order_after_gate_closure_is_rejected(ledger, prosumers, next_slot) -> None:
    alice = prosumers[0]
    slot = next_slot()
    ledger.chain.move_time_to(slot - 300)  # the gate closes 300 s before delivery
    signed = ledger.sign(alice, make_order(alice, Side.SELL, slot, 500, 50_000, expiry=slot + 900))
    with pytest.raises(GateClosedError, match="but the gate closed at") as info:
        ledger.relay_orders([signed])
    assert info.value.args_["gateClosure"] == slot - 300


def test_unregistered_signer_is_rejected(ledger, prosumers, next_slot) -> None:
    from eth_account import Account

    stranger = Account.create()
    signed = ledger.sign(stranger, make_order(stranger, Side.SELL, next_slot(), 500, 50_000))
    with pytest.raises(NotRegisteredError, match="not a registered participant"):
        ledger.relay_orders([signed])


def test_energy_above_the_connection_capacity_is_rejected(ledger, prosumers, next_slot) -> None:
    alice = prosumers[0]  # 30 kW connection: at most 7,500 Wh in a 15-minute slot
    signed = ledger.sign(alice, make_order(alice, Side.SELL, next_slot(), 7_501, 50_000))
    with pytest.raises(LedgerError, match="allowed is 1 to 7500 Wh") as info:
        ledger.relay_orders([signed])
    assert info.value.error == "InvalidEnergy"


def test_buy_order_needs_its_escrow(ledger, prosumers, next_slot) -> None:
    alice = prosumers[0]
    # 7.5 kWh at 20 tokens/kWh = 150 tokens, more than the 100 deposited.
    signed = ledger.sign(alice, make_order(alice, Side.BUY, next_slot(), 7_500, 20_000_000))
    with pytest.raises(InsufficientFunds, match=f"has {DEPOSIT} base units available .* 150000000 are needed"):
        ledger.relay_orders([signed])


def test_a_rejected_batch_leaves_no_partial_state(ledger, prosumers, next_slot) -> None:
    alice, bob = prosumers[:2]
    slot = next_slot()
    good = ledger.sign(alice, make_order(alice, Side.BUY, slot, 1_000, 200_000))
    bad = ledger.sign(bob, make_order(bob, Side.SELL, slot, 1_000, 50_000, expiry=ledger.chain.now() - 1))
    with pytest.raises(OrderExpiredError):
        ledger.relay_orders([good, bad])
    assert ledger.next_nonce(alice.address) == 0
    assert ledger.account_of(alice.address) == (DEPOSIT, 0)
    assert ledger.slot_state(slot).open_orders == 0
    # The good order alone still goes through afterwards.
    ledger.relay_orders([good])
    assert ledger.next_nonce(alice.address) == 1
    assert ledger.slot_state(slot).open_orders == 1


def test_prosumer_places_and_cancels_directly_and_gets_the_escrow_back(ledger, prosumers, next_slot) -> None:
    alice = prosumers[0]
    slot = next_slot()
    order = make_order(alice, Side.BUY, slot, 2_000, 300_000)
    ledger.place_order(alice, order)
    assert ledger.account_of(alice.address) == (DEPOSIT - 600_000, 600_000)
    receipt = ledger.cancel_order(alice, order)
    event = ledger.market.events.OrderCancelled().process_receipt(receipt, errors=DISCARD)[0]["args"]
    assert event["refund"] == 600_000
    assert ledger.account_of(alice.address) == (DEPOSIT, 0)
    assert ledger.is_cancelled(ledger.hash_of(order))
    state = ledger.slot_state(slot)
    assert (state.orders, state.cancelled_orders, state.open_orders) == (1, 1, 0)
    assert ledger.recorded_orders(slot) == []


def test_only_the_prosumer_places_or_cancels_its_order(ledger, prosumers, next_slot) -> None:
    alice, bob = prosumers[:2]
    order = make_order(alice, Side.SELL, next_slot(), 500, 50_000)
    with pytest.raises(SignatureRejected, match="only its prosumer"):
        ledger.place_order(bob, order)
    ledger.place_order(alice, order)
    with pytest.raises(SignatureRejected) as info:
        ledger.cancel_order(bob, order)
    assert info.value.error == "NotOrderOwner"


def test_cancelling_a_signed_order_before_relay_burns_its_nonce(ledger, prosumers, next_slot) -> None:
    alice = prosumers[0]
    order = make_order(alice, Side.SELL, next_slot(), 500, 50_000, nonce=7)
    signed = ledger.sign(alice, order)
    ledger.cancel_order(alice, order)
    assert ledger.next_nonce(alice.address) == 8  # nonce 7 burnt, with every lower one
    with pytest.raises(ReplayRejected):
        ledger.relay_orders([signed])
    assert not ledger.is_cancelled(signed.order_hash)  # nothing was recorded to cancel


def test_a_signed_cancellation_relayed_by_the_facilitator_refunds_the_escrow(ledger, prosumers, next_slot) -> None:
    alice, bob = prosumers[:2]
    signed = ledger.sign(alice, make_order(alice, Side.BUY, next_slot(), 1_000, 200_000, nonce=3))
    ledger.relay_orders([signed])
    assert ledger.account_of(alice.address) == (DEPOSIT - 200_000, 200_000)

    # Bob's signature, or Alice's over another order, cannot cancel it.
    for signer, over in ((bob, signed.order_hash), (alice, b"\x01" * 32)):
        r, vs = ledger.sign_cancellation(signer, over)
        with pytest.raises(SignatureRejected) as info:
            ledger.cancel_order_by_sig(signed.order, r, vs)
        assert info.value.error == "InvalidSignature"
    assert not ledger.is_cancelled(signed.order_hash)

    r, vs = ledger.sign_cancellation(alice, signed.order_hash)
    receipt = ledger.cancel_order_by_sig(signed.order, r, vs)
    event = ledger.market.events.OrderCancelled().process_receipt(receipt, errors=DISCARD)[0]["args"]
    assert (bytes(event["orderHash"]), event["refund"]) == (signed.order_hash, 200_000)
    assert ledger.account_of(alice.address) == (DEPOSIT, 0)
    assert ledger.is_cancelled(signed.order_hash)
    # A replayed cancellation finds nothing open.
    with pytest.raises(LedgerError) as replay:
        ledger.cancel_order_by_sig(signed.order, r, vs)
    assert replay.value.error == "OrderNotOpen"


def test_withdraw_more_than_available_is_refused(ledger, prosumers) -> None:
    alice = prosumers[0]
    with pytest.raises(InsufficientFunds, match="deposit more first"):
        ledger.withdraw(alice, DEPOSIT + 1)
    ledger.withdraw(alice, DEPOSIT)
    assert ledger.token_balance(alice.address) == DEPOSIT
    assert ledger.account_of(alice.address) == (0, 0)


def test_orders_from_many_prosumers_share_nothing_but_the_slot(ledger, next_slot) -> None:
    accounts = make_prosumers(ledger, count=5, deposit=DEPOSIT)
    slot = next_slot()
    signed = [ledger.sign(a, make_order(a, Side.SELL, slot, 100 + i, 50_000, nonce=i)) for i, a in enumerate(accounts)]
    ledger.relay_orders(signed, batch_size=2)  # three transactions
    recorded = ledger.recorded_orders(slot)
    assert [r.order_hash for r in recorded] == [s.order_hash for s in signed]  # arrival order


def test_an_order_signed_with_a_keystore_key_is_accepted(ledger, next_slot, tmp_path) -> None:
    from gridledger.wallet import keystore

    created = keystore.create("prosumer", "a long password", directory=tmp_path)
    ledger.register(created.address, meter_id=9_999, bus=3, capacity_w=5_000)
    wallet = keystore.load("prosumer", "a long password", directory=tmp_path)
    signed = ledger.sign(wallet, make_order(wallet, Side.SELL, next_slot(), 1_000, 80_000))
    ledger.relay_orders([signed])
    assert ledger.next_nonce(wallet.address) == 1
    assert [r.order_hash for r in ledger.recorded_orders(signed.order.delivery_start)] == [signed.order_hash]

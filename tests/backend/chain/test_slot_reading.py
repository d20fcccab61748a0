"""Reading a slot's orders from raw logs, confirmed by the slot's order chain on the ledger."""

from __future__ import annotations

import pytest
from tests.conftest import make_order

from gridledger.errors import LedgerError
from gridledger.market.orders import Side


def _two_batches(ledger, prosumers, slot):
    alice, bob, carol = prosumers
    first = [ledger.sign(alice, make_order(alice, Side.BUY, slot, 1_000, 250_000))]
    ledger.relay_orders(first)
    after_first = ledger.chain.w3.eth.block_number + 1
    second = [
        ledger.sign(bob, make_order(bob, Side.SELL, slot, 700, 90_000)),
        ledger.sign(carol, make_order(carol, Side.BUY, slot, 300, 200_000)),
    ]
    ledger.relay_orders(second)
    return [s.order for s in first + second], after_first


def test_a_slots_orders_are_read_in_arrival_order_with_their_hashes(ledger, prosumers, next_slot) -> None:
    slot = next_slot()
    sent, _ = _two_batches(ledger, prosumers, slot)
    read = ledger.slot_orders(slot)
    assert [s.recorded.order for s in read] == sent
    assert [s.position for s in read] == [0, 1, 2]
    assert [s.recorded.order_hash for s in read] == [ledger.order_hash(o) for o in sent]  # the contract's digest
    assert [s.cancelled for s in read] == [False, False, False]


def test_a_scan_started_too_late_is_repeated_from_the_deployment(ledger, prosumers, next_slot) -> None:
    slot = next_slot()
    sent, after_first = _two_batches(ledger, prosumers, slot)
    # The first order is before ``from_block``: the chain's count (3) and hash refuse the two read.
    assert [s.recorded.order for s in ledger.slot_orders(slot, from_block=after_first)] == sent


def test_orders_the_chain_does_not_confirm_raise(ledger, prosumers, next_slot, monkeypatch) -> None:
    slot = next_slot()
    _two_batches(ledger, prosumers, slot)
    real = ledger._slot_orders
    monkeypatch.setattr(ledger, "_slot_orders", lambda ds, start: real(ds, start)[::-1])  # out of order
    with pytest.raises(
        LedgerError, match=r"the 3 orders read from the logs of slot \d+ do not hash to its order chain"
    ):
        ledger.slot_orders(slot)
    monkeypatch.setattr(ledger, "_slot_orders", lambda ds, start: real(ds, start)[:2])  # one missing
    with pytest.raises(LedgerError, match=r"the 2 orders read .* \(3 orders\)"):
        ledger.recorded_orders(slot)

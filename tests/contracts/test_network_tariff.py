"""The DSO's network tariff per traded kWh: set before gate closure, all-in for buyers, charged
at settlement and paid into the DSO's account, visible per fill in the events."""

from __future__ import annotations

import pytest
from tests.conftest import DEPOSIT, REPORT, make_order, market_total
from web3.logs import DISCARD

from gridledger.chain.slots import unpack_outcomes
from gridledger.errors import ClearingRejected, LedgerError
from gridledger.market.orders import Side
from gridledger.settlement.rules import cost, revenue


def test_the_dso_sets_the_tariff_of_consecutive_slots_before_their_gates_close(ledger, next_slot) -> None:
    slot = next_slot()
    receipt = ledger.set_network_tariff(slot, [10_000, 20_000, 30_000])
    assert [ledger.network_tariff(slot + 900 * k) for k in range(4)] == [10_000, 20_000, 30_000, 0]
    (event,) = ledger.market.events.NetworkTariffSet().process_receipt(receipt, errors=DISCARD)
    assert (event["args"]["firstDeliveryStart"], event["args"]["perKWh"]) == (slot, [10_000, 20_000, 30_000])
    assert ledger.slot_state(slot).network_tariff_per_kwh == 10_000

    def refused(error, call, account=None):
        with pytest.raises(LedgerError) as info:
            ledger.tx.send(account or ledger.roles.dso, call, action="set the tariff")
        assert info.value.error == error, info.value
        assert [ledger.network_tariff(slot + 900 * k) for k in range(3)] == [10_000, 20_000, 30_000]
        return info.value

    set_tariff = ledger.market.functions.setNetworkTariff
    refused("AccessControlUnauthorizedAccount", set_tariff(slot, [1]), ledger.roles.facilitator)
    refused("EmptyTariff", set_tariff(slot, []))
    refused("InvalidDeliveryStart", set_tariff(slot + 1, [1]))
    ledger.chain.move_time_to(slot - 300)  # the first slot's gate closes; the next ones' are open
    closed = refused("TariffGateClosed", set_tariff(slot, [1, 2]))
    assert (closed.args_["deliveryStart"], closed.args_["gateClosure"]) == (slot, slot - 300)
    assert "announced before gate closure" in str(closed)
    ledger.set_network_tariff(slot + 900, [25_000])
    assert ledger.network_tariff(slot + 900) == 25_000


@pytest.fixture
def tariffed(ledger, prosumers, next_slot):
    """A tariff of 0.045679/kWh; Alice bids 0.25 all-in for 1 kWh, Bob offers 777 Wh at 0.10."""
    alice, bob = prosumers[:2]
    slot = next_slot()
    ledger.set_network_tariff(slot, [45_679])
    buy = make_order(alice, Side.BUY, slot, 1_000, 250_000)
    sell = make_order(bob, Side.SELL, slot, 777, 100_000)
    ledger.relay_orders([ledger.sign(alice, buy), ledger.sign(bob, sell)])
    ledger.chain.move_time_to(slot - 300)
    return slot, buy, sell


def test_a_buyers_limit_is_all_in(ledger, tariffed) -> None:
    slot, buy, sell = tariffed
    # 0.204322 + 0.045679 = 0.250001 > 0.25: the buyer's limit would be crossed.
    with pytest.raises(ClearingRejected, match=r"plus the network tariff 0\.0457 token/kWh crosses the limit") as info:
        ledger.commit_clearing(slot, 204_322, [(buy, 777), (sell, 777)], **REPORT)
    assert info.value.error == "PriceBeyondLimit"
    assert info.value.args_["networkTariffPerKWh"] == 45_679
    assert ledger.slot_state(slot).status == "open"
    ledger.commit_clearing(slot, 204_321, [(buy, 777), (sell, 777)], **REPORT)  # exactly 0.25 all-in
    assert ledger.slot_state(slot).status == "cleared"


def test_settlement_charges_the_buyer_the_tariff_and_pays_it_to_the_dso(ledger, prosumers, tariffed) -> None:
    slot, buy, sell = tariffed
    alice, bob = prosumers[:2]
    dso, balancing = ledger.roles.dso.address, ledger.roles.balancing.address
    price, tariff, filled = 123_457, 45_679, 777
    (receipt,) = ledger.commit_clearing(slot, price, [(buy, filled), (sell, filled)], **REPORT)
    # The rule, to the base unit: the buyer pays ⌈F·(p+t)⌉ of which ⌈F·(p+t)⌉ − ⌈F·p⌉ is the
    # network charge; the seller gets ⌊F·p⌋.
    all_in, base, paid_out = cost(filled, price + tariff), cost(filled, price), revenue(filled, price)
    assert (all_in, base, paid_out) == (131_419, 95_927, 95_926)
    charge = all_in - base
    filled_events = ledger.market.events.OrderFilled().process_receipt(receipt, errors=DISCARD)
    assert sorted((e["args"]["cost"], e["args"]["networkCharge"]) for e in filled_events) == [
        (paid_out, 0),
        (base, charge),
    ]

    ledger.chain.move_time_to(slot + 900)
    ledger.post_meter_readings(slot, {alice.address: filled, bob.address: -filled})
    parties = [p.address for p in prosumers] + [dso, balancing]
    (receipt,) = ledger.settle(slot, [(buy, filled), (sell, filled)])
    assert ledger.account_of(alice.address) == (DEPOSIT - all_in, 0)
    assert ledger.account_of(bob.address) == (DEPOSIT + paid_out, 0)
    assert ledger.account_of(dso) == (charge, 0)
    assert ledger.account_of(balancing) == (base - paid_out, 0)  # the pot's rounding remainder
    (chunk,) = ledger.market.events.FillsSettled().process_receipt(receipt, errors=DISCARD)
    outcomes = unpack_outcomes(chunk["args"]["outcomes"])
    assert [o.network_charge for o in outcomes] == [charge, 0]
    (settled,) = ledger.market.events.SlotSettled().process_receipt(receipt, errors=DISCARD)
    assert settled["args"]["networkCharges"] == charge
    assert ledger.token_balance(ledger.market.address) == market_total(ledger, parties, [slot])

    # The DSO takes its charges out of the market like any account.
    ledger.fund_gas(dso, 10**18)
    ledger.withdraw(ledger.roles.dso, charge)
    assert ledger.token_balance(dso) == charge

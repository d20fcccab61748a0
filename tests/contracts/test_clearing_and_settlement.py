"""EnergyMarket clearing commits and metered settlement: checks, payments, conservation."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import DEPOSIT, REPORT, make_order, market_total, open_ledger
from web3.logs import DISCARD

from gridledger.chain.slots import unpack_outcomes
from gridledger.errors import ClearingRejected, LedgerError, SettlementRejected
from gridledger.market.book import clear_recorded
from gridledger.market.orders import Side
from gridledger.settlement.rules import cost, settle_slot
from gridledger.sim.participants import make_prosumers


@pytest.fixture
def two_sided(ledger, prosumers, next_slot):
    """Alice bids 1,000 Wh at 0.30, Bob offers 800 Wh at 0.10, both recorded; gate still open."""
    alice, bob = prosumers[:2]
    slot = next_slot()
    buy = make_order(alice, Side.BUY, slot, 1_000, 300_000)
    sell = make_order(bob, Side.SELL, slot, 800, 100_000)
    ledger.relay_orders([ledger.sign(alice, buy), ledger.sign(bob, sell)])
    return slot, buy, sell


def test_commit_fixes_the_price_and_settlement_pays_it_and_releases_unused_escrow(ledger, prosumers, two_sided) -> None:
    slot, buy, sell = two_sided
    alice, bob = prosumers[:2]
    ledger.chain.move_time_to(slot - 300)
    (receipt,) = ledger.commit_clearing(slot, 200_000, [(buy, 800), (sell, 800)], **REPORT)

    state = ledger.slot_state(slot)
    assert (state.status, state.clearing_price_per_kwh, state.pot, state.chunks) == ("cleared", 200_000, 0, 1)
    # A commit moves no money: Alice's escrow of 1 kWh × 0.30 stays locked until settlement.
    assert ledger.account_of(alice.address) == (DEPOSIT - 300_000, 300_000)
    filled = ledger.market.events.OrderFilled().process_receipt(receipt, errors=DISCARD)
    assert sorted((e["args"]["filledWh"], e["args"]["cost"], e["args"]["networkCharge"]) for e in filled) == [
        (800, 160_000, 0),
        (800, 160_000, 0),
    ]
    cleared = ledger.market.events.SlotCleared().process_receipt(receipt, errors=DISCARD)[0]["args"]
    assert (cleared["tradedWh"], cleared["networkTariffPerKWh"]) == (800, 0)
    assert bytes(cleared["fillsHash"]) == state.fills_hash

    ledger.chain.move_time_to(slot + 900)
    ledger.post_meter_readings(slot, {alice.address: 800, bob.address: -800})
    ledger.settle(slot, [(buy, 800), (sell, 800)])
    # Alice pays 0.8 kWh × 0.20 and gets the rest of her escrow back; Bob is paid the same.
    assert ledger.account_of(alice.address) == (DEPOSIT - 160_000, 0)
    assert ledger.account_of(bob.address) == (DEPOSIT + 160_000, 0)


@pytest.mark.parametrize(
    ("price", "fills", "error", "match"),
    [
        (200_000, (900, 900), "FillExceedsOrder", "exceeds its 800 Wh"),
        (350_000, (800, 800), "PriceBeyondLimit", "crosses the limit 0.3000"),
        (50_000, (800, 800), "PriceBeyondLimit", "crosses the limit 0.1000"),
        (200_000, (800, 700), "EnergyImbalance", "bought energy 800 Wh differs from sold energy 700 Wh"),
    ],
)
def test_commit_refuses_results_that_break_an_order(ledger, two_sided, price, fills, error, match) -> None:
    slot, buy, sell = two_sided
    ledger.chain.move_time_to(slot - 300)
    with pytest.raises(ClearingRejected, match=match) as info:
        ledger.commit_clearing(slot, price, [(buy, fills[0]), (sell, fills[1])], **REPORT)
    assert info.value.error == error
    assert ledger.slot_state(slot).status == "open"
    assert ledger.slot_state(slot).chunks == 0


def test_commit_needs_a_network_report(ledger, two_sided) -> None:
    slot, buy, sell = two_sided
    ledger.chain.move_time_to(slot - 300)
    with pytest.raises(ClearingRejected, match="has no network validation report") as info:
        ledger.commit_clearing(
            slot,
            200_000,
            [(buy, 800), (sell, 800)],
            network_report_hash=b"\0" * 32,
            network_model_version=REPORT["network_model_version"],
        )
    assert info.value.error == "NetworkReportMissing"
    (receipt,) = ledger.commit_clearing(slot, 200_000, [(buy, 800), (sell, 800)], **REPORT)
    assert ledger.slot_state(slot).network_report_hash == REPORT["network_report_hash"]
    cleared = ledger.market.events.SlotCleared().process_receipt(receipt, errors=DISCARD)[0]["args"]
    assert bytes(cleared["networkModelVersion"]) == REPORT["network_model_version"]


def test_commit_waits_for_gate_closure_and_happens_once(ledger, two_sided) -> None:
    slot, buy, sell = two_sided
    with pytest.raises(ClearingRejected, match="before its gate closes") as info:
        ledger.commit_clearing(slot, 200_000, [(buy, 800), (sell, 800)], **REPORT)
    assert info.value.error == "GateNotClosed"
    ledger.chain.move_time_to(slot - 300)
    ledger.commit_clearing(slot, 200_000, [(buy, 800), (sell, 800)], **REPORT)
    with pytest.raises(ClearingRejected, match="already cleared"):
        ledger.commit_clearing(slot, 200_000, [(buy, 800), (sell, 800)], **REPORT)


def test_commit_must_address_every_open_order_once(ledger, two_sided) -> None:
    slot, buy, _ = two_sided
    ledger.chain.move_time_to(slot - 300)
    with pytest.raises(ClearingRejected, match=r"lists 1 orders but slot .* has 2 recorded orders") as short:
        ledger.commit_clearing(slot, 0, [(buy, 0)], **REPORT)
    assert short.value.error == "IncompleteClearing"
    with pytest.raises(ClearingRejected, match="not the slot's recorded orders in arrival order") as info:
        ledger.commit_clearing(slot, 0, [(buy, 0), (buy, 0)], **REPORT)
    assert info.value.error == "OrdersMismatch"
    assert ledger.slot_state(slot).status == "open"


def test_only_the_facilitator_commits(ledger, prosumers, two_sided) -> None:
    slot, buy, sell = two_sided
    ledger.chain.move_time_to(slot - 300)
    fills = [item.as_fill() for item in ledger.clearing_items(slot, [(buy, 800), (sell, 800)])]
    call = ledger.market.functions.commitClearing(slot, 200_000, *REPORT.values(), 0, 1, fills)
    with pytest.raises(LedgerError, match="lacks the role") as info:
        ledger.tx.send(prosumers[0], call, action="commit by a prosumer")
    assert info.value.error == "AccessControlUnauthorizedAccount"


def test_settlement_pays_delivered_energy_and_prices_deviations(ledger, prosumers, two_sided) -> None:
    slot, buy, sell = two_sided
    alice, bob = prosumers[:2]
    balancing = ledger.roles.balancing.address
    fills = [(buy, 800), (sell, 800)]
    ledger.chain.move_time_to(slot - 300)
    ledger.commit_clearing(slot, 200_000, fills, **REPORT)
    ledger.chain.move_time_to(slot + 900)
    # Alice took 700 Wh of her 800 (surplus 100); Bob fed in 750 of his 800 (short 50).
    ledger.post_meter_readings(slot, {alice.address: 700, bob.address: -750})
    (receipt,) = ledger.settle(slot, fills)

    # Shortfall 0.40/kWh, surplus 0.05/kWh (the deployment's defaults).
    assert ledger.account_of(bob.address) == (DEPOSIT + 160_000 - 20_000, 0)
    assert ledger.account_of(alice.address) == (DEPOSIT - 160_000 + 5_000, 0)
    assert ledger.account_of(balancing) == (15_000, 0)
    settled = ledger.market.events.SlotSettled().process_receipt(receipt, errors=DISCARD)[0]["args"]
    assert (settled["paidToSellers"], settled["toBalancing"], settled["fromBalancing"], settled["networkCharges"]) == (
        160_000,
        20_000,
        5_000,
        0,
    )
    # Each fill's outcome is in the chunk's log: deviation, payment, shortfall charge, network charge.
    (chunk,) = ledger.market.events.FillsSettled().process_receipt(receipt, errors=DISCARD)
    outcomes = unpack_outcomes(chunk["args"]["outcomes"])
    assert [(o.deviation_wh, o.payment, o.imbalance_charge, o.network_charge) for o in outcomes] == [
        (100, 5_000, 0, 0),
        (50, 160_000, 20_000, 0),
    ]
    assert ledger.slot_state(slot).status == "settled"
    # The Python mirror of the rule agrees with the chain.
    mirror = settle_slot(
        fills,
        {alice.address: 700, bob.address: -750},
        price_per_kwh=200_000,
        shortfall_price_per_kwh=400_000,
        surplus_price_per_kwh=50_000,
    )
    assert [(f.deviation_wh, f.payment, f.charge) for f in mirror.fills] == [
        (100, 5_000, 0),
        (50, 160_000, 20_000),
    ]
    # Tokens are conserved: the market holds exactly what it owes.
    owed = market_total(ledger, [p.address for p in prosumers] + [balancing], [slot])
    assert ledger.token_balance(ledger.market.address) == owed == 3 * DEPOSIT


def test_no_slot_settles_twice(ledger, prosumers, two_sided) -> None:
    slot, buy, sell = two_sided
    fills = [(buy, 800), (sell, 800)]
    ledger.chain.move_time_to(slot - 300)
    ledger.commit_clearing(slot, 200_000, fills, **REPORT)
    ledger.chain.move_time_to(slot + 900)
    ledger.post_meter_readings(slot, {prosumers[0].address: 800, prosumers[1].address: -800})
    ledger.settle(slot, fills)
    with pytest.raises(SettlementRejected, match="its status is settled") as info:
        ledger.settle(slot, fills)
    assert info.value.error == "SlotNotCleared"


def test_settlement_refusals(ledger, prosumers, two_sided) -> None:
    slot, buy, sell = two_sided
    alice, bob = prosumers[:2]
    fills = [(buy, 800), (sell, 800)]
    ledger.chain.move_time_to(slot - 300)
    ledger.commit_clearing(slot, 200_000, fills, **REPORT)
    with pytest.raises(SettlementRejected, match="ends at") as info:
        ledger.settle(slot, fills)
    assert info.value.error == "DeliveryNotEnded"
    ledger.chain.move_time_to(slot + 900)
    ledger.post_meter_readings(slot, {alice.address: 800})
    with pytest.raises(SettlementRejected, match="without a meter reading of " + bob.address):
        ledger.settle(slot, fills)
    with pytest.raises(SettlementRejected, match="readings are final"):
        ledger.post_meter_readings(slot, {alice.address: 100})
    ledger.post_meter_readings(slot, {bob.address: -800})
    with pytest.raises(SettlementRejected, match="not the committed ones") as info:
        ledger.settle(slot, [(buy, 700), (sell, 700)])
    assert info.value.error == "FillsMismatch"
    assert ledger.account_of(alice.address) == (DEPOSIT - 300_000, 300_000)  # nothing paid: escrow still locked
    assert ledger.slot_state(slot).status == "cleared"
    ledger.settle(slot, fills)


def test_a_seller_that_cannot_cover_its_shortfall_leaves_it_to_the_balancing_account(ledger, next_slot) -> None:
    alice, bob = make_prosumers(ledger, count=2, deposit=DEPOSIT)
    ledger.withdraw(bob, DEPOSIT)  # Bob has nothing in the market
    slot = next_slot()
    buy = make_order(alice, Side.BUY, slot, 1_000, 100_000)
    sell = make_order(bob, Side.SELL, slot, 1_000, 100_000)
    ledger.relay_orders([ledger.sign(alice, buy), ledger.sign(bob, sell)])
    ledger.chain.move_time_to(slot - 300)
    ledger.commit_clearing(slot, 100_000, [(buy, 1_000), (sell, 1_000)], **REPORT)
    ledger.chain.move_time_to(slot + 900)
    ledger.post_meter_readings(slot, {alice.address: 1_000, bob.address: 0})  # Bob delivered nothing
    (receipt,) = ledger.settle(slot, [(buy, 1_000), (sell, 1_000)])
    # Bob is credited 0.10 and owes 0.40: he pays what he has (0.10); 0.30 goes uncollected.
    uncollected = ledger.market.events.ImbalanceUncollected().process_receipt(receipt, errors=DISCARD)[0]["args"]
    assert (uncollected["account"], uncollected["amount"]) == (bob.address, 300_000)
    assert ledger.account_of(bob.address) == (0, 0)
    assert ledger.account_of(ledger.roles.balancing.address) == (100_000, 0)


def test_one_prosumers_metered_energy_is_not_counted_twice(ledger, prosumers, next_slot) -> None:
    alice, bob = prosumers[:2]
    slot = next_slot()
    sells = [make_order(bob, Side.SELL, slot, 500, 100_000, nonce=n) for n in range(2)]
    buy = make_order(alice, Side.BUY, slot, 1_000, 100_000)
    ledger.relay_orders([ledger.sign(bob, s) for s in sells] + [ledger.sign(alice, buy)])
    fills = [(sells[0], 500), (sells[1], 500), (buy, 1_000)]
    ledger.chain.move_time_to(slot - 300)
    ledger.commit_clearing(slot, 100_000, fills, **REPORT)
    ledger.chain.move_time_to(slot + 900)
    ledger.post_meter_readings(slot, {alice.address: 1_000, bob.address: -600})
    (receipt,) = ledger.settle(slot, fills)
    (chunk,) = ledger.market.events.FillsSettled().process_receipt(receipt, errors=DISCARD)
    deviations = [o.deviation_wh for o in unpack_outcomes(chunk["args"]["outcomes"])]
    assert deviations == [0, 400, 0]  # 600 Wh fed in cover the first fill and 100 Wh of the second


# ───────────── property: any cleared and metered slot conserves tokens and matches the mirror ─────────────


@pytest.fixture(scope="module")
def shared(build):
    ledger = open_ledger(build)
    accounts = make_prosumers(ledger, count=4, deposit=DEPOSIT)
    # The balancing account pays surplus buy-backs, so it needs a float of its own.
    balancing = ledger.roles.balancing
    ledger.fund_gas(balancing.address, 10**18)
    ledger.mint(balancing.address, 1_000 * DEPOSIT)
    ledger.deposit(balancing, 1_000 * DEPOSIT)
    return ledger, accounts, {a.address: 0 for a in accounts}


book = st.lists(
    st.tuples(
        st.integers(0, 3),
        st.sampled_from([Side.BUY, Side.SELL]),
        st.integers(1, 3_000),
        st.integers(50_000, 300_000),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(book, st.lists(st.integers(-4_000, 4_000), min_size=4, max_size=4))
def test_any_cleared_and_metered_slot_conserves_tokens(shared, orders, readings) -> None:
    ledger, accounts, nonces = shared
    slot = (ledger.chain.now() // 900 + 4) * 900
    signed = []
    for who, side, energy, price in orders:
        account = accounts[who]
        signed.append(
            ledger.sign(account, make_order(account, side, slot, energy, price, nonce=nonces[account.address]))
        )
        nonces[account.address] += 1
    ledger.relay_orders(signed)
    recorded = ledger.recorded_orders(slot)
    fills, result = clear_recorded(recorded)
    ledger.chain.move_time_to(slot - 300)
    ledger.commit_clearing(slot, result.ledger_price, fills, **REPORT)
    ledger.chain.move_time_to(slot + 900)
    metered = {a.address: readings[i] for i, a in enumerate(accounts)}
    ledger.post_meter_readings(slot, metered)
    parties = [a.address for a in accounts] + [ledger.roles.balancing.address]
    before = {a: ledger.account_of(a)[0] for a in parties}
    ledger.settle(slot, fills)

    assert all(locked == 0 for _, locked in (ledger.account_of(a) for a in parties))
    assert ledger.token_balance(ledger.market.address) == market_total(ledger, parties, [slot])
    mirror = settle_slot(
        fills,
        metered,
        price_per_kwh=result.ledger_price,
        shortfall_price_per_kwh=400_000,
        surplus_price_per_kwh=50_000,
        available=before,
    )
    expected = dict(before)
    # A buyer's escrow comes back at settlement less what it pays at the clearing price.
    for order, filled in fills:
        if order.side is Side.BUY:
            expected[order.prosumer] += order.max_cost - cost(filled, result.ledger_price)
    for f in mirror.fills:
        expected[f.prosumer] += f.payment - f.collected
    expected[ledger.roles.balancing.address] += mirror.to_balancing - mirror.from_balancing
    assert {a: ledger.account_of(a)[0] for a in parties} == expected


def test_imbalance_prices_keep_the_shortfall_price_at_or_above_the_surplus_price(ledger) -> None:
    admin = ledger.roles.admin
    before = ledger.market.functions.imbalancePrices().call()
    inverted = ledger.market.functions.setImbalancePrices(40_000, 50_000)
    with pytest.raises(LedgerError, match=r"shortfall price 0\.0400 token/kWh is below the surplus price") as info:
        ledger.tx.send(admin, inverted, action="set imbalance prices")
    assert info.value.error == "ImbalancePricesInverted"
    assert ledger.market.functions.imbalancePrices().call() == before
    ledger.tx.send(admin, ledger.market.functions.setImbalancePrices(50_000, 50_000), action="set imbalance prices")
    assert ledger.market.functions.imbalancePrices().call() == [50_000, 50_000]

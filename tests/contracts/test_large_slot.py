"""A slot of 3,000 orders clears and settles in chunks, each transaction under EIP-7825's cap,
and settles exactly by the rule (issue 11 item 1).

Ten prosumers place 300 orders each, so every prosumer has fills on one side in all three
chunks: its metered energy is shared out across transactions. One order deep in the slot (past
the first checkpoint of the order chain) is cancelled before the gate closes.
"""

from __future__ import annotations

from tests.conftest import DEPOSIT, REPORT, make_order, market_total, open_ledger

from gridledger.chain.ledger import CLEARING_CHUNK, fills_hash
from gridledger.chain.transactions import MAX_TX_GAS
from gridledger.market.book import clear_recorded
from gridledger.market.orders import Side
from gridledger.settlement.rules import cost, settle_slot
from gridledger.sim.participants import make_prosumers

PROSUMERS = 10
ORDERS_EACH = 300  # 3,000 orders: three chunks of 1,000


def test_a_slot_of_3000_orders_clears_and_settles_in_chunks(build) -> None:
    ledger = open_ledger(build)
    accounts = make_prosumers(ledger, count=PROSUMERS, deposit=DEPOSIT)
    balancing = ledger.roles.balancing
    ledger.fund_gas(balancing.address, 10**18)
    ledger.mint(balancing.address, 100 * DEPOSIT)
    ledger.deposit(balancing, 100 * DEPOSIT)
    slot = (ledger.chain.now() // 900 + 4) * 900

    # Buyers (even prosumers) bid 0.15 to 0.25, sellers offer 0.10 to 0.20: about half trades.
    signed = []
    for n in range(ORDERS_EACH):
        for i, account in enumerate(accounts):
            side = Side.BUY if i % 2 == 0 else Side.SELL
            price = (150_000 if side is Side.BUY else 100_000) + (n * 7_919 + i * 104_729) % 100_001
            signed.append(ledger.sign(account, make_order(account, side, slot, 10 + (n + i) % 90, price, nonce=n)))
    receipts = ledger.relay_orders(signed, batch_size=300)
    assert ledger.slot_state(slot).orders == PROSUMERS * ORDERS_EACH

    # The order recorded at position 2,500: its proof starts at the checkpoint after order 2,304.
    victim = signed[2_500]
    before = ledger.account_of(victim.order.prosumer)
    owner = next(a for a in accounts if a.address == victim.order.prosumer)
    receipts.append(ledger.cancel_order(owner, victim.order))
    refund = victim.order.max_cost if victim.order.side is Side.BUY else 0
    assert ledger.account_of(victim.order.prosumer) == (before[0] + refund, before[1] - refund)

    ledger.chain.move_time_to(slot - 300)
    recorded = ledger.recorded_orders(slot)
    assert len(recorded) == PROSUMERS * ORDERS_EACH - 1
    fills, result = clear_recorded(recorded)
    traded = sum(f for o, f in fills if o.side is Side.BUY)
    assert 0 < sum(1 for _, f in fills if f) < len(fills)
    receipts += ledger.commit_clearing(slot, result.ledger_price, fills, **REPORT)
    state = ledger.slot_state(slot)
    assert (state.status, state.chunks, state.cancelled_orders) == ("cleared", 3, 1)
    assert ledger.clearing_chunk_sizes(slot) == [CLEARING_CHUNK] * (PROSUMERS * ORDERS_EACH // CLEARING_CHUNK)
    assert state.fills_hash == fills_hash((r.order_hash, f) for r, (_, f) in zip(recorded, fills, strict=True))

    ledger.chain.move_time_to(slot + 900)
    # Every prosumer delivers or takes 80 % of what it traded.
    readings = {}
    for account in accounts:
        net = sum((f if o.side is Side.BUY else -f) for o, f in fills if o.prosumer == account.address)
        readings[account.address] = net * 4 // 5
    receipts += ledger.post_meter_readings(slot, readings)
    parties = [a.address for a in accounts] + [balancing.address]
    available = {a: ledger.account_of(a)[0] for a in parties}
    receipts += ledger.settle(slot, fills)
    assert ledger.slot_state(slot).status == "settled"
    assert all(r["gasUsed"] < MAX_TX_GAS for r in receipts)

    mirror = settle_slot(
        fills,
        readings,
        price_per_kwh=result.ledger_price,
        shortfall_price_per_kwh=400_000,
        surplus_price_per_kwh=50_000,
        available=available,
    )
    expected = dict(available)
    for order, filled in fills:
        if order.side is Side.BUY:
            expected[order.prosumer] += order.max_cost - cost(filled, result.ledger_price)
    for f in mirror.fills:
        expected[f.prosumer] += f.payment - f.collected
    expected[balancing.address] += mirror.to_balancing - mirror.from_balancing
    assert {a: ledger.account_of(a)[0] for a in parties} == expected
    assert sum(f.deviation_wh for f in mirror.fills) > 0 and traded > 0
    assert all(ledger.account_of(a)[1] == 0 for a in parties)
    assert ledger.token_balance(ledger.market.address) == market_total(ledger, parties, [slot])

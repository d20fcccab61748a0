"""A slot in several transactions: clearing and settlement chunks, checked against the order
chain and the committed chunk hashes; readings packed by participant number.

Every refusal is asserted by its custom error, and a refused call must change nothing.
"""

from __future__ import annotations

import dataclasses

import pytest
from tests.conftest import DEPOSIT, REPORT, make_order, market_total, open_ledger

from gridledger.chain.slots import ClearingItem, split
from gridledger.errors import ClearingRejected, LedgerError, NotRegisteredError, SettlementRejected
from gridledger.market.book import clear_recorded
from gridledger.market.orders import Order, Side
from gridledger.settlement.rules import cost, settle_slot
from gridledger.sim.participants import make_prosumers

PROSUMERS = 4
CHUNK = 4  # ten orders: chunks of 4, 4 and 2


@pytest.fixture(scope="module")
def world(build):
    """One chain for the module (each test uses slots of its own), with a funded balancing account."""
    ledger = open_ledger(build)
    accounts = make_prosumers(ledger, count=PROSUMERS, deposit=DEPOSIT)
    balancing = ledger.roles.balancing
    ledger.fund_gas(balancing.address, 10**18)
    ledger.mint(balancing.address, 100 * DEPOSIT)
    ledger.deposit(balancing, 100 * DEPOSIT)
    return ledger, accounts, {a.address: 0 for a in accounts}


def ten_orders(world) -> tuple[int, list[tuple[Order, int]], int]:
    """Ten crossing orders in a fresh slot (prosumer k buys or sells by turns, so each has fills
    in several chunks); returns the slot, every order's fill and the clearing price."""
    ledger, accounts, nonces = world
    slot = (ledger.chain.now() // 900 + 4) * 900
    signed = []
    for k in range(10):
        account = accounts[k % PROSUMERS]
        side = Side.BUY if k % 2 == 0 else Side.SELL
        price = 250_001 if side is Side.BUY else 90_001  # odd, so rounding shows
        order = make_order(account, side, slot, 300 + 10 * k, price, nonce=nonces[account.address])
        nonces[account.address] += 1
        signed.append(ledger.sign(account, order))
    ledger.relay_orders(signed)
    fills, result = clear_recorded(ledger.recorded_orders(slot))
    return slot, fills, result.ledger_price


def commit_in_chunks(ledger, slot, price, items, chunks=None) -> None:
    parts = split(items, CHUNK)
    for k, part in enumerate(parts if chunks is None else chunks):
        ledger.commit_chunk(slot, price, part, chunk=k, chunks=len(parts), **REPORT)


def snapshot(ledger, accounts, slot):
    """What a refused call must leave as it was."""
    state = ledger.slot_state(slot)
    return [ledger.account_of(a.address) for a in accounts], state


def test_a_slot_clears_and_settles_in_chunks_by_the_rule(world) -> None:
    ledger, accounts, _ = world
    slot, fills, price = ten_orders(world)
    ledger.chain.move_time_to(slot - 300)
    receipts = ledger.commit_clearing(slot, price, fills, **REPORT, chunk_size=CHUNK)
    assert len(receipts) == 3
    state = ledger.slot_state(slot)
    assert (state.status, state.chunks, state.orders) == ("cleared", 3, 10)
    assert ledger.clearing_chunk_sizes(slot) == [4, 4, 2]

    ledger.chain.move_time_to(slot + 900)
    # Each prosumer feeds in or takes less than its fills, so metered energy is shared out
    # across its fills in several chunks.
    readings = {}
    for a in accounts:
        mine = [(o, f) for o, f in fills if o.prosumer == a.address]
        bought = sum(f for o, f in mine if o.side is Side.BUY)
        sold = sum(f for o, f in mine if o.side is Side.SELL)
        readings[a.address] = (bought - sold) * 3 // 4
    ledger.post_meter_readings(slot, readings)
    parties = [a.address for a in accounts] + [ledger.roles.balancing.address]
    before = {a: ledger.account_of(a)[0] for a in parties}
    receipts = ledger.settle(slot, fills)
    assert len(receipts) == 3
    assert ledger.slot_state(slot).status == "settled"

    mirror = settle_slot(
        fills,
        readings,
        price_per_kwh=price,
        shortfall_price_per_kwh=400_000,
        surplus_price_per_kwh=50_000,
        available=before,
    )
    expected = dict(before)
    for order, filled in fills:
        if order.side is Side.BUY:
            expected[order.prosumer] += order.max_cost - cost(filled, price)
    for f in mirror.fills:
        expected[f.prosumer] += f.payment - f.collected
    expected[ledger.roles.balancing.address] += mirror.to_balancing - mirror.from_balancing
    assert {a: ledger.account_of(a)[0] for a in parties} == expected
    assert all(ledger.account_of(a)[1] == 0 for a in parties)
    assert ledger.token_balance(ledger.market.address) == market_total(ledger, parties, [slot])


def test_clearing_chunks_go_in_order_once_each_with_the_same_terms(world) -> None:
    ledger, accounts, _ = world
    slot, fills, price = ten_orders(world)
    ledger.chain.move_time_to(slot - 300)
    items = ledger.clearing_items(slot, fills)
    parts = split(items, CHUNK)
    terms = {"chunks": 3, **REPORT}

    def refused(error, *, chunk, part, price_=price, chunks=3):
        before = snapshot(ledger, accounts, slot)
        with pytest.raises(LedgerError) as info:
            ledger.commit_chunk(slot, price_, part, chunk=chunk, **{**terms, "chunks": chunks})
        assert info.value.error == error, info.value
        assert snapshot(ledger, accounts, slot) == before
        return info.value

    # Nothing started: chunk 1 cannot come first.
    assert refused("ChunkOutOfOrder", chunk=1, part=parts[1]).args_ == {
        "deliveryStart": slot,
        "given": 1,
        "expected": 0,
    }
    ledger.commit_chunk(slot, price, parts[0], chunk=0, **terms)
    assert ledger.slot_state(slot).status == "clearing"
    refused("ChunkOutOfOrder", chunk=2, part=parts[2])  # chunk 1 skipped
    refused("ClearingTermsChanged", chunk=1, part=parts[1], price_=price + 1)
    refused("ClearingTermsChanged", chunk=1, part=parts[1], chunks=4)
    ledger.commit_chunk(slot, price, parts[1], chunk=1, **terms)
    refused("ChunkOutOfOrder", chunk=1, part=parts[1])  # chunk 1 again
    # The last chunk with a fill missing, or an order listed twice, does not seal the slot.
    refused("IncompleteClearing", chunk=2, part=parts[2][:1])
    refused("OrdersMismatch", chunk=2, part=[parts[2][0], parts[2][0]])
    ledger.commit_chunk(slot, price, parts[2], chunk=2, **terms)
    assert ledger.slot_state(slot).status == "cleared"
    with pytest.raises(ClearingRejected) as again:
        ledger.commit_chunk(slot, price, parts[0], chunk=0, **terms)
    assert again.value.error == "SlotAlreadyCleared"


def test_a_fill_missing_or_replaced_in_an_early_chunk_never_seals(world) -> None:
    ledger, accounts, _ = world
    slot, fills, price = ten_orders(world)
    ledger.chain.move_time_to(slot - 300)
    items = ledger.clearing_items(slot, fills)
    # Order 2 left out of chunk 0 (the chunks after it shift): the last chunk cannot seal.
    shifted = [items[:2] + items[3:5], items[5:9], items[9:]]
    commit_in_chunks(ledger, slot, price, items, chunks=shifted[:2])
    before = snapshot(ledger, accounts, slot)
    with pytest.raises(ClearingRejected) as info:
        ledger.commit_chunk(slot, price, shifted[2], chunk=2, chunks=3, **REPORT)
    assert info.value.error == "IncompleteClearing"
    assert snapshot(ledger, accounts, slot) == before
    # An order's terms changed (more energy than it asked for) is not the recorded order.
    inflated = dataclasses.replace(items[1], order=dataclasses.replace(items[1].order, energy_wh=9_999))
    with pytest.raises(ClearingRejected) as changed:
        ledger.prepare_clearing(
            slot, price, [(i.order, i.filled_wh) for i in [items[0], inflated, *items[2:]]], **REPORT
        )
    assert changed.value.error == "OrdersMismatch"
    # The facilitator restarts the clearing with chunk 0: the earlier attempt no longer counts.
    commit_in_chunks(ledger, slot, price, items)
    assert ledger.slot_state(slot).status == "cleared"


def test_the_whole_clearing_is_checked_before_its_first_chunk_is_sent(world) -> None:
    ledger, _, _ = world
    slot, fills, price = ten_orders(world)
    ledger.chain.move_time_to(slot - 300)
    block = ledger.chain.w3.eth.block_number
    traded = [k for k, (_, f) in enumerate(fills) if f]
    bad = list(fills)
    order, filled = bad[traded[-1]]
    bad[traded[-1]] = (order, filled - 1)  # the last chunk would not balance
    with pytest.raises(ClearingRejected) as info:
        ledger.commit_clearing(slot, price, bad, **REPORT, chunk_size=CHUNK)
    assert info.value.error == "EnergyImbalance"
    assert ledger.chain.w3.eth.block_number == block  # nothing was sent
    assert ledger.slot_state(slot).status == "open"


def test_settlement_chunks_match_the_committed_ones_in_order_once_each(world) -> None:
    ledger, accounts, _ = world
    slot, fills, price = ten_orders(world)
    ledger.chain.move_time_to(slot - 300)
    items = ledger.clearing_items(slot, fills)
    commit_in_chunks(ledger, slot, price, items)
    parts = split(items, CHUNK)
    ledger.chain.move_time_to(slot + 900)
    ledger.post_meter_readings(slot, {a.address: 0 for a in accounts})

    def refused(error, chunk, part):
        before = snapshot(ledger, accounts, slot)
        with pytest.raises(SettlementRejected if error != "ChunkOutOfOrder" else LedgerError) as info:
            ledger.settle_chunk(slot, chunk, part)
        assert info.value.error == error, info.value
        assert snapshot(ledger, accounts, slot) == before

    refused("ChunkOutOfOrder", 1, parts[1])
    # Energy moved from one fill to another in the same chunk: not what was committed.
    a, b = parts[0][0], parts[0][1]
    swapped = [dataclasses.replace(a, filled_wh=a.filled_wh - 1), dataclasses.replace(b, filled_wh=b.filled_wh + 1)]
    refused("FillsMismatch", 0, swapped + parts[0][2:])
    refused("FillsMismatch", 0, parts[0][:-1])  # a fill left out
    ledger.settle_chunk(slot, 0, parts[0])
    state = ledger.slot_state(slot)
    assert (state.status, state.settled_chunks) == ("settling", 1)
    refused("ChunkOutOfOrder", 0, parts[0])  # settled twice
    ledger.settle_chunk(slot, 1, parts[1])
    ledger.settle_chunk(slot, 2, parts[2])
    assert ledger.slot_state(slot).status == "settled"
    refused("SlotNotCleared", 0, parts[0])


def test_cancelled_orders_are_committed_flagged_and_only_they(world) -> None:
    ledger, accounts, nonces = world
    slot = (ledger.chain.now() // 900 + 4) * 900
    alice, bob = accounts[:2]
    orders = []
    for account, side in ((alice, Side.BUY), (bob, Side.SELL), (alice, Side.BUY)):
        orders.append(make_order(account, side, slot, 500, 200_000, nonce=nonces[account.address]))
        nonces[account.address] += 1
    ledger.relay_orders([ledger.sign(a, o) for a, o in zip((alice, bob, alice), orders, strict=True)])
    available = ledger.account_of(alice.address)[0]
    ledger.cancel_order(alice, orders[2])
    assert ledger.account_of(alice.address)[0] == available + orders[2].max_cost  # the escrow returns at once
    ledger.chain.move_time_to(slot - 300)
    fills = [(orders[0], 500), (orders[1], 500)]
    items = ledger.clearing_items(slot, fills)
    assert [i.cancelled for i in items] == [False, False, True]
    unflagged = [*items[:2], dataclasses.replace(items[2], cancelled=False)]
    wrongly = [dataclasses.replace(items[0], cancelled=True, filled_wh=0), items[1], items[2]]
    for bad in (unflagged, wrongly):
        with pytest.raises(ClearingRejected) as info:
            ledger.commit_chunk(slot, 200_000, bad, chunk=0, chunks=1, **REPORT)
        assert info.value.error == "CancellationsMismatch", info.value
    with pytest.raises(ClearingRejected) as filled:
        ledger.commit_chunk(
            slot, 200_000, [*items[:2], dataclasses.replace(items[2], filled_wh=1)], chunk=0, chunks=1, **REPORT
        )
    assert filled.value.error == "FillExceedsOrder"
    ledger.commit_clearing(slot, 200_000, fills, **REPORT)
    assert ledger.slot_state(slot).status == "cleared"


def test_readings_are_posted_once_for_registered_participants(world) -> None:
    ledger, accounts, _ = world
    slot = (ledger.chain.now() // 900 + 1) * 900
    ledger.chain.move_time_to(slot + 900)
    alice, bob = accounts[:2]
    ledger.post_meter_readings(slot, {alice.address: -1_234})
    assert ledger.meter_reading(slot, alice.address) == -1_234
    assert ledger.meter_reading(slot, bob.address) is None
    (index,) = ledger.registry.functions.indexesOf([bob.address]).call()
    count = ledger.registry.functions.participantCount().call()
    meter = ledger.roles.meter

    def refused(kind, error, call):
        block = ledger.chain.w3.eth.block_number
        with pytest.raises(kind) as info:
            call()
        assert info.value.error == error, info.value
        assert ledger.chain.w3.eth.block_number == block
        assert ledger.meter_reading(slot, bob.address) is None
        assert ledger.meter_reading(slot, alice.address) == -1_234

    refused(
        SettlementRejected, "MeterReadingAlreadyPosted", lambda: ledger.post_meter_readings(slot, {alice.address: 5})
    )
    twice = index.to_bytes(4, "big") + (7).to_bytes(4, "big")
    post = ledger.market.functions.postMeterReadings
    refused(
        SettlementRejected,
        "MeterReadingAlreadyPosted",
        lambda: ledger.tx.send(meter, post(slot, twice + twice), action="readings"),
    )
    stranger = count.to_bytes(4, "big") + (7).to_bytes(4, "big")
    refused(
        NotRegisteredError,
        "UnknownParticipant",
        lambda: ledger.tx.send(meter, post(slot, twice + stranger), action="r"),
    )
    refused(SettlementRejected, "MalformedReadings", lambda: ledger.tx.send(meter, post(slot, twice[:7]), action="r"))
    lowest = index.to_bytes(4, "big") + (2**31).to_bytes(4, "big")  # −2^31 as int32
    refused(SettlementRejected, "MalformedReadings", lambda: ledger.tx.send(meter, post(slot, lowest), action="r"))
    unknown = "0x" + "12" * 20
    refused(NotRegisteredError, "NotRegistered", lambda: ledger.post_meter_readings(slot, {unknown: 1}))
    ledger.post_meter_readings(slot, {bob.address: 2**31 - 1})
    assert ledger.meter_reading(slot, bob.address) == 2**31 - 1


def test_a_settlement_under_way_keeps_its_prosumers_metered_allocation(world) -> None:
    """Two slots share a prosumer; while the first settles in chunks, the second cannot
    overwrite that prosumer's allocation of metered energy, and waits for it."""
    ledger, accounts, _ = world
    first, fills_a, price_a = ten_orders(world)
    # The second slot starts 15 minutes later: relay it before the first's gate closes.
    nonces = world[2]
    second = first + 900
    signed = []
    for k in range(2):
        account = accounts[k]
        side = Side.BUY if k == 0 else Side.SELL
        order = make_order(account, side, second, 400, 200_000, nonce=nonces[account.address])
        nonces[account.address] += 1
        signed.append(ledger.sign(account, order))
    ledger.relay_orders(signed)
    fills_b, result_b = clear_recorded(ledger.recorded_orders(second))
    ledger.chain.move_time_to(first - 300)
    ledger.commit_clearing(first, price_a, fills_a, **REPORT, chunk_size=CHUNK)
    ledger.chain.move_time_to(second - 300)
    ledger.commit_clearing(second, result_b.ledger_price, fills_b, **REPORT)
    ledger.chain.move_time_to(second + 900)
    for slot in (first, second):
        ledger.post_meter_readings(slot, {a.address: 100 for a in accounts})
    parts = split(ledger.clearing_items(first, fills_a), CHUNK)
    ledger.settle_chunk(first, 0, parts[0])
    with pytest.raises(SettlementRejected) as info:
        ledger.settle(second, fills_b)
    assert info.value.error == "SettlementInProgress"
    assert info.value.args_["otherSlot"] == first
    assert ledger.slot_state(second).status == "cleared"
    ledger.settle(first, fills_a)  # continues from chunk 1
    ledger.settle(second, fills_b)
    assert (ledger.slot_state(first).status, ledger.slot_state(second).status) == ("settled", "settled")


def test_chunk_items_pack_every_field() -> None:
    order = Order("0x" + "ab" * 20, Side.SELL, 900, 4_000_000_000, 2**64 - 1, 0, 900)
    item = ClearingItem(b"\x01" * 32, order, 3_999_999_999, True)
    word, price = item.as_settlement_fill()
    assert (word & (2**160 - 1), word >> 160 & (2**32 - 1), word >> 192 & (2**32 - 1)) == (
        int(order.prosumer, 16),
        4_000_000_000,
        3_999_999_999,
    )
    assert (word >> 224 & 1, word >> 225, price) == (1, 1, 2**64 - 1)

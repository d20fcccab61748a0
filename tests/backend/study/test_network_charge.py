"""The DSO's network charge per traded kWh: clearing at limit − t for buyers, the buyer's
all-in cost rounded up once, the charge per fill to the DSO; t = 0 changes nothing."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridledger.errors import ConfigurationError
from gridledger.market.clearing import BookOrder, clear
from gridledger.market.orders import Order, Side
from gridledger.settlement.rules import cost, network_charge, revenue, settle_slot

BUYER = "0x" + "11" * 20
SELLER = "0x" + "22" * 20


def book_order(name: str, side: Side, energy_wh: int, price: int, arrival: int) -> BookOrder:
    return BookOrder(hashlib.sha256(name.encode()).digest(), side, energy_wh, price, (arrival,))


def test_buyer_is_matched_at_limit_minus_charge() -> None:
    # Bid 300 Wh at 0.30 all-in, t = 0.05: it clears as a bid of 0.25. Ask 0.10 → price (0.25 + 0.10) // 2.
    bid = book_order("b", Side.BUY, 300, 300_000, 1)
    ask = book_order("s", Side.SELL, 500, 100_000, 2)
    result = clear([bid, ask], network_charge_per_kwh=50_000)
    assert result.price_per_kwh == 175_000
    assert result.fills[bid.order_hash] == 300
    assert result.price_per_kwh + 50_000 <= bid.price_per_kwh


def test_a_bid_the_charge_makes_uncrossed_does_not_trade() -> None:
    # Bid 0.20, ask 0.18: crosses without a charge, not with t = 0.05 (0.15 < 0.18).
    bid = book_order("b", Side.BUY, 100, 200_000, 1)
    ask = book_order("s", Side.SELL, 100, 180_000, 2)
    assert clear([bid, ask]).traded_wh == 100
    charged = clear([bid, ask], network_charge_per_kwh=50_000)
    assert charged.traded_wh == 0 and charged.price_per_kwh is None
    assert charged.fills == {bid.order_hash: 0, ask.order_hash: 0}


def test_a_bid_below_the_charge_cannot_trade_even_against_a_free_ask() -> None:
    low = book_order("low", Side.BUY, 100, 40_000, 1)
    high = book_order("high", Side.BUY, 100, 90_000, 2)
    free = book_order("free", Side.SELL, 300, 0, 3)
    result = clear([low, high, free], network_charge_per_kwh=50_000)
    assert result.fills[low.order_hash] == 0
    assert result.fills[high.order_hash] == 100
    assert result.price_per_kwh == (90_000 - 50_000 + 0) // 2


def test_a_negative_charge_is_refused_with_what_is_allowed() -> None:
    with pytest.raises(ConfigurationError, match="0 or more base units per kWh, got -1"):
        clear([], network_charge_per_kwh=-1)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([Side.BUY, Side.SELL]), st.integers(1, 5_000), st.integers(0, 400_000)),
        max_size=14,
    ),
    st.integers(0, 120_000),
)
def test_no_fill_crosses_its_all_in_limit(spec: list[tuple[Side, int, int]], t: int) -> None:
    book = [book_order(str(i), side, wh, price, i) for i, (side, wh, price) in enumerate(spec)]
    result = clear(book, network_charge_per_kwh=t)
    bought = sum(result.fills[o.order_hash] for o in book if o.side is Side.BUY)
    sold = sum(result.fills[o.order_hash] for o in book if o.side is Side.SELL)
    assert bought == sold == result.traded_wh
    for o in book:
        if result.fills[o.order_hash]:
            assert result.price_per_kwh is not None
            if o.side is Side.BUY:
                assert result.price_per_kwh + t <= o.price_per_kwh
            else:
                assert result.price_per_kwh >= o.price_per_kwh
    if t == 0:
        assert result == clear(book)


def test_charge_rounds_the_buyers_all_in_cost_up_once() -> None:
    # 333 Wh at p = 0.100001 and t = 0.050001: cost(333, p + t) = ceil(49.966999) = 49_967 (base units ×1000 …)
    f, p, t = 333, 100_001, 50_001
    assert cost(f, p + t) == -(-f * (p + t) // 1000)
    assert network_charge(f, p, t) == cost(f, p + t) - cost(f, p)
    # Rounding up once: the charge can be one base unit less than ceil(f·t/1000).
    assert network_charge(f, p, t) in {cost(f, t) - 1, cost(f, t)}
    assert network_charge(1, 1, 0) == 0


def _order(prosumer: str, side: Side, energy_wh: int, price: int, nonce: int) -> Order:
    return Order(prosumer, side, 1_800_000_000, energy_wh, price, nonce, 1_800_000_000)


def test_settlement_pays_each_fills_charge_to_the_dso_and_leaves_sellers_as_before() -> None:
    buy1 = _order(BUYER, Side.BUY, 333, 300_000, 0)
    buy2 = _order(BUYER, Side.BUY, 200, 300_000, 1)
    sell = _order(SELLER, Side.SELL, 533, 80_000, 0)
    fills = [(buy1, 333), (buy2, 200), (sell, 533)]
    readings = {BUYER: 533, SELLER: -533}
    p, t = 123_457, 40_003
    charged = settle_slot(
        fills,
        readings,
        price_per_kwh=p,
        shortfall_price_per_kwh=400_000,
        surplus_price_per_kwh=50_000,
        network_charge_per_kwh=t,
    )
    plain = settle_slot(fills, readings, price_per_kwh=p, shortfall_price_per_kwh=400_000, surplus_price_per_kwh=50_000)
    by_fill = [f.network_charge for f in charged.fills]
    assert by_fill == [network_charge(333, p, t), network_charge(200, p, t), 0]
    assert charged.to_dso == sum(by_fill) == cost(333, p + t) - cost(333, p) + cost(200, p + t) - cost(200, p)
    assert charged.paid_to_sellers == plain.paid_to_sellers == revenue(533, p)
    assert charged.to_balancing == plain.to_balancing
    # Money: what the buyer paid all-in = sellers + balancing remainder + DSO.
    paid_by_buyer = cost(333, p + t) + cost(200, p + t)
    assert paid_by_buyer == charged.paid_to_sellers + (charged.to_balancing - 0) + charged.to_dso
    assert plain.to_dso == 0 and all(f.network_charge == 0 for f in plain.fills)

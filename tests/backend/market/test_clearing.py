"""The double auction: hand-worked examples and the invariants as Hypothesis properties."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from gridledger.market.clearing import BookOrder, clear
from gridledger.market.orders import Side


def order(name: str, side: Side, energy_wh: int, price: int, arrival: int) -> BookOrder:
    return BookOrder(
        order_hash=hashlib.sha256(name.encode()).digest(),
        side=side,
        energy_wh=energy_wh,
        price_per_kwh=price,
        arrival=(arrival,),
    )


def fills_by_name(result, orders: dict[str, BookOrder]) -> dict[str, int]:
    return {name: result.fills[o.order_hash] for name, o in orders.items()}


def test_worked_example_partial_marginal_bid() -> None:
    # Bids: A 300 Wh @ 0.30, B 500 Wh @ 0.22, C 400 Wh @ 0.10.
    # Asks: X 400 Wh @ 0.08, Y 300 Wh @ 0.20, Z 500 Wh @ 0.25.
    # A(300) meets X: 300 Wh. B meets X's last 100, then Y's 300: B has 100 left.
    # B (0.22) vs Z (0.25) does not cross. Traded 700 Wh; marginal pair B 0.22 / Y 0.20 → 0.21.
    book = {
        "A": order("A", Side.BUY, 300, 300_000, 1),
        "B": order("B", Side.BUY, 500, 220_000, 2),
        "C": order("C", Side.BUY, 400, 100_000, 3),
        "X": order("X", Side.SELL, 400, 80_000, 4),
        "Y": order("Y", Side.SELL, 300, 200_000, 5),
        "Z": order("Z", Side.SELL, 500, 250_000, 6),
    }
    result = clear(book.values())
    assert result.price_per_kwh == 210_000
    assert result.traded_wh == 700
    assert fills_by_name(result, book) == {"A": 300, "B": 400, "C": 0, "X": 400, "Y": 300, "Z": 0}


def test_no_crossing_trades_nothing_and_has_no_price() -> None:
    book = [order("b", Side.BUY, 100, 100_000, 1), order("s", Side.SELL, 100, 150_000, 2)]
    result = clear(book)
    assert result.price_per_kwh is None
    assert result.ledger_price == 0
    assert result.traded_wh == 0
    assert set(result.fills.values()) == {0}


def test_one_sided_book_trades_nothing() -> None:
    result = clear([order("s1", Side.SELL, 100, 50_000, 1), order("s2", Side.SELL, 100, 60_000, 2)])
    assert result.traded_wh == 0 and result.price_per_kwh is None


def test_equal_prices_break_ties_by_arrival() -> None:
    # Two sellers at the same price, room for only one: the earlier arrival sells.
    early = order("early", Side.SELL, 200, 100_000, 1)
    late = order("late", Side.SELL, 200, 100_000, 2)
    buyer = order("buyer", Side.BUY, 200, 200_000, 3)
    result = clear([late, buyer, early])
    assert result.fills[early.order_hash] == 200
    assert result.fills[late.order_hash] == 0
    assert result.price_per_kwh == 150_000


def test_same_price_and_arrival_break_ties_by_hash() -> None:
    a = order("a", Side.SELL, 100, 100_000, 1)
    b = order("b", Side.SELL, 100, 100_000, 1)
    buyer = order("buyer", Side.BUY, 100, 100_000, 2)
    result = clear([a, b, buyer])
    winner = min(a, b, key=lambda o: o.order_hash)
    assert result.fills[winner.order_hash] == 100
    assert sum(result.fills.values()) == 200
    assert result.price_per_kwh == 100_000


def test_midpoint_rounds_down() -> None:
    result = clear([order("b", Side.BUY, 10, 101, 1), order("s", Side.SELL, 10, 100, 2)])
    assert result.price_per_kwh == 100


# ───────────── properties ─────────────

orders_strategy = st.lists(
    st.tuples(
        st.sampled_from([Side.BUY, Side.SELL]),
        st.integers(min_value=1, max_value=5_000),
        st.integers(min_value=0, max_value=500_000),
        st.integers(min_value=0, max_value=20),
    ),
    max_size=40,
)


def build(raw: list[tuple[Side, int, int, int]]) -> list[BookOrder]:
    return [order(f"o{i}", side, e, p, arrival) for i, (side, e, p, arrival) in enumerate(raw)]


def max_crossing_volume(book: list[BookOrder]) -> int:
    """Brute force: at each candidate uniform price, the volume is min(demand, supply)."""
    prices = {o.price_per_kwh for o in book}
    best = 0
    for p in prices:
        demand = sum(o.energy_wh for o in book if o.side is Side.BUY and o.price_per_kwh >= p)
        supply = sum(o.energy_wh for o in book if o.side is Side.SELL and o.price_per_kwh <= p)
        best = max(best, min(demand, supply))
    return best


@settings(max_examples=300, deadline=None)
@given(orders_strategy)
def test_fills_respect_orders_prices_and_balance(raw: list[tuple[Side, int, int, int]]) -> None:
    book = build(raw)
    result = clear(book)
    bought = sold = 0
    for o in book:
        filled = result.fills[o.order_hash]
        assert 0 <= filled <= o.energy_wh  # no fill beyond its order
        if filled:
            assert result.price_per_kwh is not None
            if o.side is Side.BUY:
                assert o.price_per_kwh >= result.price_per_kwh  # no buy above its limit
                bought += filled
            else:
                assert o.price_per_kwh <= result.price_per_kwh  # no sale below its limit
                sold += filled
    assert bought == sold == result.traded_wh  # bought = sold


@settings(max_examples=300, deadline=None)
@given(orders_strategy)
def test_traded_volume_is_the_maximum_the_crossing_orders_allow(
    raw: list[tuple[Side, int, int, int]],
) -> None:
    book = build(raw)
    assert clear(book).traded_wh == max_crossing_volume(book)


@settings(max_examples=100, deadline=None)
@given(orders_strategy, st.randoms(use_true_random=False))
def test_result_does_not_depend_on_input_order(raw, rnd) -> None:
    book = build(raw)
    shuffled = list(book)
    rnd.shuffle(shuffled)
    assert clear(book) == clear(shuffled)

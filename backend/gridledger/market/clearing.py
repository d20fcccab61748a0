"""The per-slot double auction: one uniform price, deterministic fills.

Rule, for the orders of one delivery slot:

1. Bids (buy orders) rank by limit price, highest first; asks (sell orders) by limit price,
   lowest first. Ties break by arrival on the ledger (earlier first), then by order hash
   (lower first), so the ranking is a total order that anyone can recompute.
2. The best remaining bid and ask are matched for the smaller of their remaining energies
   for as long as the bid's limit is at or above the ask's. This trades the most energy the
   crossing orders allow (the volume where the demand and supply curves meet).
3. The uniform price is the midpoint of the limits of the last matched bid and ask (the
   marginal pair), rounded down to a whole base unit. Every matched bid's limit is at or
   above it and every matched ask's at or below it, so no fill crosses its limit.

A slot with no crossing orders trades nothing and has no price (``None``; the ledger records 0).

Network charge. The DSO may charge a use-of-system tariff ``t`` (base units per kWh) on every
locally traded kWh; the buyer pays it, and a buy order's limit is all-in: a buy fill at price
``p`` is allowed only if ``p + t <= limit``. The auction therefore ranks and matches each bid at
``limit - t`` (a bid whose limit is below ``t`` cannot trade) and takes the marginal bid's
``limit - t`` for the midpoint. With ``t = 0`` the rule is the one above.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from gridledger.errors import ConfigurationError
from gridledger.market.orders import Side


@dataclass(frozen=True, slots=True)
class BookOrder:
    """What the auction needs of an order. ``arrival`` is its position on the ledger."""

    order_hash: bytes
    side: Side
    energy_wh: int
    price_per_kwh: int
    arrival: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ClearingResult:
    price_per_kwh: int | None
    fills: dict[bytes, int]  # order hash → filled Wh, for every order given (0 if unfilled)
    traded_wh: int

    @property
    def ledger_price(self) -> int:
        """The price as the ledger records it (0 when nothing traded)."""
        return self.price_per_kwh or 0


def _rank(order: BookOrder) -> tuple[int, tuple[int, ...], bytes]:
    price = -order.price_per_kwh if order.side is Side.BUY else order.price_per_kwh
    return (price, order.arrival, order.order_hash)


def clear(orders: Iterable[BookOrder], *, network_charge_per_kwh: int = 0) -> ClearingResult:
    """Clears one slot's orders. Pure: the same orders always give the same result.
    ``network_charge_per_kwh`` is the slot's tariff ``t`` (see the module's rule)."""
    if network_charge_per_kwh < 0:
        raise ConfigurationError(f"network charge must be 0 or more base units per kWh, got {network_charge_per_kwh}")
    t = network_charge_per_kwh
    book = list(orders)
    # A bid whose limit is below the charge cannot trade at any price ≥ 0.
    bids = sorted((o for o in book if o.side is Side.BUY and o.price_per_kwh >= t), key=_rank)
    asks = sorted((o for o in book if o.side is Side.SELL), key=_rank)
    fills = {o.order_hash: 0 for o in book}

    traded = 0
    i = j = 0
    bid_left = bids[0].energy_wh if bids else 0
    ask_left = asks[0].energy_wh if asks else 0
    marginal: tuple[BookOrder, BookOrder] | None = None
    while i < len(bids) and j < len(asks) and bids[i].price_per_kwh - t >= asks[j].price_per_kwh:
        bid, ask = bids[i], asks[j]
        quantity = min(bid_left, ask_left)
        fills[bid.order_hash] += quantity
        fills[ask.order_hash] += quantity
        traded += quantity
        marginal = (bid, ask)
        bid_left -= quantity
        ask_left -= quantity
        if bid_left == 0:
            i += 1
            bid_left = bids[i].energy_wh if i < len(bids) else 0
        if ask_left == 0:
            j += 1
            ask_left = asks[j].energy_wh if j < len(asks) else 0

    if marginal is None:
        return ClearingResult(price_per_kwh=None, fills=fills, traded_wh=0)
    bid, ask = marginal
    price = (bid.price_per_kwh - t + ask.price_per_kwh) // 2
    return ClearingResult(price_per_kwh=price, fills=fills, traded_wh=traded)

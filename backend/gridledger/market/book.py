"""A slot's order book as the ledger recorded it, cleared into the fills the ledger takes."""

from __future__ import annotations

from collections.abc import Sequence

from gridledger.market.clearing import BookOrder, ClearingResult, clear
from gridledger.market.orders import Order, RecordedOrder


def clear_recorded(
    recorded: Sequence[RecordedOrder], *, network_charge_per_kwh: int = 0
) -> tuple[list[tuple[Order, int]], ClearingResult]:
    """Clears the recorded orders of one slot; returns every order's fill in arrival order
    (the list ``commitClearing`` and ``settle`` take) and the clearing result."""
    result = clear(
        (BookOrder(r.order_hash, r.order.side, r.order.energy_wh, r.order.price_per_kwh, r.arrival) for r in recorded),
        network_charge_per_kwh=network_charge_per_kwh,
    )
    return [(r.order, result.fills[r.order_hash]) for r in recorded], result

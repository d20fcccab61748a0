"""The EnergyMarket contract's settlement rule, in Python.

The contract is the authority; this mirror lets reports explain each payment and lets tests
check the chain against an independent computation. Per fill of F Wh at clearing price p:

- a seller is credited F·p and buys back its shortfall (F minus what it fed in) at the
  shortfall price, paying from its balance as far as that goes (the balancing account bears
  the rest);
- a buyer paid F·p at clearing and sells back its surplus (F minus what it took) at the
  surplus price;
- a prosumer's metered energy is allocated to its fills of the slot in committed order;
- buyers' amounts round up, payouts round down; the pot's remainder goes to the balancing account;
- with a network charge ``t`` (base units per kWh) for the slot, a buyer paid ``cost(F, p + t)``
  at clearing; the fill's network charge ``cost(F, p + t) - cost(F, p)`` goes to the DSO, and
  the sellers' pot is unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gridledger.market.orders import Order, Side

WH_PER_KWH = 1000


def cost(energy_wh: int, price_per_kwh: int) -> int:
    """What a buyer pays, rounded up (as the contract's ``_cost``)."""
    return -(-energy_wh * price_per_kwh // WH_PER_KWH)


def revenue(energy_wh: int, price_per_kwh: int) -> int:
    """What is paid out, rounded down (as the contract's ``_revenue``)."""
    return energy_wh * price_per_kwh // WH_PER_KWH


def network_charge(energy_wh: int, price_per_kwh: int, network_charge_per_kwh: int) -> int:
    """The DSO's charge on a buy fill: what the buyer pays all-in, ``cost(F, p + t)``, less the
    energy's ``cost(F, p)`` (so the buyer's total rounds up once)."""
    return cost(energy_wh, price_per_kwh + network_charge_per_kwh) - cost(energy_wh, price_per_kwh)


@dataclass(frozen=True, slots=True)
class FillSettlement:
    prosumer: str
    side: Side
    filled_wh: int
    matched_wh: int  # delivered (seller) or taken (buyer), up to the fill
    deviation_wh: int
    payment: int  # credited at settlement
    charge: int  # shortfall charge owed (seller)
    collected: int  # the part of the charge the seller's balance covered
    network_charge: int = 0  # paid by the buyer at clearing, to the DSO


@dataclass(frozen=True, slots=True)
class SlotSettlement:
    fills: list[FillSettlement]
    paid_to_sellers: int
    to_balancing: int
    from_balancing: int
    to_dso: int = 0  # the slot's network charges


def settle_slot(
    fills: Sequence[tuple[Order, int]],
    readings_wh: dict[str, int],
    *,
    price_per_kwh: int,
    shortfall_price_per_kwh: int,
    surplus_price_per_kwh: int,
    available: dict[str, int] | None = None,
    network_charge_per_kwh: int = 0,
) -> SlotSettlement:
    """Settles one slot as the contract does. ``available`` is each seller's market balance
    before settlement (to know how much of a shortfall charge can be collected); omitted, the
    charge is taken as fully collected. ``network_charge_per_kwh`` is the slot's tariff."""
    balances = dict(available or {})
    used: dict[tuple[str, Side], int] = {}
    pot = sum(cost(f, price_per_kwh) for o, f in fills if o.side is Side.BUY)
    result: list[FillSettlement] = []
    paid = to_balancing = from_balancing = to_dso = 0
    for order, filled in fills:
        if filled == 0:
            continue
        net = readings_wh[order.prosumer]
        metered = max(0, -net) if order.side is Side.SELL else max(0, net)
        key = (order.prosumer, order.side)
        matched = min(filled, max(0, metered - used.get(key, 0)))
        used[key] = used.get(key, 0) + matched
        deviation = filled - matched
        if order.side is Side.SELL:
            payment = revenue(filled, price_per_kwh)
            charge = revenue(deviation, shortfall_price_per_kwh)
            if available is None:
                collected = charge
            else:
                funds = balances.get(order.prosumer, 0) + payment
                collected = min(charge, funds)
                balances[order.prosumer] = funds - collected
            paid += payment
            to_balancing += collected
        else:
            payment = revenue(deviation, surplus_price_per_kwh)
            charge = collected = 0
            from_balancing += payment
            if available is not None:
                balances[order.prosumer] = balances.get(order.prosumer, 0) + payment
        to_network = network_charge(filled, price_per_kwh, network_charge_per_kwh) if order.side is Side.BUY else 0
        to_dso += to_network
        result.append(
            FillSettlement(
                order.prosumer, order.side, filled, matched, deviation, payment, charge, collected, to_network
            )
        )
    return SlotSettlement(result, paid, to_balancing + (pot - paid), from_balancing, to_dso)

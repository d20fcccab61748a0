"""The market day's summary: volumes, prices, gas, and each prosumer's cost against the
no-market baseline.

Baseline: everything the meter shows taken from the grid is bought at the retail tariff and
everything fed in is sold at the feed-in tariff. With the market: the prosumer's money flows
in the market (read from its on-chain balance), plus what its supplier still bills or pays for
the energy it did not trade locally, at the same tariffs.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from gridledger.market.orders import Side
from gridledger.settlement.rules import revenue
from gridledger.sim.market_day import DayResult

TOKEN_UNITS = 1e6


@dataclass(frozen=True)
class ProsumerSummary:
    name: str
    address: str
    bus: int
    pv_kwp: float
    imported_wh: int
    exported_wh: int
    bought_wh: int
    sold_wh: int
    baseline_cost: int  # token base units; negative is income
    market_cost: int

    @property
    def saving(self) -> int:
        return self.baseline_cost - self.market_cost


@dataclass(frozen=True)
class DaySummary:
    slots: int
    orders: int
    trades: int
    traded_wh: int
    average_price_per_kwh: float | None
    prosumers: list[ProsumerSummary]
    total_gas: int
    gas_by_call: dict[str, int]
    seconds: float


def summarise(result: DayResult) -> DaySummary:
    config = result.config
    imported: dict[str, int] = defaultdict(int)
    exported: dict[str, int] = defaultdict(int)
    taken: dict[str, int] = defaultdict(int)  # locally bought energy actually taken
    delivered: dict[str, int] = defaultdict(int)  # locally sold energy actually fed in
    bought: dict[str, int] = defaultdict(int)
    sold: dict[str, int] = defaultdict(int)
    value = 0
    trades = 0
    for slot in result.slots:
        for address, net in slot.readings_wh.items():
            imported[address] += max(0, net)
            exported[address] += max(0, -net)
        for fill in slot.settlement.fills:
            trades += 1
            if fill.side is Side.BUY:
                bought[fill.prosumer] += fill.filled_wh
                taken[fill.prosumer] += fill.matched_wh
            else:
                sold[fill.prosumer] += fill.filled_wh
                delivered[fill.prosumer] += fill.matched_wh
        value += slot.clearing.traded_wh * slot.clearing.ledger_price

    prosumers = []
    for p in result.participants:
        a = p.address
        baseline = revenue(imported[a], config.retail_per_kwh) - revenue(exported[a], config.feed_in_per_kwh)
        market_cash = result.final_available[a] - config.deposit  # what the market paid it, net
        supplier = revenue(imported[a] - taken[a], config.retail_per_kwh) - revenue(
            exported[a] - delivered[a], config.feed_in_per_kwh
        )
        prosumers.append(
            ProsumerSummary(
                name=p.profile.name,
                address=a,
                bus=p.profile.bus,
                pv_kwp=p.profile.pv_kwp,
                imported_wh=imported[a],
                exported_wh=exported[a],
                bought_wh=bought[a],
                sold_wh=sold[a],
                baseline_cost=baseline,
                market_cost=supplier - market_cash,
            )
        )
    traded = sum(s.clearing.traded_wh for s in result.slots)
    return DaySummary(
        slots=len(result.slots),
        orders=sum(s.orders for s in result.slots),
        trades=trades,
        traded_wh=traded,
        average_price_per_kwh=value / traded if traded else None,
        prosumers=prosumers,
        total_gas=sum(result.gas.values()),
        gas_by_call=dict(sorted(result.gas.items(), key=lambda kv: -kv[1])),
        seconds=result.seconds,
    )

"""The market day's summary: volumes, prices, gas, and each prosumer's cost against the
no-market baseline.

Baseline: everything the meter shows taken from the grid is bought at the retail tariff and
everything fed in is sold at the feed-in tariff. With the market: the prosumer's money flows
in the market (read from its on-chain balance), plus what its supplier still bills or pays for
the energy it did not trade locally, at the same tariffs.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from gridledger.market.orders import Side
from gridledger.settlement.rules import revenue
from gridledger.sim.flex_day import FlexOutcome
from gridledger.sim.market_day import DayResult


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
    network_name: str
    network: NetworkDay
    flex: FlexOutcome | None = None
    phase_seconds: dict[str, float] = field(default_factory=dict)  # wall time per phase of the day


@dataclass(frozen=True)
class NetworkDay:
    """The day on the network, from the slots' AC checks (after any curtailment)."""

    max_line_loading_percent: float
    max_trafo_loading_percent: float
    v_min_pu: float
    v_max_pu: float
    curtailed_slots: int
    curtailed_wh: int
    slots_with_violations: int  # violations left that no trade caused (reported, not hidden)


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
        market_cash = result.final_available[a] - p.deposit  # what the market paid it, net
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
        network_name=(
            f"{config.grid}, version {result.slots[0].report.model_version[:12]}…, limits: loading ≤ "
            f"{config.limits.max_loading_percent:g} %, "
            f"voltage {config.limits.v_min_pu:.2f}–{config.limits.v_max_pu:.2f} pu"
            if result.slots
            else config.grid
        ),
        network=NetworkDay(
            max_line_loading_percent=max((s.report.check.max_line_loading_percent for s in result.slots), default=0.0),
            max_trafo_loading_percent=max(
                (s.report.check.max_trafo_loading_percent for s in result.slots), default=0.0
            ),
            v_min_pu=min((s.report.check.v_min_pu for s in result.slots), default=1.0),
            v_max_pu=max((s.report.check.v_max_pu for s in result.slots), default=1.0),
            curtailed_slots=sum(1 for s in result.slots if s.network.curtailments),
            curtailed_wh=sum(s.network.curtailed_wh for s in result.slots),
            slots_with_violations=sum(1 for s in result.slots if not s.report.check.passed),
        ),
        flex=result.flex,
        phase_seconds={name: figures.seconds for name, figures in result.phases.items()},
    )

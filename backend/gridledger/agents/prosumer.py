"""A prosumer agent: its devices, its bidding strategy, and nothing but the public API.

Devices: the household load and (every second one) rooftop PV of a SimBench load's profiles
(``network.profiles.day_profiles``); a battery where the grid has a storage unit at the agent's
bus (power ``p_mw``, energy ``max_e_mwh``, starting half full, state of charge tracked here);
for every fourth agent an electric vehicle on a home charger, with its own charging strategy
(``agents/ev.py``).

Bidding strategy (one order per slot, placed before the slot's gate closes):

1. Forecast the slot's net energy: load minus PV, Wh (the profile is the forecast; the meter
   later reads the same figure, so a forecast error never hides the market's own behaviour),
   plus what the EV decides to charge (``ElectricVehicle.charge_wh``, which sees the household's
   surplus and the market's last cleared price).
2. The battery first serves the household: it charges from a surplus and discharges into a
   deficit, within its power for one slot and its energy between 10 % and 90 % state of charge.
3. What is left is traded: a surplus is offered at the export tariff plus a markup, a deficit
   bid at the import tariff minus a discount. Markup and discount are the agent's own (drawn
   once from its seed), so prices spread and the book crosses between the two tariffs.
4. Below ``MIN_ORDER_WH`` nothing is traded: the supplier takes or gives it, as without a market.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from eth_account.signers.local import LocalAccount

from gridledger.agents.ev import ElectricVehicle
from gridledger.api.client import GridLedgerClient
from gridledger.market.orders import Side
from gridledger.network.profiles import ProsumerProfile
from gridledger.units import DAY_SECONDS, SLOT_SECONDS, SLOTS_PER_HOUR

IMPORT_TARIFF_PER_KWH = 300_000  # 0.30 GLEUR/kWh: what the supplier charges
EXPORT_TARIFF_PER_KWH = 80_000  # 0.08 GLEUR/kWh: what the supplier pays for feed-in
MIN_ORDER_WH = 20
SOC_MIN, SOC_MAX = 0.10, 0.90


@dataclass
class Battery:
    power_w: int
    capacity_wh: int
    soc_wh: float

    def serve(self, net_wh: float) -> float:
        """Charges from a surplus (``net_wh`` < 0) or discharges into a deficit; returns the net left."""
        step = self.power_w / SLOTS_PER_HOUR
        if net_wh < 0:
            taken = min(-net_wh, step, self.capacity_wh * SOC_MAX - self.soc_wh)
            taken = max(taken, 0.0)
            self.soc_wh += taken
            return net_wh + taken
        given = max(min(net_wh, step, self.soc_wh - self.capacity_wh * SOC_MIN), 0.0)
        self.soc_wh -= given
        return net_wh - given


@dataclass
class Prosumer:
    name: str
    account: LocalAccount
    profile: ProsumerProfile
    battery: Battery | None = None
    seed: int = 0
    ev: ElectricVehicle | None = None
    markup_per_kwh: int = field(init=False)
    discount_per_kwh: int = field(init=False)
    metered: dict[int, int] = field(default_factory=dict)  # slot → net Wh (positive = taken from the grid)
    orders: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        self.markup_per_kwh = rng.randrange(0, 60_000, 1_000)
        self.discount_per_kwh = rng.randrange(0, 80_000, 1_000)

    @property
    def bus(self) -> int:
        return self.profile.bus

    def forecast_wh(self, delivery_start: int) -> float:
        """The slot's household net energy before the battery, Wh (positive = a deficit)."""
        k = (delivery_start % DAY_SECONDS) // SLOT_SECONDS
        return float(self.profile.net_w[k]) / SLOTS_PER_HOUR

    def plan(self, delivery_start: int, *, last_price_per_kwh: int | None = None) -> int:
        """The slot's net energy after the EV and the battery (what the meter will read), Wh;
        decided once per slot (later calls return the same figure)."""
        if delivery_start not in self.metered:
            net = self.forecast_wh(delivery_start)
            if self.ev is not None:
                net += self.ev.charge_wh(delivery_start, household_wh=net, last_price_per_kwh=last_price_per_kwh)
            if self.battery is not None:
                net = self.battery.serve(net)
            self.metered[delivery_start] = round(net)
        return self.metered[delivery_start]

    def trade(
        self, client: GridLedgerClient, delivery_start: int, *, last_price_per_kwh: int | None = None
    ) -> dict[str, object] | None:
        """Signs and submits the slot's order over HTTP (``None``: nothing worth trading);
        ``last_price_per_kwh`` is the market's last cleared price, which the EV's strategy reads."""
        net = self.plan(delivery_start, last_price_per_kwh=last_price_per_kwh)
        if abs(net) < MIN_ORDER_WH:
            return None
        if net < 0:
            side, price = Side.SELL, EXPORT_TARIFF_PER_KWH + self.markup_per_kwh
        else:
            side, price = Side.BUY, IMPORT_TARIFF_PER_KWH - self.discount_per_kwh
        placed = client.place(
            self.account, side=side, delivery_start=delivery_start, energy_wh=abs(net), price_per_kwh=price
        )
        self.orders.append(str(placed["order_hash"]))
        return placed

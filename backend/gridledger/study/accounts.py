"""Who paid whom, per design, and the welfare every design is measured by.

Money (token base units, integers, rounded as the contracts round: what a payer owes rounds up,
what a payee is paid rounds down), per slot:

- a buy fill of F Wh at price p with tariff t pays ``cost(F, p + t)``: ``cost(F, p)`` into the
  sellers' pot and the rest to the DSO (``settlement.rules``); a sell fill is paid
  ``revenue(F, p)``; the pot's remainder goes to the balancing account;
- what a meter reads beyond its fill is exchanged with the participant's supplier: imports at the
  retail tariff, exports at the feed-in tariff (the no-market outside option);
- a battery's activated flexibility is energy exchanged with the balancing account at the slot's
  clearing price (the feed-in tariff when nothing traded), and the DSO pays its utilisation price;
  the DSO pays availability for the room a battery reserved, and the PV curtailment rate per kWh
  of PV it curtailed. Trades the network check curtails are not compensated.

Every token paid has a receiver, so the participants, the DSO, the supplier and the balancing
account sum to zero in every design (``Accounts.balance``).

Welfare, the same for every design: the value of the energy the loads consume, at the retail
tariff (what they would pay without a market), less what the local system pays outside it (its
suppliers and the balancing account, net), plus the change in the energy stored in its batteries,
valued at the feed-in tariff per kWh they can deliver. Payments between participants, the DSO and
the facilitator are transfers; network violations are not priced: a design that leaves them is
not feasible without reinforcement. For (e), which has no settlement, the exchange with suppliers
is the community's net import and export (perfect local netting), which no per-meter settlement
can beat.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gridledger.study.config import StudyConfig
from gridledger.study.market import MarketStudy
from gridledger.study.optimum import Optimum
from gridledger.study.records import Design, DesignRun
from gridledger.units import SLOTS_PER_DAY, WH_PER_KWH


def _cost(wh: np.ndarray, price: np.ndarray | int) -> np.ndarray:
    return np.asarray(-(-(np.asarray(wh, dtype=np.int64) * price) // WH_PER_KWH), dtype=np.int64)


def _revenue(wh: np.ndarray, price: np.ndarray | int) -> np.ndarray:
    return np.asarray(np.asarray(wh, dtype=np.int64) * price // WH_PER_KWH, dtype=np.int64)


@dataclass
class Accounts:
    """One design's money per participant (received − paid, base units) and per counterparty,
    with the welfare per slot."""

    design: Design
    participant_net: np.ndarray  # (participants,)
    participant_stored_value: np.ndarray  # (participants,) change in stored energy's value
    market_paid: np.ndarray  # (participants,) paid for local purchases, energy part
    market_received: np.ndarray  # (participants,) received for local sales
    network_charges_paid: np.ndarray
    supplier_paid: np.ndarray  # imports at retail
    supplier_received: np.ndarray  # exports at feed-in
    flex_received: np.ndarray  # availability + utilisation + PV curtailment, from the DSO
    balancing_net_paid: np.ndarray  # activation energy at the slot price
    dso_network_charges: int
    dso_availability: int
    dso_utilisation: int
    dso_pv_curtailment: int
    supplier_imports: int  # received from the participants
    supplier_exports: int  # paid to them
    balancing_pot: int  # remainders of the sellers' pots
    balancing_activation: int  # activation energy, net received
    welfare_per_slot: np.ndarray
    gas: int = 0
    traded_wh: int = 0

    @property
    def dso_net(self) -> int:
        return self.dso_network_charges - self.dso_availability - self.dso_utilisation - self.dso_pv_curtailment

    @property
    def dso_spend(self) -> int:
        return self.dso_availability + self.dso_utilisation + self.dso_pv_curtailment

    @property
    def supplier_net(self) -> int:
        return self.supplier_imports - self.supplier_exports

    @property
    def balancing_net(self) -> int:
        return self.balancing_pot + self.balancing_activation

    @property
    def balance(self) -> int:
        """Σ every party's money: 0 when every token paid was received by someone."""
        return int(self.participant_net.sum()) + self.dso_net + self.supplier_net + self.balancing_net

    @property
    def welfare(self) -> float:
        return float(self.welfare_per_slot.sum())


def settle_run(study: MarketStudy, run: DesignRun) -> Accounts:
    """The money of a design (a) to (d) run."""
    c: StudyConfig = study.config
    n, p = run.slots, run.participants
    fill, price, tariff = run.fill_wh, run.price[:, None], run.tariff[:, None]
    bought, sold = np.clip(fill, 0, None), np.clip(-fill, 0, None)
    energy_cost = _cost(bought, price)
    charges = _cost(bought, price + tariff) - energy_cost
    sales = _revenue(sold, price)
    pot_remainder = energy_cost.sum(axis=1) - sales.sum(axis=1)

    is_battery = np.zeros(p, dtype=bool)
    is_battery[study.bats] = True
    is_pv = np.zeros(p, dtype=bool)
    is_pv[study.pvs] = True
    activation = np.where(is_battery[None, :], run.flex_wh, 0)
    slot_price = np.where(run.price > 0, run.price, c.feed_in_per_kwh)[:, None]
    activation_paid = _cost(np.clip(activation, 0, None), slot_price) - _revenue(
        np.clip(-activation, 0, None), slot_price
    )
    utilisation = _revenue(np.abs(activation), c.battery_utilisation_per_kwh)
    pv_curtailed = np.where(is_pv[None, :], np.clip(run.flex_wh, 0, None), 0)
    curtailment_paid = _revenue(pv_curtailed, c.pv_curtailment_per_kwh)
    availability = np.zeros(p, dtype=np.int64)
    for b, i in enumerate(study.bats):
        availability[i] = int(
            _revenue(np.rint(run.reserved_wh[:, b]).astype(np.int64), c.battery_availability_per_kwh).sum()
        )

    residual = run.metered_wh - fill - activation
    imports = _cost(np.clip(residual, 0, None), c.retail_per_kwh)
    exports = _revenue(np.clip(-residual, 0, None), c.feed_in_per_kwh)

    flex_received = utilisation.sum(axis=0) + curtailment_paid.sum(axis=0) + availability
    net = (
        sales.sum(axis=0)
        - energy_cost.sum(axis=0)
        - charges.sum(axis=0)
        - imports.sum(axis=0)
        + exports.sum(axis=0)
        + flex_received
        - activation_paid.sum(axis=0)
    )
    stored = np.zeros(p)
    value = c.feed_in_per_kwh / WH_PER_KWH
    if len(study.bats):
        eff = np.array([s.efficiency for s in study.grid.batteries])
        stored[study.bats] = (run.soc_wh[-1] - run.soc_wh[0]) * eff * value

    load_value = run.order_wh[:, study.loads].sum(axis=1) * (c.retail_per_kwh / WH_PER_KWH)
    outside = imports.sum(axis=1) - exports.sum(axis=1) + pot_remainder + activation_paid.sum(axis=1)
    stored_per_slot = np.zeros(n)
    if len(study.bats):
        stored_per_slot = (np.diff(run.soc_wh, axis=0) * eff).sum(axis=1) * value
    orders = int((run.order_wh != 0).sum())
    fills = int((run.fill_wh != 0).sum())
    meters = int((run.metered_wh != 0).sum())
    gas = 0
    if run.design is not Design.NO_MARKET:
        gas = orders * c.gas_per_order + fills * c.gas_per_fill + meters * c.gas_per_meter_reading
    return Accounts(
        design=run.design,
        participant_net=net,
        participant_stored_value=stored,
        market_paid=energy_cost.sum(axis=0),
        market_received=sales.sum(axis=0),
        network_charges_paid=charges.sum(axis=0),
        supplier_paid=imports.sum(axis=0),
        supplier_received=exports.sum(axis=0),
        flex_received=flex_received,
        balancing_net_paid=activation_paid.sum(axis=0),
        dso_network_charges=int(charges.sum()),
        dso_availability=int(availability.sum()),
        dso_utilisation=int(utilisation.sum()),
        dso_pv_curtailment=int(curtailment_paid.sum()),
        supplier_imports=int(imports.sum()),
        supplier_exports=int(exports.sum()),
        balancing_pot=int(pot_remainder.sum()),
        balancing_activation=int(activation_paid.sum()),
        welfare_per_slot=load_value - outside + stored_per_slot,
        gas=gas,
        traded_wh=int(bought.sum()),
    )


def optimum_welfare(study: MarketStudy, optimum: Optimum) -> np.ndarray:
    """Welfare per slot of (e): the same definition, with the community's net exchange."""
    c, run = study.config, optimum.run
    load_value = run.order_wh[:, study.loads].sum(axis=1) * (c.retail_per_kwh / WH_PER_KWH)
    outside = (optimum.import_wh * c.retail_per_kwh - optimum.export_wh * c.feed_in_per_kwh) / WH_PER_KWH
    eff = np.array([s.efficiency for s in study.grid.batteries]) if len(study.bats) else np.zeros(0)
    stored = (np.diff(run.soc_wh, axis=0) * eff).sum(axis=1) * (c.feed_in_per_kwh / WH_PER_KWH)
    return np.asarray(load_value - outside + stored)


def month_of_slot(first_slot: int, slots: int) -> np.ndarray:
    """Calendar month (1–12) of each slot of the 2016 profile year."""
    days = (np.arange(first_slot, first_slot + slots) // SLOTS_PER_DAY).astype("timedelta64[D]")
    dates = np.datetime64("2016-01-01") + days
    return np.asarray(dates.astype("datetime64[M]").astype(int) % 12 + 1)


__all__ = ["Accounts", "month_of_slot", "optimum_welfare", "settle_run"]

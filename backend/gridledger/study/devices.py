"""Devices with state, and the rules by which their owners bid.

**Loads** (households, heat pumps, charging points) follow SimBench's profiles: each slot a load
bids to buy what it will consume, at a limit between the retail tariff and the tariffs' midpoint
(its eagerness, drawn once). **PV generators** offer what they will generate, at a limit between
the feed-in tariff and the midpoint. Forecasts are perfect: a participant orders what its meter
will read (the study isolates market design from forecast error).

**Batteries** (SimBench's storage elements: power, energy, efficiency each way) carry their state
of charge from slot to slot (starting at SimBench's ``soc_percent``, self-discharge neglected).
Their rule uses one public forecast, the community's net position (all loads less all PV), and
earns the spread between the prices of surplus slots (set by PV asks) and shortage slots (set by
loads' bids):

- when the community is short, a battery sells up to its share (by power) of the shortage, as
  far as its charge allows, at no less than the feed-in tariff;
- when the community has a surplus, it buys up to its share of the surplus, as far as its room
  allows (less any room it reserved for the DSO), at up to the retail tariff;
- within those tariffs it takes the local price (its bids are above every PV ask and its asks
  below every load's bid, network charge included), so its orders fill, and it delivers what
  it ordered.

A battery's flexibility (charging more, or discharging more, in a slot the network needs it) is
what its power and its state of charge allow beyond its order. PV curtailment (generating less)
is offered up to what the generator would export to its supplier.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gridledger.study.grid import BatterySpec
from gridledger.units import SLOTS_PER_HOUR


class Batteries:
    """The grid's batteries: ratings as arrays and their state of charge (Wh)."""

    def __init__(self, specs: Sequence[BatterySpec], soc_wh: np.ndarray | None = None) -> None:
        self.specs = list(specs)
        self.power_wh = np.array([s.power_w / SLOTS_PER_HOUR for s in specs])  # energy per slot at full power
        self.capacity_wh = np.array([s.capacity_wh for s in specs])
        self.efficiency = np.array([s.efficiency for s in specs])
        self.soc_wh = np.zeros(len(specs)) if soc_wh is None else np.asarray(soc_wh, dtype=float).copy()
        total = self.power_wh.sum()
        self.share = self.power_wh / total if total > 0 else self.power_wh

    def copy(self) -> Batteries:
        return Batteries(self.specs, self.soc_wh)

    def orders_wh(self, community_net_wh: int, reserved_wh: np.ndarray | None = None) -> np.ndarray:
        """Each battery's order for the slot, signed (+ buy and charge, − sell and discharge)."""
        if community_net_wh > 0:
            can = np.minimum(self.power_wh, self.soc_wh * self.efficiency)
            return np.asarray(-np.floor(np.minimum(can, self.share * community_net_wh)).astype(np.int64))
        room = self.capacity_wh - self.soc_wh
        if reserved_wh is not None:
            room = room - reserved_wh
        can = np.minimum(self.power_wh, np.clip(room, 0.0, None) / self.efficiency)
        return np.asarray(np.floor(np.minimum(can, self.share * -community_net_wh)).astype(np.int64))

    def flex_room_wh(self, planned_wh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """How much more each battery could charge (Down) or discharge (Up) at its meter this
        slot beyond ``planned_wh``, within its power and state of charge."""
        up_to_charge = np.minimum(self.power_wh, (self.capacity_wh - self.soc_wh) / self.efficiency)
        up_to_discharge = np.minimum(self.power_wh, self.soc_wh * self.efficiency)
        down = np.floor(np.clip(up_to_charge - planned_wh, 0.0, None)).astype(np.int64)
        up = np.floor(np.clip(planned_wh + up_to_discharge, 0.0, None)).astype(np.int64)
        return down, up

    def apply(self, metered_wh: np.ndarray) -> None:
        """Moves the state of charge by what each battery took (+) or gave (−) at its meter."""
        x = np.asarray(metered_wh, dtype=float)
        delta = np.where(x > 0, x * self.efficiency, x / self.efficiency)
        self.soc_wh = np.clip(self.soc_wh + delta, 0.0, self.capacity_wh)

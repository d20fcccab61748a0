"""The grid state a slot is checked on: SimBench's profiles for the slot's time, with the
participants' household loads replaced by their orders.

The physical schedule is the grid's own loads and generation, with each participant's household
load replaced by its orders (a sale injects its energy at the participant's bus, a purchase
withdraws it), since that energy flows whether it is traded locally or with the supplier.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

import numpy as np

from gridledger.market.orders import Order, Side
from gridledger.network.model import NetworkModel
from gridledger.network.profiles import grid_baseline, household_loads
from gridledger.network.validation import Schedule
from gridledger.units import DAY_SECONDS, DAYS_IN_PROFILE_YEAR, SLOT_SECONDS, wh_to_w


@dataclass(frozen=True)
class BaselineRef:
    """Which SimBench profile step is the slot's baseline, and which loads (and generators, when
    their owners trade their output) the market replaces."""

    grid: str
    day: int
    slot: int
    replaced_loads: tuple[int, ...]
    replaced_sgens: tuple[int, ...] = ()

    @classmethod
    def for_delivery(
        cls, model: NetworkModel, grid: str, delivery_start: int, participant_buses: Iterable[int]
    ) -> BaselineRef:
        """The baseline a slot's delivery time implies: the same day of the year and time of day
        in the profile year, with the first free household load at each participant's bus
        (``participant_buses`` in registration order) replaced by the market."""
        moment = datetime.fromtimestamp(delivery_start, tz=UTC)
        day = min(moment.timetuple().tm_yday, DAYS_IN_PROFILE_YEAR)
        slot = (delivery_start % DAY_SECONDS) // SLOT_SECONDS
        taken: dict[int, int] = {}  # bus → how many of its loads earlier participants took
        replaced = []
        loads_at = _loads_by_bus(model)
        for bus in participant_buses:
            at_bus = loads_at.get(bus, ())
            k = taken.get(bus, 0)
            if k < len(at_bus):
                replaced.append(at_bus[k])
                taken[bus] = k + 1
        return cls(grid, day, slot, tuple(sorted(replaced)))

    def as_dict(self) -> dict[str, Any]:
        data = {"grid": self.grid, "day": self.day, "slot": self.slot, "replaced_loads": list(self.replaced_loads)}
        if self.replaced_sgens:  # only then: reports without traded generators hash as before
            data["replaced_sgens"] = list(self.replaced_sgens)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BaselineRef:
        return cls(
            str(data["grid"]),
            int(data["day"]),
            int(data["slot"]),
            tuple(int(i) for i in data["replaced_loads"]),
            tuple(int(i) for i in data.get("replaced_sgens", ())),
        )


@cache
def _loads_by_bus(model: NetworkModel) -> dict[int, tuple[int, ...]]:
    """Each bus's household loads in the order participants take them (kept per model: a slot
    of a 5,000-prosumer feeder would otherwise sort 5,373 loads again)."""
    buses = model.net.load["bus"]
    by_bus: dict[int, list[int]] = {}
    for load in household_loads(model.net):
        by_bus.setdefault(int(buses.at[load]), []).append(load)
    return {bus: tuple(loads) for bus, loads in by_bus.items()}


def slot_schedule(
    model: NetworkModel, ref: BaselineRef, orders: Sequence[Order], bus_of: Mapping[str, int]
) -> Schedule:
    """The slot's physical schedule: the baseline with the replaced loads zeroed and each order's
    energy at its prosumer's bus (a purchase withdraws, a sale injects)."""
    load_p, load_q, sgen_p = (a[ref.slot : ref.slot + 1].copy() for a in grid_baseline(day=ref.day, grid=ref.grid))
    replaced = list(ref.replaced_loads)
    load_p[:, replaced] = 0.0
    load_q[:, replaced] = 0.0
    sgen_p[:, list(ref.replaced_sgens)] = 0.0
    market = np.zeros((1, len(model.buses)))
    position = model.bus_position
    columns = np.fromiter((position[bus_of[o.prosumer]] for o in orders), dtype=np.int64, count=len(orders))
    power = np.fromiter(
        (wh_to_w(o.energy_wh) * (1.0 if o.side is Side.BUY else -1.0) for o in orders), dtype=float, count=len(orders)
    )
    np.add.at(market[0], columns, power)
    return Schedule(load_p, load_q, sgen_p, market)

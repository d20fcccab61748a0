"""Household load and PV of a day, per prosumer, from a SimBench grid's own profiles.

SimBench ships a year (2016, 366 days) of 15-minute profiles for every load and generator of
its grids. A prosumer here is one household load of the grid at its bus; every second one
also owns a rooftop PV system whose shape is one of the grid's PV profiles, scaled to a size.
Power is in W as floats (the network model's units); the market converts to Wh at one place.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt

from gridledger.errors import ConfigurationError
from gridledger.units import DAYS_IN_PROFILE_YEAR, DEFAULT_GRID, SLOTS_PER_DAY, W_PER_MW

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ProsumerProfile:
    """One prosumer's day: where it connects and its household load and PV, W per slot."""

    name: str
    bus: int
    load_index: int  # the grid's load element this prosumer's household is
    load_w: FloatArray  # ≥ 0, SLOTS_PER_DAY values
    pv_w: FloatArray  # ≥ 0 (generation), SLOTS_PER_DAY values
    pv_kwp: float

    @property
    def net_w(self) -> FloatArray:
        """Net power in pandapower's convention: positive = load, negative = feed-in."""
        return self.load_w - self.pv_w


@cache
def load_grid(code: str = DEFAULT_GRID) -> Any:
    """The SimBench pandapower net (loaded once per process: it takes a few seconds)."""
    import simbench

    try:
        return simbench.get_simbench_net(code)
    except Exception as exc:
        raise ConfigurationError(f"cannot load SimBench grid {code!r}: {exc}") from None


@cache
def _absolute_profiles(code: str) -> Any:
    import simbench

    # On a copy: the grid itself must stay as published (its hash is the model's version).
    return simbench.get_absolute_values(copy.deepcopy(load_grid(code)), profiles_instead_of_study_cases=True)


def grid_baseline(*, day: int, grid: str = DEFAULT_GRID) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Every load's P (W) and Q (var) and every generator's P (W) of the grid for one day, per
    slot (rows) and element (columns, in the net's element order), from SimBench's profiles."""
    if not 1 <= day <= DAYS_IN_PROFILE_YEAR:
        raise ConfigurationError(f"day must be 1 to {DAYS_IN_PROFILE_YEAR}, got {day}")
    net = load_grid(grid)
    profiles = _absolute_profiles(grid)
    steps = slice((day - 1) * SLOTS_PER_DAY, day * SLOTS_PER_DAY)

    def table(key: tuple[str, str], index: Any) -> FloatArray:
        return np.asarray(profiles[key].iloc[steps].reindex(columns=index).fillna(0.0).to_numpy(float) * W_PER_MW)

    return (
        table(("load", "p_mw"), net.load.index),
        table(("load", "q_mvar"), net.load.index),
        table(("sgen", "p_mw"), net.sgen.index),
    )


def household_loads(net: Any) -> list[int]:
    """The grid's loads in the order participants take them: by bus, then by name. A slot's
    baseline replaces, at each participant's bus, the first loads in this order that no earlier
    participant took (``facilitation.baseline``), and the demo's prosumers are these loads."""
    return [int(i) for i in net.load.sort_values(["bus", "name"]).index]


def day_profiles(*, count: int, day: int, grid: str = DEFAULT_GRID) -> list[ProsumerProfile]:
    """``count`` prosumers of ``grid`` for day ``day`` (1 = 1 January) of the profile year."""
    if not 1 <= day <= DAYS_IN_PROFILE_YEAR:
        raise ConfigurationError(f"day must be 1 to {DAYS_IN_PROFILE_YEAR} (day of the 2016 profile year), got {day}")
    net = load_grid(grid)
    if not 1 <= count <= len(net.load):
        raise ConfigurationError(f"grid {grid} has {len(net.load)} loads; choose 1 to {len(net.load)} prosumers")
    profiles = _absolute_profiles(grid)
    steps = slice((day - 1) * SLOTS_PER_DAY, day * SLOTS_PER_DAY)
    loads = profiles[("load", "p_mw")].iloc[steps]
    pv = profiles[("sgen", "p_mw")].iloc[steps]
    pv_shapes = [
        (pv[idx].to_numpy(dtype=float) / float(net.sgen.at[idx, "p_mw"])) for idx in net.sgen.index
    ]  # per unit of installed power

    chosen = household_loads(net)[:count]
    result = []
    for k, idx in enumerate(chosen):
        load_w = np.clip(loads[idx].to_numpy(dtype=float) * W_PER_MW, 0.0, None)
        has_pv = k % 2 == 0 and pv_shapes
        # Sizes from 4 to 10 kWp: a typical rooftop range for a household.
        kwp = 4.0 + (k * 7919 % 7) if has_pv else 0.0
        shape = pv_shapes[(k // 2) % len(pv_shapes)] if has_pv else np.zeros(SLOTS_PER_DAY)
        result.append(
            ProsumerProfile(
                name=str(net.load.at[idx, "name"]),
                bus=int(net.load.at[idx, "bus"]),
                load_index=int(idx),
                load_w=load_w,
                pv_w=np.clip(shape * kwp * 1000.0, 0.0, None),
                pv_kwp=kwp,
            )
        )
    return result

"""SimBench grids, and the household load and PV of a day per prosumer from their own profiles.

SimBench ships a year (2016, 366 days) of 15-minute profiles for every load and generator of
its grids: each element names a relative profile (``profile``, e.g. ``H0-A`` for a household,
``PV3`` for a PV system) that scales its ``p_mw`` (loads also ``q_mvar``). A prosumer here is
one load of the grid at its bus, so a grid offers as many prosumers as it has loads (104 on
``1-LV-semiurb5--0-sw``, 5,373 on ``1-MVLV-rural-all-0-sw``); every second one also owns a
rooftop PV system whose shape is one of the grid's PV profiles, scaled to a size. Only the day
asked for is read from the profiles: the MV/LV grids' year is gigabytes as absolute values.
Power is in W as floats (the network model's units); the market converts to Wh at one place.
"""

from __future__ import annotations

import difflib
import math
import os
import pickle
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from gridledger.errors import ConfigurationError
from gridledger.units import DAYS_IN_PROFILE_YEAR, DEFAULT_GRID, SLOTS_PER_DAY, W_PER_MW

FloatArray = npt.NDArray[np.float64]

# Voltage levels whose grids power-grid-model can solve. The extra-high-voltage grids (EHV,
# EHVHV, EHVHVMVLV, complete_data) have voltage-controlled generators (PV buses), which it
# cannot model.
SUPPORTED_LEVELS = ("LV", "MV", "MVLV", "HV", "HVMV")
UNSUPPORTED_REASON = (
    "SimBench's extra-high-voltage grids (EHV, EHVHV, EHVHVMVLV and complete_data) are not supported: "
    "their generators regulate voltage, which power-grid-model cannot model"
)


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

    @property
    def peak_w(self) -> float:
        """The day's largest import or export, W."""
        return float(np.abs(self.net_w).max())


@cache
def simbench_codes() -> tuple[str, ...]:
    """The SimBench codes GridLedger runs on, in SimBench's order."""
    import simbench

    return tuple(c for c in simbench.collect_all_simbench_codes() if c.split("-")[1] in SUPPORTED_LEVELS)


def require_grid(code: str) -> None:
    """Refuses a code that is not a supported SimBench grid, saying what is allowed."""
    codes = simbench_codes()
    if code in codes:
        return
    import simbench

    if code in simbench.collect_all_simbench_codes():
        raise ConfigurationError(f"grid {code!r}: {UNSUPPORTED_REASON}; allowed: {describe_codes(codes)}")
    near = difflib.get_close_matches(code, codes, n=3)
    hint = f" (did you mean {', '.join(near)}?)" if near else ""
    raise ConfigurationError(f"unknown grid {code!r}{hint}; allowed are SimBench codes: {describe_codes(codes)}")


def describe_codes(codes: tuple[str, ...]) -> str:
    """The codes in short: each grid once, with its scenarios and switch variants in braces."""
    grids: dict[str, tuple[set[str], set[str]]] = {}
    for code in codes:
        stem, scenario, switches = code.rsplit("-", 2)
        scenarios, variants = grids.setdefault(stem, (set(), set()))
        scenarios.add(scenario)
        variants.add(switches)
    return "; ".join(
        f"{stem}-{{{','.join(sorted(s))}}}-{{{','.join(sorted(v, reverse=True))}}}" for stem, (s, v) in grids.items()
    )


@cache
def load_grid(code: str = DEFAULT_GRID) -> Any:
    """The SimBench pandapower net (loaded once per process: it takes seconds, ~15 s for the
    MV/LV grids, ~20 s more under load for importing simbench itself).

    Parsed once per machine: the net is pickled to ``<GRIDLEDGER_CACHE_DIR or .cache>/simbench/``
    under the installed simbench version and the grid's code, and read back from there (about a
    second for the MV/LV grids). The cache holds only what this function wrote (it is read with
    pickle, so it must stay a directory only this project writes); delete it to parse again."""
    path = _grid_cache(code)
    if path is not None and path.exists():
        try:
            with path.open("rb") as f:
                return pickle.load(f)  # our own cache: see the docstring
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
            path.unlink(missing_ok=True)  # unreadable (e.g. written by another pandas): parse again
    import simbench

    require_grid(code)
    try:
        net = simbench.get_simbench_net(code)
    except Exception as exc:
        raise ConfigurationError(f"cannot load SimBench grid {code!r}: {exc}") from None
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(f".{os.getpid()}.part")
            with partial.open("wb") as f:
                pickle.dump(net, f, protocol=pickle.HIGHEST_PROTOCOL)
            partial.replace(path)  # atomic: a concurrent reader sees the whole file or none
        except OSError:
            pass  # a read-only checkout parses every time
    return net


def _grid_cache(code: str) -> Path | None:
    """Where the parsed grid ``code`` is cached, or None when the cache is switched off
    (``GRIDLEDGER_CACHE_DIR=""``). Keyed by the simbench and pandas versions that parsed it."""
    from gridledger.paths import PROJECT_ROOT

    root = os.environ.get("GRIDLEDGER_CACHE_DIR", str(PROJECT_ROOT / ".cache"))
    if not root or "/" in code or not code.isprintable():
        return None
    try:
        key = f"simbench-{metadata.version('simbench')}-pandas-{metadata.version('pandas')}"
    except metadata.PackageNotFoundError:
        return None
    return Path(root) / "simbench" / f"{code}.{key}.pickle"


def grid_loads(code: str) -> int:
    """How many loads (so how many prosumers at most) the grid has."""
    return len(load_grid(code).load)


def household_loads(net: Any) -> list[int]:
    """The grid's loads in the order participants take them: by bus, then by name. A slot's
    baseline replaces, at each participant's bus, the first loads in this order that no earlier
    participant took (``facilitation.baseline``), and the demo's prosumers are these loads."""
    return [int(i) for i in net.load.sort_values(["bus", "name"]).index]


def _steps(day: int) -> slice:
    if not 1 <= day <= DAYS_IN_PROFILE_YEAR:
        raise ConfigurationError(f"day must be 1 to {DAYS_IN_PROFILE_YEAR} (day of the 2016 profile year), got {day}")
    return slice((day - 1) * SLOTS_PER_DAY, day * SLOTS_PER_DAY)


def _relative(net: Any, element: str, suffix: str, steps: slice) -> FloatArray:
    """Each element's relative profile over ``steps`` (rows) as SimBench applies it: the
    profile its ``profile`` column names, 1.0 where it names none (simbench's
    ``get_absolute_profiles_from_relative_profiles``, for one day instead of the year)."""
    import pandas as pd

    if element == "load":
        table = net.profiles["load"].iloc[steps]
    else:  # generators take their profile from the power plants' or the renewables' table
        parts = [net.profiles[k].iloc[steps] for k in ("powerplants", "renewables")]
        table = pd.concat([p.drop(columns="time", errors="ignore") for p in parts], axis=1)
    elements = net[element]
    values = np.ones((steps.stop - steps.start, len(elements)))
    if "profile" in elements.columns:
        names = elements["profile"]
        named = names.notna().to_numpy()
        wanted = (names[named] + suffix).tolist()
        missing = sorted(set(wanted) - set(table.columns))
        if missing:
            raise ConfigurationError(f"SimBench profiles missing for {element}s: {missing[:5]}")
        values[:, named] = table[wanted].to_numpy(dtype=float)
    return values


def grid_baseline(*, day: int, grid: str = DEFAULT_GRID) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Every load's P (W) and Q (var) and every generator's P (W) of the grid for one day, per
    slot (rows) and element (columns, in the net's element order), from SimBench's profiles."""
    return _grid_day(grid, day)


@cache
def _grid_day(grid: str, day: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    steps = _steps(day)
    net = load_grid(grid)
    load_p = _relative(net, "load", "_pload", steps) * net.load.p_mw.to_numpy(float) * W_PER_MW
    load_q = _relative(net, "load", "_qload", steps) * net.load.q_mvar.to_numpy(float) * W_PER_MW
    sgen_p = _relative(net, "sgen", "", steps) * net.sgen.p_mw.to_numpy(float) * W_PER_MW
    for a in (load_p, load_q, sgen_p):
        a.setflags(write=False)  # cached: shared by every caller
    return load_p, load_q, sgen_p


def day_profiles(*, count: int, day: int, grid: str = DEFAULT_GRID) -> list[ProsumerProfile]:
    """``count`` prosumers of ``grid`` for day ``day`` (1 = 1 January) of the profile year: its
    first ``count`` loads in ``household_loads`` order."""
    steps = _steps(day)
    net = load_grid(grid)
    if not 1 <= count <= len(net.load):
        raise ConfigurationError(f"grid {grid} has {len(net.load):,} loads; choose 1 to {len(net.load):,} prosumers")
    load_p, _, _ = _grid_day(grid, day)
    # PV shapes: the grid's PV systems' profiles, per unit of installed power.
    is_pv = net.sgen["profile"].astype(str).str.startswith("PV").to_numpy() if len(net.sgen) else np.zeros(0, bool)
    pv_shapes = list(_relative(net, "sgen", "", steps)[:, is_pv].T)

    chosen = household_loads(net)[:count]
    column = {int(idx): k for k, idx in enumerate(net.load.index)}
    names = net.load["name"].astype(str)
    buses = net.load["bus"]
    result = []
    for k, idx in enumerate(chosen):
        load_w = np.clip(load_p[:, column[idx]], 0.0, None)
        has_pv = k % 2 == 0 and bool(pv_shapes)
        # Sizes from 4 to 10 kWp: a typical rooftop range for a household.
        kwp = 4.0 + (k * 7919 % 7) if has_pv else 0.0
        shape = pv_shapes[(k // 2) % len(pv_shapes)] if has_pv else np.zeros(SLOTS_PER_DAY)
        result.append(
            ProsumerProfile(
                name=str(names.at[idx]),
                bus=int(buses.at[idx]),
                load_index=int(idx),
                load_w=load_w,
                pv_w=np.clip(shape * kwp * 1000.0, 0.0, None),
                pv_kwp=kwp,
            )
        )
    return result


def capacity_w(profile: ProsumerProfile, *, floor_w: int) -> int:
    """A connection capacity for the prosumer: ``floor_w``, or its day's peak rounded up to the
    next kW with a fifth more for the meters' deviation, whichever is larger (the ledger refuses
    an order above capacity/4 Wh per slot)."""
    return max(floor_w, 1_000 * math.ceil(profile.peak_w * 1.2 / 1_000))

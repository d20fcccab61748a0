"""The published network model: a pandapower net, the DSO's limits, and the model's version.

Units follow pandapower inside the model (MW, Mvar, per unit, percent); the market's integers
(Wh per slot) are converted at one place, ``units.wh_to_w``. Sign convention as in pandapower: load
positive, generation negative.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from gridledger.errors import NetworkError
from gridledger.units import DEFAULT_GRID, W_PER_MW

FloatArray = npt.NDArray[np.float64]
# The tables that define the network's physics and topology (what the version hashes).
MODEL_TABLES = ("bus", "line", "trafo", "trafo3w", "switch", "ext_grid", "load", "sgen", "gen", "shunt", "impedance")


@dataclass(frozen=True)
class Limits:
    """The DSO's operating limits: loading of every line and transformer, and the voltage band."""

    max_loading_percent: float = 100.0
    v_min_pu: float = 0.90
    v_max_pu: float = 1.10

    def __post_init__(self) -> None:
        if not 0 < self.max_loading_percent <= 200:
            raise NetworkError(
                f"max loading {self.max_loading_percent} % makes no sense: it must be above 0 and at most 200 %"
            )
        if not 0.5 <= self.v_min_pu < 1.0 < self.v_max_pu <= 1.5:
            raise NetworkError(
                f"voltage band {self.v_min_pu}–{self.v_max_pu} pu makes no sense: it must satisfy "
                "0.5 ≤ v_min < 1.0 < v_max ≤ 1.5 (e.g. 0.90–1.10, or 0.94–1.10 for UK networks)"
            )


UK_LIMITS = Limits(v_min_pu=0.94, v_max_pu=1.10)


def _vector_groups(trafo: Any) -> list[str]:
    """A vector group per transformer consistent with its phase shift: power-grid-model refuses a
    clock the windings cannot make (an odd clock needs a delta winding, an even one does not).
    SimBench's MV/LV and HV/MV transformers shift 150° (Dyn5), its EHV/HV ones 0° (YNyn0)."""
    shift = trafo["shift_degree"].fillna(150.0) if "shift_degree" in trafo else [150.0] * len(trafo)
    groups = []
    for degrees in shift:
        clock = round(float(degrees) / 30.0) % 12
        groups.append(f"Dyn{clock}" if clock % 2 else f"YNyn{clock}")
    return groups


class NetworkModel:
    """A pandapower net with its limits. ``version`` names both: it goes on-chain with every
    clearing result, so that anyone can fetch the same model and re-run the check."""

    def __init__(self, net: Any, *, source: str, limits: Limits | None = None) -> None:
        self.net = net
        self.source = source
        self.limits = limits or Limits()
        # pgm-io cannot convert storage units; batteries take part through the market instead.
        if len(net.storage):
            net.storage.drop(net.storage.index, inplace=True)
        if "vector_group" not in net.trafo or net.trafo["vector_group"].isna().any():
            net.trafo["vector_group"] = _vector_groups(net.trafo)  # SimBench leaves it empty; pgm needs one
        self.version  # noqa: B018  (hashed now, before any engine or power flow touches the net)

    @classmethod
    def load(cls, source: str = DEFAULT_GRID, limits: Limits | None = None) -> NetworkModel:
        """A SimBench grid by its code, or a pandapower JSON file by its path."""
        import pandapower

        if source.endswith(".json"):
            path = Path(source)
            if not path.exists():
                raise NetworkError(f"network model file {path} does not exist")
            try:
                net = pandapower.from_json(str(path))
            except Exception as exc:
                raise NetworkError(f"{path} is not a pandapower network: {exc}") from None
        else:
            from gridledger.network.profiles import load_grid

            net = copy.deepcopy(load_grid(source))
        return cls(net, source=source, limits=limits)

    @cached_property
    def version(self) -> bytes:
        """32 bytes: the SHA-256 of the net's element tables and the limits. Columns and rows are
        put in a fixed order first, because pandapower's own JSON orders some columns by set
        iteration, which changes from one Python process to the next."""
        digest = hashlib.sha256()
        for name in MODEL_TABLES:
            table = self.net[name]
            table = table.reindex(sorted(table.columns, key=str), axis=1).sort_index()
            digest.update(name.encode() + b"\0")
            digest.update(table.to_json(orient="split", double_precision=15, default_handler=str).encode())
        digest.update(json.dumps(asdict(self.limits), sort_keys=True).encode())
        return digest.digest()

    @cached_property
    def buses(self) -> list[int]:
        return [int(b) for b in self.net.bus.index]

    def require_bus(self, bus: int) -> None:
        if bus not in self._bus_set:
            raise NetworkError(
                f"bus {bus} is not in the network model {self.source}: it has {len(self.buses)} buses "
                f"({min(self.buses)}–{max(self.buses)}, not all numbers used)"
            )

    @cached_property
    def _bus_set(self) -> frozenset[int]:
        return frozenset(self.buses)

    @cached_property
    def bus_position(self) -> dict[int, int]:
        """Column of each bus in market arrays (``market_p_w``)."""
        return {bus: i for i, bus in enumerate(self.buses)}

    def static_loads(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        """The elements' own values (W, var, W): a baseline where no profiles exist."""
        net = self.net
        return (
            net.load.p_mw.to_numpy(float) * W_PER_MW * net.load.scaling.to_numpy(float),
            net.load.q_mvar.to_numpy(float) * W_PER_MW * net.load.scaling.to_numpy(float),
            net.sgen.p_mw.to_numpy(float) * W_PER_MW * net.sgen.scaling.to_numpy(float),
        )

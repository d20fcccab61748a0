"""The study's grid: a SimBench network, its year of profiles, and who trades on it.

Every element of the grid that can trade is its own participant with its own meter: each load
(households, heat pumps and charging points, as SimBench names them) buys what it consumes; each
PV generator sells what it generates; each battery (SimBench's storage elements, which the
published network model leaves out) buys and sells by its bidding rule (``study.devices``). In the
market's physical schedule (``facilitation.slot_schedule``) the loads and generators of
participants are replaced by their orders, so a slot's check sees exactly what was ordered.

Arrays are per slot of the profile year (rows: 35,136 quarter-hours of 2016) and element
(columns, in the net's element order), in W and var as the network model uses them.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass
from enum import Enum
from functools import cached_property
from typing import Any

import numpy as np
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from gridledger.errors import ConfigurationError
from gridledger.facilitation import BaselineRef
from gridledger.network.model import FloatArray, Limits, NetworkModel
from gridledger.network.profiles import grid_baseline, load_grid
from gridledger.network.validation import BatchEngine
from gridledger.units import DAYS_IN_PROFILE_YEAR, SLOTS_PER_DAY, W_PER_MW

STUDY_GRID = "1-LV-rural1--2-sw"  # SimBench's 2034 rural LV grid: its transformer overloads at midday


class Kind(Enum):
    LOAD = "load"
    PV = "pv"
    BATTERY = "battery"


@dataclass(frozen=True)
class Participant:
    """One meter: a load, a PV generator or a battery of the grid, at its bus."""

    index: int  # position in ``StudyGrid.participants``
    kind: Kind
    element: int  # index in the net's load, sgen or storage table
    name: str
    bus: int
    address: str  # a stable address derived from the grid and the element, for the market's orders

    @property
    def label(self) -> str:
        return f"{self.kind.value} {self.element} ({self.name})"


@dataclass(frozen=True)
class BatterySpec:
    """A storage element's ratings: power (W), energy (Wh) and one-way efficiency."""

    participant: int
    power_w: float
    capacity_wh: float
    efficiency: float  # each way; SimBench's ``efficiency_percent`` is taken as per-way


def _address(grid: str, kind: Kind, element: int) -> str:
    return str(to_checksum_address(keccak(f"gridledger-study:{grid}:{kind.value}:{element}".encode())[-20:]))


def check_grid_code(code: str) -> None:
    """Refuses, with the codes allowed, anything that is not a SimBench grid code."""
    import simbench

    if code.endswith(".json"):
        raise ConfigurationError(f"the study needs a SimBench grid code with profiles, not a file ({code})")
    codes = simbench.collect_all_simbench_codes()
    if code not in codes:
        close = [c for c in codes if code.split("-")[1:2] == c.split("-")[1:2]][:5] or codes[:5]
        raise ConfigurationError(
            f"{code!r} is not a SimBench grid code; allowed are SimBench's codes such as {STUDY_GRID} "
            f"or {', '.join(close)} (simbench.collect_all_simbench_codes() lists all)"
        )


class StudyGrid:
    """The published model (storage left out, as ``NetworkModel`` does), the engine, the year's
    profiles and the participants."""

    def __init__(self, code: str = STUDY_GRID, limits: Limits | None = None) -> None:
        check_grid_code(code)
        self.code = code
        self.model = NetworkModel.load(code, limits)
        self.engine = BatchEngine(self.model)
        source = load_grid(code)  # the grid as published, storage included
        net = self.model.net
        days = [grid_baseline(day=d, grid=code) for d in range(1, DAYS_IN_PROFILE_YEAR + 1)]
        self.load_p_w: FloatArray = np.clip(np.vstack([d[0] for d in days]), 0.0, None)
        self.load_q_var: FloatArray = np.vstack([d[1] for d in days])
        self.sgen_p_w: FloatArray = np.clip(np.vstack([d[2] for d in days]), 0.0, None)
        self.slots = int(self.load_p_w.shape[0])

        participants: list[Participant] = []
        for kind, frame in ((Kind.LOAD, net.load), (Kind.PV, net.sgen), (Kind.BATTERY, source.storage)):
            for element in frame.index:
                participants.append(
                    Participant(
                        len(participants),
                        kind,
                        int(element),
                        str(frame.at[element, "name"]),
                        int(frame.at[element, "bus"]),
                        _address(code, kind, int(element)),
                    )
                )
        self.participants = participants
        self.batteries = [
            BatterySpec(
                p.index,
                power_w=abs(float(source.storage.at[p.element, "p_mw"])) * W_PER_MW,
                capacity_wh=float(source.storage.at[p.element, "max_e_mwh"]) * W_PER_MW,
                efficiency=_efficiency(source.storage.at[p.element, "efficiency_percent"]),
            )
            for p in participants
            if p.kind is Kind.BATTERY
        ]
        for p in participants:
            self.model.require_bus(p.bus)

    def of_kind(self, kind: Kind) -> list[Participant]:
        return [p for p in self.participants if p.kind is kind]

    @cached_property
    def bus_of(self) -> dict[str, int]:
        return {p.address: p.bus for p in self.participants}

    @cached_property
    def participant_bus_position(self) -> np.ndarray:
        return np.array([self.model.bus_position[p.bus] for p in self.participants], dtype=int)

    def baseline(self, slot: int) -> BaselineRef:
        """Slot ``slot`` of the year (0-based) with every participant's load and generator
        replaced by its orders."""
        return BaselineRef(
            self.code,
            slot // SLOTS_PER_DAY + 1,
            slot % SLOTS_PER_DAY,
            tuple(p.element for p in self.of_kind(Kind.LOAD)),
            tuple(p.element for p in self.of_kind(Kind.PV)),
        )

    @cached_property
    def transformer_ratings_va(self) -> np.ndarray:
        return np.asarray(self.model.net.trafo.sn_mva.to_numpy(float) * W_PER_MW)

    @cached_property
    def lv_transformers_va(self) -> list[float]:
        """Ratings of the transformers that feed LV buses (below 1 kV): the ones a study reinforces."""
        net = self.model.net
        lv = net.trafo[net.bus.loc[net.trafo.lv_bus, "vn_kv"].to_numpy(float) < 1.0]
        return [float(v) * W_PER_MW for v in lv.sn_mva]

    @cached_property
    def feeder_of_bus(self) -> dict[int, str]:
        """Each bus's feeder: the line leaving a transformer's LV bus that leads to it."""
        net = self.model.net
        roots = {int(b) for b in net.trafo.lv_bus}
        neighbours: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for idx, row in net.line.iterrows():
            a, b = int(row.from_bus), int(row.to_bus)
            neighbours[a].append((b, int(idx)))
            neighbours[b].append((a, int(idx)))
        feeder: dict[int, str] = {r: "transformer" for r in roots}
        for root in sorted(roots):
            for first, line in neighbours[root]:
                if first in feeder:
                    continue
                label = f"feeder {line}"
                queue = deque([first])
                feeder[first] = label
                while queue:
                    bus = queue.popleft()
                    for nxt, _ in neighbours[bus]:
                        if nxt not in feeder:
                            feeder[nxt] = label
                            queue.append(nxt)
        return feeder


def _efficiency(value: Any) -> float:
    v = float(value) if value == value else 0.95  # NaN → a typical 95 %
    return v / 100 if v > 1 else v

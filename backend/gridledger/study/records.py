"""What a design run records: per slot and participant, as integer arrays (Wh, base units), with
one record type per slot (``SlotRecord``) for comparisons and the CSV.

Signs: energy at a meter is positive when taken (bought, consumed, charged) and negative when
given (sold, generated, discharged). ``flex_wh`` is what the network's coordination activated on
top of the order: positive is Down (take more or generate less), negative is Up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np


class Design(Enum):
    NO_MARKET = "a"
    P2P_UNCONSTRAINED = "b"
    P2P_THEN_CURTAILMENT = "c"
    JOINT = "d"
    OPTIMUM = "e"

    @property
    def title(self) -> str:
        return {
            "a": "(a) no local market",
            "b": "(b) P2P, unconstrained",
            "c": "(c) P2P, then curtailment",
            "d": "(d) joint energy and flexibility",
            "e": "(e) optimum (upper bound)",
        }[self.value]


class Check(Enum):
    SCREEN = 0  # power-grid-model's batch over the run (the slot needed no relief)
    FACILITATED = 1  # the slot ran through facilitate(): its report's AC check (pandapower)


@dataclass(frozen=True)
class SlotRecord:
    """One slot of a design, as the ledger path must reproduce it."""

    slot: int  # of the year, 0-based
    price_per_kwh: int  # 0 when nothing traded
    network_charge_per_kwh: int
    fills_wh: dict[int, int]  # participant → filled Wh after the network check (signed)
    network_charges: dict[int, int]  # buyer → base units paid to the DSO
    curtailed_wh: dict[int, int]  # participant → Wh taken off its fill
    flex_wh: dict[int, int]  # participant → Wh activated (signed)
    soc_wh: tuple[int, ...]  # batteries' state of charge after the slot, whole Wh

    def as_dict(self) -> dict[str, Any]:
        return {
            "slot": self.slot,
            "price_per_kwh": self.price_per_kwh,
            "network_charge_per_kwh": self.network_charge_per_kwh,
            "fills_wh": self.fills_wh,
            "network_charges": self.network_charges,
            "curtailed_wh": self.curtailed_wh,
            "flex_wh": self.flex_wh,
            "soc_wh": list(self.soc_wh),
        }


@dataclass
class DesignRun:
    """A design over ``slots`` consecutive slots from ``first_slot`` of the year."""

    design: Design
    first_slot: int
    slots: int
    participants: int
    batteries: int
    order_wh: np.ndarray = field(init=False)
    fill_wh: np.ndarray = field(init=False)
    curtailed_wh: np.ndarray = field(init=False)
    flex_wh: np.ndarray = field(init=False)
    price: np.ndarray = field(init=False)
    tariff: np.ndarray = field(init=False)
    soc_wh: np.ndarray = field(init=False)  # (slots + 1, batteries): before the first slot, then after each
    trafo_loading: np.ndarray = field(init=False)
    line_loading: np.ndarray = field(init=False)
    v_min: np.ndarray = field(init=False)
    v_max: np.ndarray = field(init=False)
    violations: np.ndarray = field(init=False)
    checked_by: np.ndarray = field(init=False)
    reserved_wh: np.ndarray = field(init=False)  # (days, batteries): room reserved for the DSO per day
    facilitated: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    flexibility: bool = True  # (c) and (d): offer PV curtailment (and, in (d), batteries) to facilitate()

    def __post_init__(self) -> None:
        s, p, b = self.slots, self.participants, self.batteries
        self.order_wh = np.zeros((s, p), dtype=np.int64)
        self.fill_wh = np.zeros((s, p), dtype=np.int64)
        self.curtailed_wh = np.zeros((s, p), dtype=np.int64)
        self.flex_wh = np.zeros((s, p), dtype=np.int64)
        self.price = np.zeros(s, dtype=np.int64)
        self.tariff = np.zeros(s, dtype=np.int64)
        self.soc_wh = np.zeros((s + 1, b))
        self.trafo_loading = np.zeros(s)
        self.line_loading = np.zeros(s)
        self.v_min = np.ones(s)
        self.v_max = np.ones(s)
        self.violations = np.zeros(s, dtype=np.int64)
        self.checked_by = np.zeros(s, dtype=np.int64)
        self.reserved_wh = np.zeros((max(1, s // 96), b))

    @property
    def metered_wh(self) -> np.ndarray:
        """What each meter read: the order, less what the network check curtailed, plus flexibility."""
        return np.asarray(self.order_wh - np.sign(self.order_wh) * self.curtailed_wh + self.flex_wh)

    def network_charges(self) -> np.ndarray:
        """Base units each buyer paid the DSO per slot: cost(F, p + t) − cost(F, p)."""
        bought = np.clip(self.fill_wh, 0, None)
        p, t = self.price[:, None], self.tariff[:, None]
        return np.asarray(_ceil_div(bought * (p + t)) - _ceil_div(bought * p))

    def record(self, k: int, battery_of: list[int]) -> SlotRecord:
        """Slot ``k`` of the run (0-based within the run) as one record."""
        charges = self.network_charges()[k]
        return SlotRecord(
            slot=self.first_slot + k,
            price_per_kwh=int(self.price[k]),
            network_charge_per_kwh=int(self.tariff[k]),
            fills_wh={i: int(v) for i, v in enumerate(self.fill_wh[k]) if v},
            network_charges={i: int(v) for i, v in enumerate(charges) if v},
            curtailed_wh={i: int(v) for i, v in enumerate(self.curtailed_wh[k]) if v},
            flex_wh={i: int(v) for i, v in enumerate(self.flex_wh[k]) if v},
            soc_wh=tuple(round(float(v)) for v in self.soc_wh[k + 1]),
        )


def _ceil_div(x: np.ndarray) -> np.ndarray:
    """``settlement.rules.cost`` on arrays of Wh × price products (rounded up)."""
    return np.asarray(-(-x // 1000), dtype=np.int64)

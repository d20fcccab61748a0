"""The DSO's use-of-system tariff on locally traded energy: ``t`` base units per kWh per slot,
paid by the buyer on top of the clearing price (``market.clearing``).

Shapes (as the review reports DSOs prefer for network services, announced in advance):

- ``none``: no charge;
- ``flat``: the same rate in every slot;
- ``tou`` (time of use): a night, a day and an evening-peak rate, by the slot's time of day;
- ``cpp`` (critical peak): the flat rate, and on critical days, announced the day before, a
  critical rate in the critical hours. A day is critical when the DSO's day-ahead forecast of the
  grid without a market shows an overloaded slot (``study.run``).

An optional local discount takes a fraction off every rate: all of the study's trades stay inside
one LV grid, so it applies to every trade.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

import numpy as np

from gridledger.errors import ConfigurationError
from gridledger.units import SLOTS_PER_DAY, SLOTS_PER_HOUR

TariffShape = Literal["none", "flat", "tou", "cpp"]
SHAPES: tuple[TariffShape, ...] = ("none", "flat", "tou", "cpp")


@dataclass(frozen=True)
class Tariff:
    shape: TariffShape = "tou"
    flat_per_kwh: int = 20_000
    night_per_kwh: int = 10_000  # 00:00–07:00
    day_per_kwh: int = 20_000  # 07:00–17:00 and 21:00–24:00
    peak_per_kwh: int = 40_000  # 17:00–21:00
    critical_per_kwh: int = 100_000
    critical_hours: tuple[int, int] = (10, 16)
    local_discount: float = 0.0

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ConfigurationError(f"tariff shape {self.shape!r} is unknown; allowed: {', '.join(SHAPES)}")
        if not 0.0 <= self.local_discount <= 1.0:
            raise ConfigurationError(f"local discount must be 0 to 1 (a fraction), got {self.local_discount}")
        rates = (self.flat_per_kwh, self.night_per_kwh, self.day_per_kwh, self.peak_per_kwh, self.critical_per_kwh)
        if min(rates) < 0:
            raise ConfigurationError("tariff rates must be 0 or more base units per kWh")

    def per_slot(self, slots: int, first_slot: int = 0, critical_days: Collection[int] = ()) -> np.ndarray:
        """``t`` for ``slots`` consecutive slots of the year from ``first_slot`` (0-based);
        ``critical_days`` are 0-based days of the year (for ``cpp``)."""
        index = np.arange(first_slot, first_slot + slots)
        hour = (index % SLOTS_PER_DAY) // SLOTS_PER_HOUR
        if self.shape == "none":
            rate = np.zeros(slots, dtype=np.int64)
        elif self.shape == "flat":
            rate = np.full(slots, self.flat_per_kwh, dtype=np.int64)
        elif self.shape == "tou":
            rate = np.where(
                hour < 7, self.night_per_kwh, np.where((hour >= 17) & (hour < 21), self.peak_per_kwh, self.day_per_kwh)
            ).astype(np.int64)
        else:
            start, end = self.critical_hours
            critical = np.isin(index // SLOTS_PER_DAY, list(critical_days)) & (hour >= start) & (hour < end)
            rate = np.where(critical, self.critical_per_kwh, self.flat_per_kwh).astype(np.int64)
        return np.asarray(np.floor(rate * (1.0 - self.local_discount)), dtype=np.int64)

    def describe(self) -> str:
        discount = f", local discount {self.local_discount:.0%}" if self.local_discount else ""
        if self.shape == "none":
            return "none"
        if self.shape == "flat":
            return f"flat {self.flat_per_kwh / 1e6:.3f}/kWh{discount}"
        if self.shape == "tou":
            return (
                f"time of use {self.night_per_kwh / 1e6:.3f} (0–7 h) / {self.day_per_kwh / 1e6:.3f} / "
                f"{self.peak_per_kwh / 1e6:.3f} (17–21 h) per kWh{discount}"
            )
        start, end = self.critical_hours
        return (
            f"critical peak: flat {self.flat_per_kwh / 1e6:.3f}/kWh, {self.critical_per_kwh / 1e6:.3f}/kWh "
            f"{start}–{end} h on days announced critical{discount}"
        )

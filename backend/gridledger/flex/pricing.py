"""Availability pricing schedules: time-of-use and critical-peak.

The domain report recommends these over short-time pricing for network services: the DSO names
a base availability price and a schedule that scales it by time of day (time-of-use) or on
announced critical-peak slots. A window's availability payment is the sum over its slots of
kW × 0.25 h × that slot's price, which equals kW × hours × the window's mean price, so the
ledger carries the mean (rounded down to a whole base unit) as the window's price.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from gridledger.units import SLOT_SECONDS

BPS = 10_000


class Schedule(Protocol):
    def multiplier_bps(self, slot: int) -> int: ...


@dataclass(frozen=True)
class TimeOfUse:
    """Bands of the day (UTC hours, start inclusive, end exclusive) and their multipliers in basis
    points; hours no band covers use ``otherwise_bps``. Default: evening peak 16–20 h at 150 %,
    day 7–16 h at 100 %, night at 50 %."""

    bands: Sequence[tuple[int, int, int]] = ((16, 20, 15_000), (7, 16, 10_000))
    otherwise_bps: int = 5_000

    def multiplier_bps(self, slot: int) -> int:
        hour = datetime.fromtimestamp(slot, tz=UTC).hour
        for start, end, bps in self.bands:
            if start <= hour < end:
                return bps
        return self.otherwise_bps


@dataclass(frozen=True)
class CriticalPeak:
    """A flat price, raised to ``peak_bps`` on the critical-peak slots the DSO announced."""

    peak_slots: frozenset[int] = field(default_factory=frozenset)
    peak_bps: int = 30_000
    otherwise_bps: int = BPS

    def multiplier_bps(self, slot: int) -> int:
        return self.peak_bps if slot in self.peak_slots else self.otherwise_bps


def slot_price(schedule: Schedule, base_price_per_kwh: int, slot: int) -> int:
    return base_price_per_kwh * schedule.multiplier_bps(slot) // BPS


def window_price(schedule: Schedule, base_price_per_kwh: int, window_start: int, window_slots: int) -> int:
    """The window's availability price: the mean of its slots' prices, rounded down."""
    prices = [slot_price(schedule, base_price_per_kwh, window_start + k * SLOT_SECONDS) for k in range(window_slots)]
    return sum(prices) // window_slots

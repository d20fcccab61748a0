"""An electric vehicle on a prosumer's home charger, and how it decides when to charge.

Device: a charger of ``power_w`` and a car plugged in every day from ``arrive_slot`` to
``depart_slot`` (slots of the UTC day; a window that wraps past midnight runs overnight), which
must have taken ``need_wh`` by the time it leaves. SimBench's "today" grids have no EVs, so the
community gives one to every fourth agent (``EV_EVERY``) with the defaults below: a 7.4 kW
charger (32 A, one phase), 10 kWh a day (about 60 km), home from 18:00 to 07:00 UTC.

Strategy, decided before each slot's gate closes (the meter then reads what it decided):

1. **What cannot wait is charged now.** If the rest of the need no longer fits in the slots
   left before departure at full power, the shortfall is charged in this slot.
2. **Own sunshine first.** A household surplus (PV above its load) charges the car, up to the
   charger's power, instead of being sold at the export tariff.
3. **Cheap market energy.** If the market's last cleared price (``GET /market/slots``, public)
   is at or below ``cheap_price_per_kwh``, the car charges a full step now, ahead of need.
4. Otherwise it waits: charging as late as its deadline allows leaves the early evening peak to
   the households.

The charge adds to the household's net energy; the agent's battery and its order see the sum.
"""

from __future__ import annotations

from dataclasses import dataclass

from gridledger.units import DAY_SECONDS, SLOT_SECONDS, SLOTS_PER_DAY, SLOTS_PER_HOUR

EV_EVERY = 4  # every fourth agent of a community has an EV
EV_POWER_W = 7_400
EV_NEED_WH = 10_000
EV_ARRIVE_SLOT = 18 * SLOTS_PER_HOUR  # 18:00 UTC
EV_DEPART_SLOT = 7 * SLOTS_PER_HOUR  # 07:00 UTC the next morning
EV_CHEAP_PRICE_PER_KWH = 150_000  # 0.15 GLEUR/kWh: half the import tariff


@dataclass
class ElectricVehicle:
    power_w: int = EV_POWER_W
    need_wh: int = EV_NEED_WH
    arrive_slot: int = EV_ARRIVE_SLOT
    depart_slot: int = EV_DEPART_SLOT
    cheap_price_per_kwh: int = EV_CHEAP_PRICE_PER_KWH
    charged_wh: float = 0.0  # in the current plug-in window
    window_start: int | None = None  # when the current plug-in window began (unix seconds)

    def __post_init__(self) -> None:
        if self.power_w <= 0 or self.need_wh < 0:
            raise ValueError(
                f"an EV needs a positive charger power and a need ≥ 0 (got {self.power_w} W, {self.need_wh} Wh)"
            )
        for slot in (self.arrive_slot, self.depart_slot):
            if not 0 <= slot < SLOTS_PER_DAY:
                raise ValueError(f"plug-in times are slots of the day, 0 to {SLOTS_PER_DAY - 1}, got {slot}")
        if self.arrive_slot == self.depart_slot:
            raise ValueError("the car must be plugged in for at least one slot: arrival and departure differ")

    @property
    def step_wh(self) -> float:
        """At most this much in one slot."""
        return self.power_w / SLOTS_PER_HOUR

    def slots_left(self, delivery_start: int) -> int:
        """Slots from ``delivery_start`` (included) to departure; 0 when the car is away."""
        k = (delivery_start % DAY_SECONDS) // SLOT_SECONDS
        window = (self.depart_slot - self.arrive_slot) % SLOTS_PER_DAY
        into = (k - self.arrive_slot) % SLOTS_PER_DAY
        return window - into if into < window else 0

    def _window_of(self, delivery_start: int) -> int:
        k = (delivery_start % DAY_SECONDS) // SLOT_SECONDS
        return delivery_start - ((k - self.arrive_slot) % SLOTS_PER_DAY) * SLOT_SECONDS

    def charge_wh(self, delivery_start: int, *, household_wh: float, last_price_per_kwh: int | None) -> float:
        """The slot's charge (Wh) by the strategy above; ``household_wh`` is the household's net
        energy without the car (negative: a surplus)."""
        left = self.slots_left(delivery_start)
        if left == 0:
            return 0.0
        window = self._window_of(delivery_start)
        if window != self.window_start:  # plugged in again (or first seen): a new day's need
            self.window_start, self.charged_wh = window, 0.0
        remaining = self.need_wh - self.charged_wh
        if remaining <= 0:
            return 0.0
        must = max(0.0, remaining - (left - 1) * self.step_wh)
        wanted = must
        if household_wh < 0:
            wanted = max(wanted, -household_wh)
        if last_price_per_kwh is not None and last_price_per_kwh <= self.cheap_price_per_kwh:
            wanted = self.step_wh
        charge = min(wanted, self.step_wh, remaining)
        self.charged_wh += charge
        return charge

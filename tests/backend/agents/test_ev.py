"""The EV agent's charging strategy (``agents/ev.py``): the need is met by departure and as late as
it allows; own PV surplus and a cheap market price bring charging forward; a new plug-in window
starts a new need; and the charge reaches the prosumer's order and meter reading."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from gridledger.agents.ev import ElectricVehicle
from gridledger.agents.prosumer import IMPORT_TARIFF_PER_KWH, Prosumer
from gridledger.chain.connection import FIRST_PROSUMER_INDEX, derive_account
from gridledger.config import Settings
from gridledger.market.orders import Side
from gridledger.network.profiles import ProsumerProfile
from gridledger.units import SLOT_SECONDS, SLOTS_PER_DAY

DAY = 1_813_536_000  # 2027-06-21 00:00 UTC
EXPENSIVE = 250_000


def at(hour: float, day: int = 0) -> int:
    return DAY + day * 86_400 + int(hour * 3_600)


def night(ev: ElectricVehicle, *, household_wh: float = 100.0, price: int | None = EXPENSIVE) -> list[float]:
    """The charge of every slot from 18:00 to 07:00 the next morning."""
    start = at(18)
    return [
        ev.charge_wh(start + k * SLOT_SECONDS, household_wh=household_wh, last_price_per_kwh=price)
        for k in range(13 * 4)
    ]


def test_the_need_is_met_at_departure_as_late_as_it_allows() -> None:
    ev = ElectricVehicle()  # 7.4 kW: 1,850 Wh a slot; 10 kWh by 07:00
    charges = night(ev)
    assert sum(charges) == pytest.approx(10_000)
    # 10,000 Wh = 5 full slots and 750 Wh: the last six slots before 07:00, the first of them partly.
    assert charges[:-6] == [0.0] * (len(charges) - 6)
    assert charges[-6:] == [pytest.approx(750.0)] + [1_850.0] * 5
    assert ev.charge_wh(at(7), household_wh=100.0, last_price_per_kwh=EXPENSIVE) == 0.0  # gone
    assert ev.charge_wh(at(12), household_wh=-3_000.0, last_price_per_kwh=0) == 0.0  # away at noon


def test_a_cheap_market_price_brings_charging_forward_and_stops_at_the_need() -> None:
    charges = night(ElectricVehicle(), price=100_000)  # at or below 0.15: charge now
    assert charges[:5] == [1_850.0] * 5 and charges[5] == pytest.approx(750.0)
    assert sum(charges) == pytest.approx(10_000) and charges[6:] == [0.0] * (len(charges) - 6)


def test_a_household_surplus_charges_the_car_within_the_charger_s_power() -> None:
    ev = ElectricVehicle(arrive_slot=10 * 4, depart_slot=16 * 4)  # plugged in at home by day
    assert ev.charge_wh(at(10), household_wh=-600.0, last_price_per_kwh=EXPENSIVE) == 600.0
    assert ev.charge_wh(at(10.25), household_wh=-5_000.0, last_price_per_kwh=EXPENSIVE) == 1_850.0
    assert ev.charged_wh == 2_450.0


def test_each_plug_in_window_has_its_own_need() -> None:
    ev = ElectricVehicle()
    assert sum(night(ev)) == pytest.approx(10_000)
    tomorrow = [
        ev.charge_wh(at(18, day=1) + k * SLOT_SECONDS, household_wh=0.0, last_price_per_kwh=100_000) for k in range(8)
    ]
    assert sum(tomorrow) == pytest.approx(10_000)


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"power_w": 0}, "positive charger power"),
        ({"arrive_slot": SLOTS_PER_DAY}, "slots of the day, 0 to 95"),
        ({"arrive_slot": 20, "depart_slot": 20}, "arrival and departure differ"),
    ],
)
def test_an_impossible_ev_is_refused_in_words(kwargs: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        ElectricVehicle(**kwargs)


class Orders:
    """Stands in for the API client: records the orders an agent places."""

    def __init__(self) -> None:
        self.placed: list[dict[str, Any]] = []

    def place(self, account: Any, **order: Any) -> dict[str, Any]:
        self.placed.append(order)
        return {"order_hash": f"0x{len(self.placed):064x}"}


def test_the_charge_is_in_the_agent_s_order_and_its_meter_reading() -> None:
    load = np.full(SLOTS_PER_DAY, 400.0)  # 100 Wh a slot, no PV
    profile = ProsumerProfile("h", bus=3, load_index=0, load_w=load, pv_w=np.zeros(SLOTS_PER_DAY), pv_kwp=0.0)
    account = derive_account(Settings().mnemonic, FIRST_PROSUMER_INDEX)
    agent = Prosumer("agent-003", account, profile, seed=3, ev=ElectricVehicle())
    orders = Orders()
    agent.trade(orders, at(6.75), last_price_per_kwh=EXPENSIVE)  # type: ignore[arg-type]  # the last slot before 07:00
    [order] = orders.placed
    assert order["side"] is Side.BUY and order["energy_wh"] == 100 + 1_850  # household + a full step (it must)
    assert order["price_per_kwh"] == IMPORT_TARIFF_PER_KWH - agent.discount_per_kwh
    assert agent.plan(at(6.75)) == 1_950  # what the meter operator posts: decided once

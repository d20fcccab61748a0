"""The simulated day's network: the published model, SimBench's baseline for the configured day,
and the participants' buses: the public inputs ``facilitation.facilitate`` takes."""

from __future__ import annotations

from collections.abc import Sequence

from gridledger.facilitation import BaselineRef, Dispatch, SlotInputs, slot_schedule
from gridledger.market.orders import RecordedOrder
from gridledger.network.model import Limits, NetworkModel
from gridledger.network.profiles import ProsumerProfile
from gridledger.network.validation import BatchEngine, ac_check


class GridDay:
    def __init__(self, grid: str, day: int, limits: Limits, profiles: Sequence[ProsumerProfile]) -> None:
        self.grid = grid
        self.day = day
        self.model = NetworkModel.load(grid, limits)
        self.engine = BatchEngine(self.model)
        for profile in profiles:  # before anyone is registered on-chain
            self.model.require_bus(profile.bus)
        self.bus_of: dict[str, int] = {}  # in registration order
        # The AC check's first run in a process copies the net and has numba compile pandapower's
        # power flow (~20 s): paid here, with the grid, rather than inside the first slot's clearing.
        ac_check(self.model, slot_schedule(self.model, self.baseline(0), [], {}))

    def feeder_buses(self, bus: int) -> frozenset[int]:
        """The buses that share ``bus``'s transformer (its LV grid on an MV/LV network)."""
        return self.engine.feeder_of(bus)

    def baseline(self, slot: int) -> BaselineRef:
        """Slot ``slot`` of the day as SimBench has it, before any market (the award's grid)."""
        return BaselineRef(self.grid, self.day, slot, ())

    def inputs(
        self,
        delivery_start: int,
        recorded: Sequence[RecordedOrder],
        dispatched: Sequence[Dispatch],
        *,
        network_charge_per_kwh: int = 0,
    ) -> SlotInputs:
        """What the facilitator reads for a slot: its baseline is the one its delivery time and the
        registrations imply (the run's clock is set so that this is the configured day), and the
        DSO's network tariff the ledger holds for it."""
        ref = BaselineRef.for_delivery(self.model, self.grid, delivery_start, self.bus_of.values())
        return SlotInputs(
            delivery_start,
            ref,
            recorded,
            self.bus_of,
            dispatched=dispatched,
            network_charge_per_kwh=network_charge_per_kwh,
        )

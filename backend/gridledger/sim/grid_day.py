"""The simulated day's network: the published model, SimBench's baseline for the configured day,
and the participants' buses: the public inputs ``facilitation.facilitate`` takes."""

from __future__ import annotations

from collections.abc import Sequence

from gridledger.facilitation import BaselineRef, Dispatch, SlotInputs
from gridledger.market.orders import RecordedOrder
from gridledger.network.model import Limits, NetworkModel
from gridledger.network.profiles import ProsumerProfile
from gridledger.network.validation import BatchEngine


class GridDay:
    def __init__(self, grid: str, day: int, limits: Limits, profiles: Sequence[ProsumerProfile]) -> None:
        self.grid = grid
        self.day = day
        self.model = NetworkModel.load(grid, limits)
        self.engine = BatchEngine(self.model)
        for profile in profiles:  # before anyone is registered on-chain
            self.model.require_bus(profile.bus)
        self.replaced = tuple(sorted(p.load_index for p in profiles))
        self.bus_of: dict[str, int] = {}

    def baseline(self, slot: int, *, replaced: bool = True) -> BaselineRef:
        """Slot ``slot`` of the day; without ``replaced``, the grid as SimBench has it (no market)."""
        return BaselineRef(self.grid, self.day, slot, self.replaced if replaced else ())

    def inputs(
        self, slot: int, delivery_start: int, recorded: Sequence[RecordedOrder], dispatched: Sequence[Dispatch]
    ) -> SlotInputs:
        return SlotInputs(delivery_start, self.baseline(slot), recorded, self.bus_of, dispatched=dispatched)

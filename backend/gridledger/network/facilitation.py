"""The facilitator's network duty for one slot, as a function anyone can re-run.

Inputs are all public: the published network model, SimBench's profiles (named in the report's
``baseline``), the orders the ledger recorded and the participants' buses from the registry.
The physical schedule is the grid's own loads and generation, with each participant's
household load replaced by its orders (a sale injects its energy at the participant's bus, a
purchase withdraws it), since that energy flows whether it is traded locally or with the
supplier. Network-aware clearing then curtails fills until the AC check passes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from gridledger.flex.coordination import FlexUnit, PricedFill, clear_jointly
from gridledger.flex.products import Direction
from gridledger.market.clearing import ClearingResult
from gridledger.market.orders import Order, Side
from gridledger.network.curtailment import NetworkClearing, TradeFill, clear_network_aware, curtailment_record
from gridledger.network.model import FloatArray, NetworkModel, wh_to_w
from gridledger.network.validation import BatchEngine, NetworkReport, Schedule, report_for

if TYPE_CHECKING:
    from gridledger.chain.ledger import Ledger


@dataclass(frozen=True)
class BaselineRef:
    """Which SimBench profile step is the slot's baseline, and which loads the market replaces."""

    grid: str
    day: int
    slot: int
    replaced_loads: tuple[int, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"grid": self.grid, "day": self.day, "slot": self.slot, "replaced_loads": list(self.replaced_loads)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BaselineRef:
        return cls(
            str(data["grid"]), int(data["day"]), int(data["slot"]), tuple(int(i) for i in data["replaced_loads"])
        )


@cache
def _day(grid: str, day: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    from gridledger.sim.profiles import grid_baseline

    return grid_baseline(day=day, grid=grid)


def slot_schedule(
    model: NetworkModel, ref: BaselineRef, orders: Sequence[Order], bus_of: Mapping[str, int]
) -> Schedule:
    load_p, load_q, sgen_p = (a[ref.slot : ref.slot + 1].copy() for a in _day(ref.grid, ref.day))
    replaced = list(ref.replaced_loads)
    load_p[:, replaced] = 0.0
    load_q[:, replaced] = 0.0
    market = np.zeros((1, len(model.buses)))
    for order in orders:
        sign = 1.0 if order.side is Side.BUY else -1.0
        market[0, model.bus_position[bus_of[order.prosumer]]] += sign * wh_to_w(order.energy_wh)
    return Schedule(load_p, load_q, sgen_p, market)


def check_slot(
    model: NetworkModel,
    engine: BatchEngine,
    ref: BaselineRef,
    delivery_start: int,
    recorded: Sequence[tuple[bytes, Order]],
    clearing: ClearingResult,
    bus_of: Mapping[str, int],
    flex: Sequence[FlexUnit] = (),
    dispatched: Sequence[Dispatch] = (),
) -> tuple[NetworkClearing, NetworkReport]:
    """Validates one cleared slot and, if it breaches a limit, relieves it: by curtailment alone
    (``network.curtailment``), or, when awarded flexibility can be activated in the slot
    (``flex``), by clearing trades and flexibility together at least cost (``flex.coordination``).
    Flexibility the DSO already activated for the slot (``dispatched``) is part of the physical
    schedule. Returns the result and its report."""
    schedule = slot_schedule(model, ref, [o for _, o in recorded], bus_of)
    for d in dispatched:
        sign = -1.0 if d.direction is Direction.UP else 1.0
        schedule.market_p_w[0, model.bus_position[d.bus]] += sign * wh_to_w(d.energy_wh)
    by_dso = {"dispatched_by_dso": [d.as_dict() for d in dispatched]} if dispatched else {}
    fills = [
        TradeFill(h, o.prosumer, o.side, bus_of[o.prosumer], clearing.fills[h])
        for h, o in recorded
        if clearing.fills[h]
    ]
    if not flex:
        network = clear_network_aware(model, engine, schedule, fills)
        report = report_for(model, delivery_start, network.check, network.curtailments, ref.as_dict(), by_dso)
        return network, report
    prices = {h: o.price_per_kwh for h, o in recorded}
    joint = clear_jointly(model, engine, schedule, [PricedFill(f, prices[f.order_hash]) for f in fills], flex)
    reason = {"rule": "joint clearing of trades and flexibility at least cost", "choice": joint.choice}
    curtailments = [
        curtailment_record(f, f.filled_wh - joint.fills[f.order_hash], [reason])
        for f in fills
        if joint.fills[f.order_hash] < f.filled_wh
    ]
    flexibility = {
        "units": [
            {
                "offer_id": "0x" + u.offer_id.hex(),
                "bus": u.bus,
                "direction": u.direction.name.lower(),
                "max_wh": u.max_wh,
                "utilisation_price_per_kwh": u.utilisation_price_per_kwh,
            }
            for u in flex
        ],
        **joint.record(),
        **by_dso,
    }
    network = NetworkClearing(joint.fills, joint.check, engine.run(schedule)[0], curtailments, joint.unresolved)
    report = report_for(model, delivery_start, joint.check, curtailments, ref.as_dict(), flexibility)
    return network, report


@dataclass(frozen=True)
class Dispatch:
    """Flexibility the DSO activated for a slot before clearing: it flows whatever the market does."""

    offer_id: bytes
    bus: int
    direction: Direction
    energy_wh: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "offer_id": "0x" + self.offer_id.hex(),
            "bus": self.bus,
            "direction": self.direction.name.lower(),
            "energy_wh": self.energy_wh,
        }


def dispatches(report_flexibility: Mapping[str, Any]) -> list[Dispatch]:
    """The DSO activations a report names (for re-running its slot)."""
    return [
        Dispatch(
            bytes.fromhex(d["offer_id"][2:]), int(d["bus"]), Direction[d["direction"].upper()], int(d["energy_wh"])
        )
        for d in report_flexibility.get("dispatched_by_dso", [])
    ]


def flex_units(report_flexibility: Mapping[str, Any]) -> list[FlexUnit]:
    """The flexibility candidates a report names (for re-running its slot)."""
    return [
        FlexUnit(
            bytes.fromhex(u["offer_id"][2:]),
            int(u["bus"]),
            Direction[u["direction"].upper()],
            int(u["max_wh"]),
            int(u["utilisation_price_per_kwh"]),
        )
        for u in report_flexibility.get("units", [])
    ]


def fills_hash(fills: Sequence[tuple[bytes, int]]) -> bytes:
    """The hash chain the contract stores at clearing: keccak(previous ‖ orderHash ‖ filledWh)."""
    from eth_utils.crypto import keccak

    chain = b"\0" * 32
    for order_hash, filled_wh in fills:
        chain = bytes(keccak(chain + order_hash + filled_wh.to_bytes(32, "big")))
    return chain


def register_participant(
    ledger: Ledger, model: NetworkModel, account: str, *, meter_id: int, bus: int, capacity_w: int
) -> None:
    """Registers a participant after checking that its connection point is a bus of the
    published model: a bus the model lacks is refused before anything reaches the chain."""
    model.require_bus(bus)
    ledger.register(account, meter_id=meter_id, bus=bus, capacity_w=capacity_w)

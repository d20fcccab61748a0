"""One slot's duty: clear the recorded orders, check the result on the network, and relieve what
breaches a limit, by curtailment alone (``network.curtailment``) or, when awarded flexibility
can be activated in the slot, by clearing trades and flexibility together at least cost
(``flex.coordination``). Flexibility the DSO already activated for the slot is part of the
physical schedule. The outcome carries the report whose hash goes on-chain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gridledger.chain.ledger import fills_hash
from gridledger.encoding import from_hex, to_hex
from gridledger.facilitation.baseline import BaselineRef, slot_schedule
from gridledger.flex.coordination import FlexUnit, PricedFill, clear_jointly
from gridledger.flex.products import Direction
from gridledger.market.book import clear_recorded
from gridledger.market.clearing import ClearingResult
from gridledger.market.orders import Order, RecordedOrder
from gridledger.network.curtailment import NetworkClearing, TradeFill, clear_network_aware, curtailment_record
from gridledger.network.model import NetworkModel
from gridledger.network.validation import BatchEngine, NetworkReport, report_for
from gridledger.units import wh_to_w


@dataclass(frozen=True)
class Dispatch:
    """Flexibility the DSO activated for a slot before clearing: it flows whatever the market does."""

    offer_id: bytes
    bus: int
    direction: Direction
    energy_wh: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "offer_id": to_hex(self.offer_id),
            "bus": self.bus,
            "direction": self.direction.name.lower(),
            "energy_wh": self.energy_wh,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Dispatch:
        return cls(from_hex(d["offer_id"]), int(d["bus"]), Direction[d["direction"].upper()], int(d["energy_wh"]))


def _unit_as_dict(u: FlexUnit) -> dict[str, Any]:
    return {
        "offer_id": to_hex(u.offer_id),
        "bus": u.bus,
        "direction": u.direction.name.lower(),
        "max_wh": u.max_wh,
        "utilisation_price_per_kwh": u.utilisation_price_per_kwh,
    }


def _unit_from_dict(u: Mapping[str, Any]) -> FlexUnit:
    return FlexUnit(
        from_hex(u["offer_id"]),
        int(u["bus"]),
        Direction[u["direction"].upper()],
        int(u["max_wh"]),
        int(u["utilisation_price_per_kwh"]),
    )


@dataclass(frozen=True)
class SlotInputs:
    """Everything one slot's facilitation reads, all of it public: the orders the ledger
    recorded (open, in arrival order), the participants' buses from the registry, the slot's
    baseline, the awarded flexibility that could be activated and what the DSO activated itself."""

    delivery_start: int
    baseline: BaselineRef
    recorded: Sequence[RecordedOrder]
    bus_of: Mapping[str, int]
    flex: Sequence[FlexUnit] = ()
    dispatched: Sequence[Dispatch] = ()
    network_charge_per_kwh: int = 0  # the DSO's use-of-system tariff for the slot (market.clearing)

    @classmethod
    def from_report(
        cls,
        delivery_start: int,
        recorded: Sequence[RecordedOrder],
        bus_of: Mapping[str, int],
        report: Mapping[str, Any],
    ) -> SlotInputs:
        """The inputs a stored report names (baseline, flexibility candidates, the DSO's
        activations), with the orders and buses read from the chain: what an audit re-runs."""
        flexibility = report.get("flexibility", {})
        return cls(
            delivery_start,
            BaselineRef.from_dict(report["baseline"]),
            recorded,
            bus_of,
            [_unit_from_dict(u) for u in flexibility.get("units", [])],
            [Dispatch.from_dict(d) for d in flexibility.get("dispatched_by_dso", [])],
        )


@dataclass(frozen=True)
class FacilitatedSlot:
    """A slot cleared and checked on the network: what ``commit`` records and the audit compares."""

    inputs: SlotInputs
    clearing: ClearingResult
    network: NetworkClearing
    report: NetworkReport
    fills: list[tuple[RecordedOrder, int]] = field(repr=False)

    @property
    def delivery_start(self) -> int:
        return self.inputs.delivery_start

    @property
    def order_fills(self) -> list[tuple[Order, int]]:
        """Every recorded order with its fill, in arrival order: what ``commitClearing`` and
        ``settle`` take."""
        return [(r.order, filled) for r, filled in self.fills]

    @property
    def fills_hash(self) -> bytes:
        return fills_hash((r.order_hash, filled) for r, filled in self.fills)

    @property
    def activations(self) -> dict[bytes, int]:
        """Flexibility the joint clearing chose to activate, Wh per offer."""
        chosen = self.report.flexibility.get("activations", {})
        return {from_hex(offer_id): int(wh) for offer_id, wh in chosen.items()}


def facilitate(model: NetworkModel, engine: BatchEngine, inputs: SlotInputs) -> FacilitatedSlot:
    """Clears the slot's recorded orders, validates the result on the network and relieves any
    breach; returns the result and its report. Pure: the same inputs give the same report."""
    recorded = inputs.recorded
    _, clearing = clear_recorded(recorded, network_charge_per_kwh=inputs.network_charge_per_kwh)
    bus_of = inputs.bus_of
    schedule = slot_schedule(model, inputs.baseline, [r.order for r in recorded], bus_of)
    for d in inputs.dispatched:
        sign = -1.0 if d.direction is Direction.UP else 1.0
        schedule.market_p_w[0, model.bus_position[d.bus]] += sign * wh_to_w(d.energy_wh)
    by_dso = {"dispatched_by_dso": [d.as_dict() for d in inputs.dispatched]} if inputs.dispatched else {}
    trades = [
        TradeFill(r.order_hash, r.order.prosumer, r.order.side, bus_of[r.order.prosumer], clearing.fills[r.order_hash])
        for r in recorded
        if clearing.fills[r.order_hash]
    ]
    baseline = inputs.baseline.as_dict()
    if not inputs.flex:
        network = clear_network_aware(model, engine, schedule, trades)
        report = report_for(model, inputs.delivery_start, network.check, network.curtailments, baseline, by_dso)
    else:
        prices = {r.order_hash: r.order.price_per_kwh for r in recorded}
        priced = [PricedFill(f, prices[f.order_hash]) for f in trades]
        joint = clear_jointly(model, engine, schedule, priced, inputs.flex)
        reason = {"rule": "joint clearing of trades and flexibility at least cost", "choice": joint.choice}
        curtailments = [
            curtailment_record(f, f.filled_wh - joint.fills[f.order_hash], [reason])
            for f in trades
            if joint.fills[f.order_hash] < f.filled_wh
        ]
        flexibility = {"units": [_unit_as_dict(u) for u in inputs.flex], **joint.record(), **by_dso}
        network = NetworkClearing(joint.fills, joint.check, engine.run(schedule)[0], curtailments, joint.unresolved)
        report = report_for(model, inputs.delivery_start, joint.check, curtailments, baseline, flexibility)
    fills = [(r, network.fills.get(r.order_hash, 0)) for r in recorded]
    return FacilitatedSlot(inputs, clearing, network, report, fills)

"""Recording a facilitated slot on the ledger, and admitting participants the model knows."""

from __future__ import annotations

from gridledger.chain.ledger import Ledger
from gridledger.facilitation.slot import FacilitatedSlot
from gridledger.network.model import NetworkModel
from gridledger.store.reports import ReportStore
from gridledger.units import SLOTS_PER_HOUR


def commit(ledger: Ledger, reports: ReportStore, model: NetworkModel, slot: FacilitatedSlot) -> None:
    """Records a facilitated slot: checks the whole commit first, every chunk of it (a result the
    contract refuses, say for a slot already cleared or whose gate is open, writes nothing, so a
    stored report always hashes to the chain's), stores the report, activates the flexibility the
    joint clearing chose (facilitator's role), then sends the commit's chunks: price, every
    order's fill, the report's hash and the model's version. The report is stored before the
    commit so a committed hash always has it."""
    ds = slot.delivery_start
    plan = ledger.prepare_clearing(
        ds,
        slot.clearing.ledger_price,
        slot.order_fills,
        network_report_hash=slot.report.hash,
        network_model_version=model.version,
    )
    reports.save(ledger.market.address, slot.report)
    for offer_id, energy_wh in slot.activations.items():
        ledger.activate_flex(offer_id, ds, energy_wh * SLOTS_PER_HOUR, by="facilitator")
    plan.send()


def register_participant(
    ledger: Ledger, model: NetworkModel, account: str, *, meter_id: int, bus: int, capacity_w: int
) -> None:
    """Registers a participant after checking that its connection point is a bus of the
    published model: a bus the model lacks is refused before anything reaches the chain."""
    model.require_bus(bus)
    ledger.register(account, meter_id=meter_id, bus=bus, capacity_w=capacity_w)

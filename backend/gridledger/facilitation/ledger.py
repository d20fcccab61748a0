"""Recording a facilitated slot on the ledger, and admitting participants the model knows."""

from __future__ import annotations

from gridledger.chain.ledger import Ledger
from gridledger.facilitation.slot import FacilitatedSlot
from gridledger.network.model import NetworkModel
from gridledger.store.reports import ReportStore
from gridledger.units import SLOTS_PER_HOUR


def commit(ledger: Ledger, reports: ReportStore, model: NetworkModel, slot: FacilitatedSlot) -> None:
    """Records a facilitated slot: stores its report, activates the flexibility the joint
    clearing chose (facilitator's role), then commits the price, every order's fill, the
    report's hash and the model's version. The report is stored first so that a committed hash
    always has its report; a slot already committed is refused before anything is stored, so
    a retried clearing cannot replace the report whose hash the chain holds."""
    ds = slot.delivery_start

    def commit_clearing(*, check_only: bool = False) -> None:
        ledger.commit_clearing(
            ds,
            slot.clearing.ledger_price,
            slot.order_fills,
            network_report_hash=slot.report.hash,
            network_model_version=model.version,
            check_only=check_only,
        )

    if ledger.slot_state(ds).status != "open":
        commit_clearing(check_only=True)  # raises the contract's own refusal (SlotAlreadyCleared)
    reports.save(ledger.market.address, slot.report)
    for offer_id, energy_wh in slot.activations.items():
        ledger.activate_flex(offer_id, ds, energy_wh * SLOTS_PER_HOUR, by="facilitator")
    commit_clearing()


def register_participant(
    ledger: Ledger, model: NetworkModel, account: str, *, meter_id: int, bus: int, capacity_w: int
) -> None:
    """Registers a participant after checking that its connection point is a bus of the
    published model: a bus the model lacks is refused before anything reaches the chain."""
    model.require_bus(bus)
    ledger.register(account, meter_id=meter_id, bus=bus, capacity_w=capacity_w)

"""One slot's facilitation, written once: the service, the market-day simulation and the audit
all run a slot through ``facilitate`` (and the first two record it with ``commit``).

    SlotInputs ──facilitate──▶ FacilitatedSlot ──commit──▶ ledger + report store
    (public records)           (clearing, network check,     (activations, report, commitClearing)
                                curtailment or coordination,
                                report)

``facilitate`` is a pure function of public inputs: the orders the ledger recorded, the
participants' buses from the registry, the published network model, SimBench's baseline for the
slot and the awarded flexibility. What the audit re-runs is therefore by construction what the
facilitator ran.
"""

from gridledger.facilitation.baseline import BaselineRef, slot_schedule
from gridledger.facilitation.ledger import commit, register_participant
from gridledger.facilitation.slot import Dispatch, FacilitatedSlot, SlotInputs, facilitate

__all__ = [
    "BaselineRef",
    "Dispatch",
    "FacilitatedSlot",
    "SlotInputs",
    "commit",
    "facilitate",
    "register_participant",
    "slot_schedule",
]

"""Every line's and transformer's loading and every bus's voltage in a cleared slot, re-run from
public facts: what the dashboard colours the grid with.

The stored network report names only the extremes (its hash commits to those). The flows of
every element follow from what the report and the chain fix together:

- the published model, which must be the one the commit names;
- the report, whose keccak-256 must be the one on-chain;
- the slot's baseline as the audit binds it (``audit``: the slot's delivery time, the model and
  the registrations before the commit), the orders the chain recorded and the participants'
  buses (``facilitation.slot_schedule``, the physical schedule the facilitator checked);
- the flexibility the DSO activated before clearing, each curtailment (a curtailed sale injects
  less at the seller's bus, a curtailed purchase withdraws less at the buyer's) and each
  activation the joint clearing chose (Up removes load at its bus, Down adds it), as the report
  records them.

pandapower's AC power flow (``network.validation.ac_flows``, the one whose extremes the report
holds) solves that schedule. ``matches_report`` says whether the re-run's extremes are the
report's, so a reader sees that the picture is the checked slot and not a guess.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import replace
from typing import Any

from eth_utils.crypto import keccak

from gridledger.chain.ledger import Ledger
from gridledger.encoding import to_hex
from gridledger.errors import ConflictError, NotFoundError
from gridledger.facilitation import BaselineRef, SlotInputs, slot_schedule
from gridledger.flex.products import Direction
from gridledger.network.model import NetworkModel
from gridledger.network.validation import Schedule, SlotCheck, SlotFlows, ac_flows
from gridledger.store.reports import ReportStore
from gridledger.units import wh_to_w

CACHED_SLOTS = 64  # a day is 96 slots; the dashboard shows one at a time
# How far the re-run's extremes may be from the report's: the report rounds to 4 decimals (%) and
# 6 (pu), and the schedule's sums may be added in another order (a last-bit difference).
LOADING_TOLERANCE = 1e-3
VOLTAGE_TOLERANCE = 1e-5


def slot_flows(ledger: Ledger, model: NetworkModel, store: ReportStore, delivery_start: int) -> dict[str, Any]:
    """The cleared slot's flows per element (reads the chain's logs and runs a power flow: call
    it on the chain thread, which owns both)."""
    commits = ledger.market.events.SlotCleared.get_logs(
        from_block=ledger.deployment.block, argument_filters={"deliveryStart": delivery_start}
    )
    if not commits:
        raise NotFoundError(f"slot {delivery_start} has no clearing result on the chain")
    commit = commits[-1]
    committed = commit["args"]
    if bytes(committed["networkModelVersion"]) != model.version:
        raise ConflictError(
            f"slot {delivery_start} was checked on network model {to_hex(committed['networkModelVersion'])}; "
            f"this service publishes {model.source} ({to_hex(model.version)}), so its flows cannot be re-run here"
        )
    row = store.get(ledger.market.address, delivery_start)
    if row is None:
        raise NotFoundError(f"slot {delivery_start} has no stored network report here")
    report: dict[str, Any] = row["report"]
    stored_hash = bytes(keccak(json.dumps(report, sort_keys=True, separators=(",", ":")).encode()))
    if stored_hash != bytes(committed["networkReportHash"]):
        raise ConflictError(
            f"the stored report of slot {delivery_start} hashes to {to_hex(stored_hash)}, the chain has "
            f"{to_hex(committed['networkReportHash'])}: its curtailments cannot be trusted to draw the slot"
        )
    recorded = ledger.recorded_orders(delivery_start)
    registered = ledger.registrations(to_block=commit["blockNumber"])  # every trader registered before it
    inputs = SlotInputs.from_report(delivery_start, recorded, {r.account: r.bus for r in registered}, report)
    baseline = BaselineRef.for_delivery(model, model.source, delivery_start, [r.bus for r in registered])
    schedule = committed_schedule(model, baseline, inputs, report)
    flows = ac_flows(model, schedule)
    return _as_json(model, delivery_start, to_hex(stored_hash), flows, report)


def committed_schedule(
    model: NetworkModel, baseline: BaselineRef, inputs: SlotInputs, report: dict[str, Any]
) -> Schedule:
    """The physical schedule the report's final check ran on: the unconstrained schedule
    (``facilitation.facilitate`` builds the same) moved by every curtailment and activation."""
    schedule = slot_schedule(model, baseline, [r.order for r in inputs.recorded], inputs.bus_of)
    market = schedule.market_p_w.copy()
    position = model.bus_position
    for d in inputs.dispatched:
        market[0, position[d.bus]] += (-1.0 if d.direction is Direction.UP else 1.0) * wh_to_w(d.energy_wh)
    for c in report.get("curtailments", []):
        market[0, position[int(c["bus"])]] += (1.0 if c["side"] == "sell" else -1.0) * wh_to_w(int(c["curtailed_wh"]))
    units = {to_hex(u.offer_id): u for u in inputs.flex}
    for offer_id, wh in report.get("flexibility", {}).get("activations", {}).items():
        unit = units.get(offer_id)
        if unit is None:
            raise ConflictError(
                f"the stored report activates offer {offer_id}, which is not among the slot's flexibility units"
            )
        market[0, position[unit.bus]] += (-1.0 if unit.direction is Direction.UP else 1.0) * wh_to_w(int(wh))
    return replace(schedule, market_p_w=market)


def _matches(check: SlotCheck, reported: dict[str, Any]) -> bool:
    pairs = [
        (check.max_line_loading_percent, reported["max_line_loading_percent"], LOADING_TOLERANCE),
        (check.max_trafo_loading_percent, reported["max_trafo_loading_percent"], LOADING_TOLERANCE),
        (check.v_min_pu, reported["v_min_pu"], VOLTAGE_TOLERANCE),
        (check.v_max_pu, reported["v_max_pu"], VOLTAGE_TOLERANCE),
    ]
    return all(abs(a - b) <= tolerance for a, b, tolerance in pairs)


def _as_json(
    model: NetworkModel, delivery_start: int, report_hash: str, flows: SlotFlows, report: dict[str, Any]
) -> dict[str, Any]:
    net = model.net
    return {
        "delivery_start": delivery_start,
        "network_model": model.source,
        "model_version": to_hex(model.version),
        "report_hash": report_hash,
        "engine": "pandapower",
        "limits": report["limits"],
        "matches_report": _matches(flows.check(model), report["check"]),
        "lines": _elements(net.line, "loading_percent", flows.line_loading_percent),
        "trafos": _elements(net.trafo, "loading_percent", flows.trafo_loading_percent),
        "buses": _elements(net.bus, "vm_pu", flows.vm_pu),
        "curtailments": report.get("curtailments", []),
        "activations": report.get("flexibility", {}).get("activations", {}),
    }


def _elements(table: Any, key: str, values: Any) -> list[dict[str, Any]]:
    """One entry per row of a pandapower table, in its order (whole columns: a feeder has thousands)."""
    names = table["name"].astype(str).tolist()
    return [
        {"index": i, "name": n, key: v}
        for i, n, v in zip(table.index.astype(int).tolist(), names, values.tolist(), strict=True)
    ]


class FlowCache:
    """The latest ``size`` slots' flows, least recently used out first. A committed slot's flows
    never change, so an entry is never stale; the lock keeps concurrent requests from corrupting
    the order."""

    def __init__(self, size: int = CACHED_SLOTS) -> None:
        self.size = size
        self._entries: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, delivery_start: int) -> dict[str, Any] | None:
        with self._lock:
            entry = self._entries.get(delivery_start)
            if entry is not None:
                self._entries.move_to_end(delivery_start)
            return entry

    def put(self, delivery_start: int, flows: dict[str, Any]) -> None:
        with self._lock:
            self._entries[delivery_start] = flows
            self._entries.move_to_end(delivery_start)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)

"""The award rule: the cheapest offers that cover the need and actually relieve the congestion.

Published rule, applied by the facilitator after the bid deadline:

1. **Relief.** For each offer, the network model's sensitivity of the congestion point's voltage
   to 1 kW of the offer's direction at the offer's bus, divided by the same sensitivity at the
   congestion point itself (so 1.0 means "as good as flexibility at the point"). Sensitivities
   are finite differences on the batch power-flow engine at the window's first slot.
2. **Eligibility.** An offer is eligible if its relief ratio is at least ``RELIEF_THRESHOLD``
   (0.5); the others are listed with that reason.
3. **Merit order.** Eligible offers rank by availability price plus utilisation price (both per
   kWh, the cost of one kW for one hour fully used), then by offer id.
4. **Cover.** Offers are awarded in merit order until their power reaches the requested power
   (the last one whole); pay-as-bid.

The award report (every offer, its relief, rank and reason) is canonical JSON; its keccak hash
goes on-chain with the award.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from eth_utils.crypto import keccak

from gridledger.encoding import from_hex, to_hex
from gridledger.flex.products import Direction, FlexOffer, FlexRequest
from gridledger.network.model import NetworkModel
from gridledger.network.sensitivity import compute
from gridledger.network.validation import BatchEngine, Schedule

RELIEF_THRESHOLD = 0.5


@dataclass(frozen=True)
class Award:
    awarded: list[bytes]
    report: dict[str, Any]

    @property
    def canonical(self) -> bytes:
        return json.dumps(self.report, sort_keys=True, separators=(",", ":")).encode()

    @property
    def hash(self) -> bytes:
        return bytes(keccak(self.canonical))


def relief_ratios(model: NetworkModel, engine: BatchEngine, schedule: Schedule, request: FlexRequest) -> np.ndarray:
    """Per bus: how much 1 kW of the request's direction there moves the congestion point's
    voltage the right way, relative to 1 kW at the point itself."""
    sens = compute(engine, schedule)
    point = model.bus_position[request.congestion_bus]
    # d_vm[b, point]: pu per W of extra load at bus b. Up removes load, Down adds it.
    effect = -sens.d_vm[:, point] if request.direction is Direction.UP else sens.d_vm[:, point]
    at_point = effect[point]
    if at_point <= 0:
        return np.zeros(len(model.buses))
    return np.asarray(effect / at_point)


def award(
    model: NetworkModel,
    engine: BatchEngine,
    schedule: Schedule,
    request_id: int,
    request: FlexRequest,
    offers: Sequence[tuple[bytes, FlexOffer]],
) -> Award:
    """Applies the rule to ``offers`` (offer id, offer) at the window's first-slot ``schedule``."""
    ratios = relief_ratios(model, engine, schedule, request)
    rows: list[dict[str, Any]] = []
    for offer_id, offer in offers:
        ratio = float(ratios[model.bus_position[offer.bus]]) if offer.bus in model.bus_position else 0.0
        rows.append(
            {
                "offer_id": to_hex(offer_id),
                "provider": offer.provider,
                "bus": offer.bus,
                "power_w": offer.power_w,
                "availability_price_per_kwh": offer.availability_price_per_kwh,
                "utilisation_price_per_kwh": offer.utilisation_price_per_kwh,
                "relief_ratio": round(ratio, 6),
                "eligible": ratio >= RELIEF_THRESHOLD,
            }
        )
    eligible = sorted(
        (r for r in rows if r["eligible"]),
        key=lambda r: (r["availability_price_per_kwh"] + r["utilisation_price_per_kwh"], r["offer_id"]),
    )
    covered = 0
    awarded: list[bytes] = []
    for rank, row in enumerate(eligible, start=1):
        row["rank"] = rank
        if covered < request.power_w:
            covered += row["power_w"]
            awarded.append(from_hex(row["offer_id"]))
            row["awarded"] = True
        else:
            row["awarded"] = False
            row["reason"] = "the requested power was covered by cheaper offers"
    for row in rows:
        if not row["eligible"]:
            row["awarded"] = False
            row["reason"] = f"relief ratio {row['relief_ratio']} is below the threshold {RELIEF_THRESHOLD}"
    report = {
        "request_id": request_id,
        "congestion_bus": request.congestion_bus,
        "direction": request.direction.name.lower(),
        "power_w": request.power_w,
        "awarded_power_w": covered,
        "model_version": to_hex(model.version),
        "rule": "eligible if relief ratio >= threshold; merit order by availability + utilisation price; "
        "award until the requested power is covered; pay-as-bid",
        "threshold": RELIEF_THRESHOLD,
        "offers": sorted(rows, key=lambda r: r["offer_id"]),
    }
    return Award(awarded, report)

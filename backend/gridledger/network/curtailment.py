"""Network-aware clearing: curtail trades until the slot passes its power-flow check.

What a trade changes physically. A fill is a schedule: a seller's fill is energy it injects at
its bus and a buyer's fill energy it withdraws at its bus. Curtailing ``x`` Wh of a sale means
the seller injects ``x`` less (PV curtailed, battery not discharged); curtailing ``x`` Wh of a
purchase means the buyer withdraws ``x`` less. ``market_p_w`` of the schedule carries the
result's physical flows; each curtailment moves it by ``x / 0.25 h`` at the participant's bus.

The rule (deterministic, published, non-discriminatory):

1. Solve the slot. If every element is within its limits, nothing is curtailed.
2. Take the most severe violation (largest excess relative to its limit; ties by element kind
   and index). Compute how much curtailing 1 Wh of each open fill relieves it: the element's
   linear sensitivity at the fill's bus (``network.sensitivity``; on a radial network read off
   the solved power flow, on a meshed one by finite differences at the fills' buses).
3. Curtailment removes traded energy, so each round takes the same energy X from both sides.
   On each side it falls on the fills that load the constrained element (relief per Wh at least
   ``RELIEF_THRESHOLD`` of that side's best), or, on a side where no fill does, on the fills that
   harm least; within that set X is shared pro rata to the fills' energy (whole Wh, the
   remainder in arrival order). X is just enough to remove the excess, with a 5 % margin.
4. If taking the same energy from both sides would not relieve the element, the violation is not
   the market's doing: it is reported as left, and nothing is curtailed for it.
5. Repeat from 1 (at most ``MAX_ROUNDS`` times). A violation no fill relieves is not caused by the
   market; it is reported as unresolved.
6. pandapower's full AC power flow confirms the final schedule; its result is the report's check.

Every curtailed fill carries its reasons: the element, the limit, the value and the excess.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from gridledger.encoding import to_hex
from gridledger.market.orders import Side
from gridledger.network.model import NetworkModel
from gridledger.network.sensitivity import compute
from gridledger.network.validation import BatchEngine, Schedule, SlotCheck, SolvedSlot, Violation, ac_check
from gridledger.units import wh_to_w

RELIEF_THRESHOLD = 0.05  # a fill takes part if it relieves ≥ 5 % as much per Wh as the best one
MAX_ROUNDS = 20
MARGIN = 1.05


@dataclass(frozen=True)
class TradeFill:
    """A fill of the clearing result, with the bus it is delivered at."""

    order_hash: bytes
    prosumer: str
    side: Side
    bus: int
    filled_wh: int


@dataclass
class NetworkClearing:
    fills: dict[bytes, int]  # order hash → filled Wh after curtailment
    check: SlotCheck  # the AC check of the final schedule (pandapower)
    screening: SlotCheck  # the batch engine's check of the unconstrained result
    curtailments: list[dict[str, Any]] = field(default_factory=list)
    unresolved: list[Violation] = field(default_factory=list)

    @property
    def curtailed_wh(self) -> int:
        """Energy taken out of the market (sold side; the bought side is the same)."""
        return sum(c["curtailed_wh"] for c in self.curtailments if c["side"] == "sell")


def curtailment_record(fill: TradeFill, curtailed_wh: int, reasons: list[dict[str, Any]]) -> dict[str, Any]:
    """A curtailed fill as the network report lists it."""
    return {
        "order_hash": to_hex(fill.order_hash),
        "prosumer": fill.prosumer,
        "side": fill.side.name.lower(),
        "bus": fill.bus,
        "filled_wh": fill.filled_wh,
        "curtailed_wh": curtailed_wh,
        "reasons": reasons,
    }


def severity(v: Violation) -> tuple[float, str, int]:
    return (-v.excess / v.limit_value, v.element, v.index)


def sensitivities(
    engine: BatchEngine,
    schedule: Schedule,
    violation: Violation,
    solved: SolvedSlot | None = None,
    positions: np.ndarray | None = None,
) -> np.ndarray:
    """d(metric)/d(W of extra load) at the buses of ``positions`` (default: every bus): loading %
    for lines and transformers, pu for buses. On a radial network the violated element's column,
    read off the solved state in one pass over the buses; on a meshed one the rows of just those
    buses, by finite differences (one power flow each)."""
    model = engine.model
    sens = compute(engine, schedule, solved)
    table, matrix = {
        "line": (model.net.line, sens.d_lines),
        "trafo": (model.net.trafo, sens.d_trafos),
        "bus": (model.net.bus, sens.d_vm),
    }[violation.element]
    k = int(table.index.get_loc(violation.index))
    every = np.arange(len(model.buses)) if positions is None else positions
    if sens.method == "radial":
        return np.asarray(matrix[:, k][every])
    return np.asarray(matrix[np.unique(every)][:, k][np.searchsorted(np.unique(every), every)])


def clear_network_aware(
    model: NetworkModel, engine: BatchEngine, schedule: Schedule, fills: list[TradeFill]
) -> NetworkClearing:
    """Curtails ``fills`` (one slot; ``schedule`` holds the unconstrained physical flows)."""
    remaining = {f.order_hash: f.filled_wh for f in fills}
    reasons: dict[bytes, list[dict[str, Any]]] = defaultdict(list)
    curtailed: dict[bytes, int] = defaultdict(int)
    position = np.array([model.bus_position[f.bus] for f in fills], dtype=np.int64)
    # Relief per Wh curtailed: a sale curtailed adds load at its bus, a purchase removes it.
    side_sign = np.array([1.0 if f.side is Side.SELL else -1.0 for f in fills])
    current = schedule
    solved = engine.solve_slot(current)
    screening = engine.check(solved)
    check = screening
    unresolved: list[Violation] = []
    for _ in range(MAX_ROUNDS):
        open_violations = [v for v in check.violations if v not in unresolved]
        if not open_violations:
            break
        violation = min(open_violations, key=severity)
        slope = sensitivities(engine, current, violation, solved, position)
        sign = 1.0 if violation.limit == "v_min_pu" else -1.0
        per_wh = sign * slope * wh_to_w(1) * side_sign
        relief = {f.order_hash: float(r) for f, r in zip(fills, per_wh, strict=True) if remaining[f.order_hash] > 0}
        cut = _plan(fills, remaining, relief, violation.excess * MARGIN)
        if not cut:
            unresolved.append(violation)
            continue
        reason = {
            "element": violation.element,
            "index": violation.index,
            "name": violation.name,
            "limit": violation.limit,
            "limit_value": violation.limit_value,
            "value": violation.value,
            "excess": violation.excess,
        }
        delta = np.zeros(len(model.buses))
        for f in fills:
            c = cut.get(f.order_hash, 0)
            if c <= 0:
                continue
            remaining[f.order_hash] -= c
            curtailed[f.order_hash] += c
            reasons[f.order_hash].append(reason)
            delta[model.bus_position[f.bus]] += wh_to_w(c) * (1 if f.side is Side.SELL else -1)
        current = replace(current, market_p_w=current.market_p_w + delta)
        solved = engine.solve_slot(current)
        check = engine.check(solved)

    final = ac_check(model, current)
    curtailments = [
        curtailment_record(f, curtailed[f.order_hash], reasons[f.order_hash]) for f in fills if curtailed[f.order_hash]
    ]
    return NetworkClearing(remaining, final, screening, curtailments, [v for v in final.violations])


def _plan(
    fills: list[TradeFill], remaining: dict[bytes, int], relief: dict[bytes, float], needed: float
) -> dict[bytes, int]:
    """How many Wh to curtail from each fill this round; empty if curtailing cannot help.

    Curtailment removes traded energy, so it takes the same energy X from each side. On each
    side it falls on the fills that load the constrained element (positive relief per Wh, at least
    RELIEF_THRESHOLD of the side's best), or, on a side where none does, on the fills that harm
    least (the highest relief). Within a set, X is shared pro rata to the fills' energy.
    """
    chosen: dict[Side, list[TradeFill]] = {}
    weighted: dict[Side, float] = {}
    for side in Side:
        pool = [f for f in fills if f.side is side and remaining[f.order_hash] > 0]
        if not pool:
            return {}
        best = max(relief[f.order_hash] for f in pool)
        if best > 0:
            group = [f for f in pool if relief[f.order_hash] >= RELIEF_THRESHOLD * best]
        else:
            group = [f for f in pool if relief[f.order_hash] >= best - 1e-12]
        energy = sum(remaining[f.order_hash] for f in group)
        chosen[side] = group
        weighted[side] = sum(remaining[f.order_hash] * relief[f.order_hash] for f in group) / energy
    per_wh = weighted[Side.SELL] + weighted[Side.BUY]
    if per_wh <= 0:
        return {}  # a balanced curtailment would not relieve this element: not the market's doing
    x = min(
        math.ceil(needed / per_wh),
        *(sum(remaining[f.order_hash] for f in chosen[side]) for side in Side),
    )
    cut: dict[bytes, int] = {}
    for side in Side:
        group = chosen[side]
        total = sum(remaining[f.order_hash] for f in group)
        shares = {f.order_hash: remaining[f.order_hash] * x // total for f in group}
        rest = x - sum(shares.values())
        for f in group:  # the integer remainder, in the fills' listed (arrival) order
            if rest == 0:
                break
            if shares[f.order_hash] < remaining[f.order_hash]:
                shares[f.order_hash] += 1
                rest -= 1
        cut.update(shares)
    return cut

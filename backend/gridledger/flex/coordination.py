"""Clearing the energy market and the DSO's flexibility together.

When a slot's P2P result breaches a network limit, the facilitator has two levers: curtail
trades (the market loses their value) or activate contracted flexibility at the congested point
(the DSO pays its utilisation price). It pulls whichever costs less by solving one linear
programme per slot (HiGHS through scipy):

    minimise   Σ_buy p_i·c_i − Σ_sell p_i·c_i + Σ_j u_j·a_j          (base units per kWh × Wh)
    subject to Σ_buy c_i = Σ_sell c_i                                  (curtailment keeps bought = sold)
               every line and transformer loading ≤ limit, every bus voltage in its band,
               linearised around the current schedule by the model's sensitivities
               0 ≤ c_i ≤ fill_i,  0 ≤ a_j ≤ contracted energy of awarded offer j

where c_i is the energy curtailed from fill i (a sale curtailed injects less at the seller's bus,
a purchase curtailed withdraws less) and a_j the energy activated from offer j (Up: its bus takes
that much less; Down: more). The objective is the market's lost traded value plus the cost of
flexibility, i.e. the programme maximises traded value minus flexibility cost. The power flow is
not linear, so the result is applied, checked by the batch engine, and re-linearised (up to
``MAX_ROUNDS``, with limits tightened a little each round) until the check passes; pandapower's
AC power flow has the last word. Each slot records which lever was chosen and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy.optimize import linprog

from gridledger.encoding import to_hex
from gridledger.flex.products import Direction
from gridledger.market.orders import Side
from gridledger.network.curtailment import TradeFill
from gridledger.network.model import NetworkModel
from gridledger.network.sensitivity import compute
from gridledger.network.validation import BatchEngine, Schedule, SlotCheck, ac_check
from gridledger.units import wh_to_w

MAX_ROUNDS = 6
LOADING_MARGIN = 0.5  # % of loading kept in reserve per round, against the linearisation error
VOLTAGE_MARGIN = 0.001  # pu


@dataclass(frozen=True)
class PricedFill:
    fill: TradeFill
    limit_price_per_kwh: int


@dataclass(frozen=True)
class FlexUnit:
    """An awarded offer the facilitator may activate in this slot."""

    offer_id: bytes
    bus: int
    direction: Direction
    max_wh: int
    utilisation_price_per_kwh: int


@dataclass
class JointClearing:
    fills: dict[bytes, int]  # order hash → filled Wh after curtailment
    activations: dict[bytes, int]  # offer id → activated Wh
    check: SlotCheck
    choice: str  # "none", "curtail", "flex" or "both"
    reason: str
    curtailed_wh: int = 0
    flex_wh: int = 0
    flex_cost: int = 0
    lost_value: int = 0
    rounds: int = 0
    unresolved: list[Any] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        return {
            "choice": self.choice,
            "reason": self.reason,
            "curtailed_wh": self.curtailed_wh,
            "flex_wh": self.flex_wh,
            "flex_cost": self.flex_cost,
            "lost_value": self.lost_value,
            "activations": {to_hex(k): v for k, v in self.activations.items() if v},
        }


def clear_jointly(
    model: NetworkModel,
    engine: BatchEngine,
    schedule: Schedule,
    fills: Sequence[PricedFill],
    flex: Sequence[FlexUnit] = (),
) -> JointClearing:
    """Curtails and activates at least cost until the slot passes (``schedule`` holds the
    unconstrained physical flows, as for ``network.curtailment``)."""
    base = {f.fill.order_hash: f.fill.filled_wh for f in fills}
    first = engine.run(schedule)[0]
    if first.passed:
        return JointClearing(base, {}, ac_check(model, schedule), "none", "the network carries the trades")

    n, m = len(fills), len(flex)
    # Effect of one Wh of each lever on the load at its bus (W): a curtailed sale adds load, a
    # curtailed purchase removes it; Up flexibility removes load, Down adds it.
    lever_bus = np.array(
        [model.bus_position[f.fill.bus] for f in fills] + [model.bus_position[u.bus] for u in flex], dtype=int
    )
    lever_sign = np.array(
        [1.0 if f.fill.side is Side.SELL else -1.0 for f in fills]
        + [-1.0 if u.direction is Direction.UP else 1.0 for u in flex]
    )
    cost = np.array(
        [f.limit_price_per_kwh * (1.0 if f.fill.side is Side.BUY else -1.0) for f in fills]
        + [float(u.utilisation_price_per_kwh) for u in flex]
    )
    upper = np.array([f.fill.filled_wh for f in fills] + [u.max_wh for u in flex], dtype=float)
    balance = np.array([[1.0 if f.fill.side is Side.BUY else -1.0 for f in fills] + [0.0] * m])

    x = np.zeros(n + m)
    current = schedule
    check = first
    rounds = 0
    limits = model.limits
    for rounds in range(1, MAX_ROUNDS + 1):
        sens = compute(engine, current)
        # Rows: quantity change per Wh of each lever (quantity per W × W per Wh).
        per_wh = wh_to_w(1.0) * lever_sign
        d_lines = sens.d_lines[lever_bus].T * per_wh
        d_trafos = sens.d_trafos[lever_bus].T * per_wh
        d_vm = sens.d_vm[lever_bus].T * per_wh
        tighten = rounds - 1
        a_ub = np.vstack([d_lines, d_trafos, d_vm, -d_vm])
        b_ub = np.concatenate(
            [
                limits.max_loading_percent - LOADING_MARGIN * tighten - sens.lines + d_lines @ x,
                limits.max_loading_percent - LOADING_MARGIN * tighten - sens.trafos + d_trafos @ x,
                limits.v_max_pu - VOLTAGE_MARGIN * tighten - sens.vm + d_vm @ x,
                -(limits.v_min_pu + VOLTAGE_MARGIN * tighten) + sens.vm - d_vm @ x,
            ]
        )
        solved = linprog(
            cost,
            A_ub=a_ub,
            b_ub=b_ub,
            A_eq=balance,
            b_eq=[0.0],
            bounds=list(zip(np.zeros(n + m), upper, strict=True)),
            method="highs",
        )
        if solved.status != 0:
            break
        x = _whole_wh(np.asarray(solved.x), fills, n)
        delta = np.zeros(len(model.buses))
        np.add.at(delta, lever_bus, wh_to_w(1.0) * lever_sign * x)
        current = replace(schedule, market_p_w=schedule.market_p_w + delta)
        check = engine.run(current)[0]
        # The batch engine and pandapower agree within about 0.001 pu: a result right at the batch
        # engine's limit can still fail the AC check that has the last word, so that check decides.
        if check.passed and ac_check(model, current).passed:
            break

    final = ac_check(model, current)
    curtailed = x[:n].round().astype(int)
    activated = x[n:].round().astype(int)
    result_fills = {f.fill.order_hash: base[f.fill.order_hash] - int(c) for f, c in zip(fills, curtailed, strict=True)}
    activations = {u.offer_id: int(a) for u, a in zip(flex, activated, strict=True)}
    lost = sum(
        int(c) * f.limit_price_per_kwh * (1 if f.fill.side is Side.BUY else -1)
        for f, c in zip(fills, curtailed, strict=True)
    )
    flex_cost = sum(int(a) * u.utilisation_price_per_kwh for u, a in zip(flex, activated, strict=True))
    curtailed_wh = int(sum(c for f, c in zip(fills, curtailed, strict=True) if f.fill.side is Side.SELL))
    flex_wh = int(activated.sum())
    choice = {(False, False): "none", (True, False): "curtail", (False, True): "flex", (True, True): "both"}[
        (curtailed_wh > 0, flex_wh > 0)
    ]
    reason = (
        f"least cost under the network limits: {flex_wh} Wh of flexibility costing {flex_cost // 1000} base units "
        f"and {curtailed_wh} Wh curtailed losing {lost // 1000} base units of traded value"
    )
    if not final.passed:
        reason += "; limits still violated (no combination of the levers relieves them)"
    return JointClearing(
        result_fills,
        activations,
        final,
        choice,
        reason,
        curtailed_wh=curtailed_wh,
        flex_wh=flex_wh,
        flex_cost=flex_cost // 1000,
        lost_value=lost // 1000,
        rounds=rounds,
        unresolved=list(final.violations),
    )


def _whole_wh(x: np.ndarray, fills: Sequence[PricedFill], n: int) -> np.ndarray:
    """Rounds to whole Wh up (a little more relief, never less) and keeps bought = sold."""
    out = np.ceil(x - 1e-6)
    out = np.clip(out, 0, None)
    buy = [i for i in range(n) if fills[i].fill.side is Side.BUY]
    sell = [i for i in range(n) if fills[i].fill.side is Side.SELL]
    gap = out[buy].sum() - out[sell].sum()
    side = sell if gap > 0 else buy
    for i in sorted(side, key=lambda i: fills[i].fill.filled_wh - out[i], reverse=True):
        if gap == 0:
            break
        room = fills[i].fill.filled_wh - out[i]
        step = min(room, abs(gap))
        out[i] += step
        gap += -step if gap > 0 else step
    return out

"""Linear sensitivities for screening trades in microseconds.

At an operating point, the change of every bus voltage and every line and transformer loading
per W of extra load at each bus, by finite differences in one batch of the power-flow engine.
A trade of P W from seller bus s to buyer bus b moves each quantity by P·(d[b] − d[s]); screening
many candidate trades is then one matrix product. A full AC power flow still has the last word.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gridledger.network.model import FloatArray, Limits
from gridledger.network.validation import BatchEngine, Schedule

PROBE_W = 1_000.0


@dataclass(frozen=True)
class Sensitivities:
    vm: FloatArray  # (N,) operating point
    lines: FloatArray  # (L,)
    trafos: FloatArray  # (T,)
    d_vm: FloatArray  # (B, N) pu per W of extra load at each bus
    d_lines: FloatArray  # (B, L) % per W
    d_trafos: FloatArray  # (B, T) % per W


def compute(engine: BatchEngine, schedule: Schedule) -> Sensitivities:
    """Sensitivities at the first slot of ``schedule`` (one batch of buses + 1 power flows)."""
    buses = len(engine.model.buses)
    n = buses + 1
    probes = Schedule(
        np.repeat(schedule.load_p_w[:1], n, axis=0),
        np.repeat(schedule.load_q_var[:1], n, axis=0),
        np.repeat(schedule.sgen_p_w[:1], n, axis=0),
        np.repeat(schedule.market_p_w[:1], n, axis=0) + np.vstack([np.zeros(buses), np.eye(buses) * PROBE_W]),
    )
    vm, lines, trafos = engine.solve(probes)
    return Sensitivities(
        vm=vm[0],
        lines=lines[0],
        trafos=trafos[0],
        d_vm=(vm[1:] - vm[0]) / PROBE_W,
        d_lines=(lines[1:] - lines[0]) / PROBE_W,
        d_trafos=(trafos[1:] - trafos[0]) / PROBE_W,
    )


def screen(
    sens: Sensitivities, limits: Limits, *, seller_pos: np.ndarray, buyer_pos: np.ndarray, power_w: np.ndarray
) -> np.ndarray:
    """Which candidate trades (one per row) keep every element within limits on their own."""
    p = power_w[:, None]
    vm = sens.vm + p * (sens.d_vm[buyer_pos] - sens.d_vm[seller_pos])
    lines = sens.lines + p * (sens.d_lines[buyer_pos] - sens.d_lines[seller_pos])
    trafos = sens.trafos + p * (sens.d_trafos[buyer_pos] - sens.d_trafos[seller_pos])
    ok = (vm >= limits.v_min_pu).all(axis=1) & (vm <= limits.v_max_pu).all(axis=1)
    ok &= (np.abs(lines) <= limits.max_loading_percent).all(axis=1)
    ok &= (np.abs(trafos) <= limits.max_loading_percent).all(axis=1)
    return np.asarray(ok)

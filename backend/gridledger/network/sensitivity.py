"""Linear sensitivities for screening trades and for relieving a violated limit.

At an operating point, the change of every bus voltage and every line and transformer loading
per W of extra load at each bus. A trade of P W from seller bus s to buyer bus b moves each
quantity by P·(d[b] − d[s]); screening many candidate trades is then one matrix product. A full
AC power flow still has the last word.

The matrices are buses × quantities, but nobody needs all of them on a feeder of thousands of
buses: the curtailment rule needs one column (the violated element, at the fills' buses), the
award one column (the congestion point's voltage), screening and the joint clearing the rows of
the participants' buses. So a ``BusRows`` evaluates what is indexed and nothing else: on a
radial network analytically from the solved state (``network.radial``, O(buses) a row or a
column), otherwise by finite differences on the batch engine, one power flow per requested bus.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from gridledger.network.model import FloatArray, Limits
from gridledger.network.radial import Linearisation
from gridledger.network.validation import BatchEngine, Schedule, SolvedSlot

PROBE_W = 1_000.0
IntArray = npt.NDArray[np.int64]
_DENSE_ENTRIES = 1 << 22  # up to 32 MB a matrix is kept dense; beyond, row by row


class BusRows:
    """A (buses × quantities) sensitivity matrix, evaluated on demand and in pandapower's order:
    ``m[positions]`` gives those buses' rows, ``m[:, k]`` quantity k's column (every bus's effect
    on it), ``np.asarray(m)`` the whole matrix (small grids only). Rows are kept once computed."""

    def __init__(
        self, shape: tuple[int, int], rows: Callable[[IntArray], FloatArray], column: Callable[[int], FloatArray]
    ) -> None:
        self.shape = shape
        self._rows = rows
        self._column = column
        self._known = np.zeros(shape[0], bool)
        self._store = np.empty((0, shape[1]))
        self._kept: dict[int, FloatArray] = {}

    def __getitem__(self, key: Any) -> FloatArray:
        if isinstance(key, tuple):
            rows, columns = key
            if isinstance(rows, slice) and rows == slice(None) and isinstance(columns, int | np.integer):
                return self._column(int(columns))
            return np.asarray(self[rows][:, columns])
        if isinstance(key, slice):
            return self.rows(np.arange(self.shape[0], dtype=np.int64)[key])
        positions = np.asarray(key, dtype=np.int64)
        if positions.ndim == 0:
            return np.asarray(self.rows(positions.reshape(1))[0])
        return self.rows(positions.ravel()).reshape(*positions.shape, self.shape[1])

    def rows(self, positions: IntArray) -> FloatArray:
        """The rows of ``positions`` (repeats allowed), each computed once."""
        missing = np.unique(positions[~self._known[positions]])
        if len(missing):
            computed = self._rows(missing)
            if self.shape[0] * self.shape[1] <= _DENSE_ENTRIES:
                if not len(self._store):
                    self._store = np.zeros(self.shape)
                self._store[missing] = computed
            else:
                self._kept.update(zip(missing.tolist(), computed, strict=True))
            self._known[missing] = True
        if len(self._store):
            return np.asarray(self._store[positions])
        if not len(positions):
            return np.zeros((0, self.shape[1]))
        return np.stack([self._kept[p] for p in positions.tolist()])

    def __array__(self, dtype: Any = None, copy: Any = None) -> FloatArray:
        full = self.rows(np.arange(self.shape[0], dtype=np.int64))
        return full if dtype is None else full.astype(dtype)


@dataclass(frozen=True)
class Sensitivities:
    vm: FloatArray  # (N,) operating point
    lines: FloatArray  # (L,)
    trafos: FloatArray  # (T,)
    d_vm: BusRows  # (B, N) pu per W of extra load at each bus
    d_lines: BusRows  # (B, L) % per W
    d_trafos: BusRows  # (B, T) % per W
    method: str  # "radial" (from the solved state) or "finite differences"


def compute(engine: BatchEngine, schedule: Schedule, solved: SolvedSlot | None = None) -> Sensitivities:
    """Sensitivities at the first slot of ``schedule`` (``solved``: that slot already solved)."""
    solved = solved or engine.solve_slot(schedule)
    if engine.tree.radial:
        return _radial(engine, solved)
    return _finite_differences(engine, schedule.slot(0), solved)


def _radial(engine: BatchEngine, solved: SolvedSlot) -> Sensitivities:
    lin: Linearisation = solved.linearisation
    nodes = engine.node_rows  # bus position → node
    line_edges = engine.tree.member_of["line"][engine.line_rows]  # line position → tree member (−1: open)
    trafo_edges = engine.tree.member_of["transformer"][engine.trafo_rows]
    buses, n_lines, n_trafos = len(nodes), len(line_edges), len(trafo_edges)

    def vm_rows(positions: IntArray) -> FloatArray:
        out = np.empty((len(positions), buses))
        for k, p in enumerate(positions.tolist()):
            out[k] = lin.voltage_row(int(nodes[p]))[nodes]
        return out

    def branch_rows(edges: IntArray) -> Callable[[IntArray], FloatArray]:
        def rows(positions: IntArray) -> FloatArray:
            out = np.zeros((len(positions), len(edges)))
            present = edges >= 0
            for k, p in enumerate(positions.tolist()):
                out[k, present] = lin.branch_row(int(nodes[p]))[edges[present]]
            return out

        return rows

    def branch_column(edges: IntArray) -> Callable[[int], FloatArray]:
        def column(k: int) -> FloatArray:
            if edges[k] < 0:
                return np.zeros(buses)
            return np.asarray(lin.branch_column(int(edges[k]))[nodes])

        return column

    return Sensitivities(
        vm=solved.vm,
        lines=solved.lines,
        trafos=solved.trafos,
        d_vm=BusRows((buses, buses), vm_rows, lambda k: np.asarray(lin.voltage_column(int(nodes[k]))[nodes])),
        d_lines=BusRows((buses, n_lines), branch_rows(line_edges), branch_column(line_edges)),
        d_trafos=BusRows((buses, n_trafos), branch_rows(trafo_edges), branch_column(trafo_edges)),
        method="radial",
    )


def _finite_differences(engine: BatchEngine, slot: Schedule, solved: SolvedSlot) -> Sensitivities:
    """One batch of power flows: the operating point, then PROBE_W of extra load at each bus asked for."""
    buses = len(engine.model.buses)
    cache: dict[int, tuple[FloatArray, FloatArray, FloatArray]] = {}

    def probe(positions: IntArray) -> None:
        missing = sorted({int(p) for p in positions.tolist()} - cache.keys())
        if not missing:
            return
        n = len(missing)
        extra = np.zeros((n, buses))
        extra[np.arange(n), missing] = PROBE_W
        probes = Schedule(
            np.repeat(slot.load_p_w, n, axis=0),
            np.repeat(slot.load_q_var, n, axis=0),
            np.repeat(slot.sgen_p_w, n, axis=0),
            np.repeat(slot.market_p_w, n, axis=0) + extra,
        )
        vm, lines, trafos = engine.solve(probes)
        for k, p in enumerate(missing):
            cache[p] = (
                (vm[k] - solved.vm) / PROBE_W,
                (lines[k] - solved.lines) / PROBE_W,
                (trafos[k] - solved.trafos) / PROBE_W,
            )

    def rows(which: int) -> Callable[[IntArray], FloatArray]:
        def get(positions: IntArray) -> FloatArray:
            probe(positions)
            return np.array([cache[int(p)][which] for p in positions.tolist()]).reshape(len(positions), -1)

        return get

    def column(which: int) -> Callable[[int], FloatArray]:
        return lambda k: rows(which)(np.arange(buses, dtype=np.int64))[:, k]

    return Sensitivities(
        vm=solved.vm,
        lines=solved.lines,
        trafos=solved.trafos,
        d_vm=BusRows((buses, buses), rows(0), column(0)),
        d_lines=BusRows((buses, len(solved.lines)), rows(1), column(1)),
        d_trafos=BusRows((buses, len(solved.trafos)), rows(2), column(2)),
        method="finite differences",
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

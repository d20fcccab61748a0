"""Design (e), the optimum: one welfare-maximising dispatch with full information under every
network limit, the upper bound no market design can beat.

Day by day, with the batteries' state of charge carried from day to day and the next day in view
(a rolling horizon: a day solved alone would empty the batteries at midnight and leave the night
to the suppliers), a linear programme (HiGHS through scipy) chooses every battery's charge and
discharge and every PV generator's curtailment in every slot, and the community's exchange with
its suppliers, to maximise the
study's welfare (``study.accounts``) with perfect local netting:

    maximise   Σ_t (feed-in · E_t − retail · I_t) + v · Σ_b η_b · soc_b,end
    subject to I_t − E_t = Σ loads_t − Σ (PV_t − curtailed_t) + Σ (charge_t − discharge_t)
               soc_b,t = soc_b,t−1 + η_b · charge_b,t − discharge_b,t / η_b,  0 ≤ soc ≤ capacity
               0 ≤ charge, discharge ≤ power · 15 min,  0 ≤ curtailed ≤ PV
               every line and transformer loading ≤ limit and every bus voltage in its band,
               linearised by the network model's sensitivities at the slot's operating point

where ``v`` is the value of stored energy (the feed-in tariff: what a kWh delivered is worth at
least). Network rows are written for the slots where the grid without a market comes within
``WATCH_PERCENT`` of a loading limit (or ``WATCH_PU`` of the voltage band); the dispatch is then
solved with power-grid-model's AC power flow over the whole run, and any slot that still breaks
a limit gets rows linearised at the dispatch's own operating point and its day is solved again
with the same state of charge at its start and end (up to ``ROUNDS`` checks). Limits are kept
with a small margin (``LOADING_MARGIN``, ``VOLTAGE_MARGIN``) against the linearisation's error.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from gridledger.errors import GridLedgerError
from gridledger.network.validation import Schedule
from gridledger.study.devices import Batteries
from gridledger.study.market import MarketStudy, Progress, Screen
from gridledger.study.records import Check, Design, DesignRun
from gridledger.units import SLOTS_PER_DAY, SLOTS_PER_HOUR, WH_PER_KWH

WATCH_PERCENT = 15.0
WATCH_PU = 0.02
ROUNDS = 3
LOOKAHEAD_DAYS = 1  # each day is solved with the next in view, so it leaves the night its energy
LOADING_MARGIN = 0.2  # percentage points
VOLTAGE_MARGIN = 0.001  # pu
PROBE_W = 1_000.0


@dataclass
class Optimum:
    run: DesignRun
    import_wh: np.ndarray  # community import from suppliers per slot (perfect netting)
    export_wh: np.ndarray
    pv_curtailed_wh: np.ndarray  # (slots, PV)
    rounds: int
    constrained_slots: int


def solve_optimum(study: MarketStudy, progress: Progress | None = None) -> Optimum:
    """Design (e) over the study's run (``study.config``'s days)."""
    started = time.perf_counter()
    run = study.new_run(Design.OPTIMUM)
    n_days = run.slots // SLOTS_PER_DAY
    base = _no_market_order(study, run)
    base_screen = study.screen(_with_orders(run, base), 0, run.slots)
    rows: dict[int, _Rows | None] = {int(k): None for k in np.flatnonzero(_watched(study, base_screen))}
    _linearise(study, run, base, rows)  # fills every slot's rows in one batch
    imports = np.zeros(run.slots)
    exports = np.zeros(run.slots)
    curtailed = np.zeros((run.slots, len(study.pvs)))
    rounds = 0
    for day in range(n_days):
        _solve_day(study, run, day, rows, imports, exports, curtailed)
        if progress is not None:
            progress(SLOTS_PER_DAY)
    for rounds in range(1, ROUNDS + 1):
        screen = study.screen(run, 0, run.slots)
        _store(run, screen)
        bad = np.flatnonzero(screen.violations > 0)
        if not len(bad) or rounds == ROUNDS:
            break
        fresh: dict[int, _Rows | None] = {int(k): None for k in bad}
        _linearise(study, run, run.metered_wh, fresh)
        for k, r in fresh.items():
            old = rows.get(k)
            assert r is not None
            rows[k] = r if old is None else old.merge(r)
        # A day solved again keeps its start and end state of charge, so no other day moves.
        for day in sorted({int(k) // SLOTS_PER_DAY for k in bad}):
            _solve_day(study, run, day, rows, imports, exports, curtailed, keep_end=True)
    run.checked_by[:] = Check.SCREEN.value
    run.seconds = time.perf_counter() - started
    return Optimum(run, imports, exports, curtailed, rounds, len(rows))


@dataclass
class _Rows:
    """Linear network rows of one slot: A · ΔW ≤ b, ΔW the extra load per bus (W)."""

    a: np.ndarray
    b: np.ndarray

    def merge(self, other: _Rows) -> _Rows:
        return _Rows(np.vstack([self.a, other.a]), np.concatenate([self.b, other.b]))


def _no_market_order(study: MarketStudy, run: DesignRun) -> np.ndarray:
    order = np.zeros_like(run.order_wh)
    idle = Batteries(study.grid.batteries)
    for k in range(run.slots):
        order[k] = study.orders_wh(run.first_slot + k, idle)
    order[:, study.bats] = 0
    return order


def _with_orders(run: DesignRun, order: np.ndarray) -> DesignRun:
    scratch = DesignRun(run.design, run.first_slot, run.slots, run.participants, run.batteries)
    scratch.order_wh[:] = order
    return scratch


def _watched(study: MarketStudy, screen: Screen) -> np.ndarray:
    limits = study.grid.model.limits
    near = np.maximum(screen.trafo, screen.lines) > limits.max_loading_percent - WATCH_PERCENT
    near |= screen.v_max > limits.v_max_pu - WATCH_PU
    near |= screen.v_min < limits.v_min_pu + WATCH_PU
    return np.asarray(near)


def _linearise(study: MarketStudy, run: DesignRun, metered: np.ndarray, rows: dict[int, _Rows | None]) -> None:
    """Rows for the slots in ``rows`` at the operating point ``metered`` (one batch of probes)."""
    if not rows:
        return
    model, engine = study.grid.model, study.grid.engine
    buses = len(model.buses)
    slots = sorted(rows)
    point = (metered[slots] * SLOTS_PER_HOUR).astype(float) @ study.incidence  # (n, buses)
    probes = np.repeat(point, buses + 1, axis=0) + np.tile(
        np.vstack([np.zeros(buses), np.eye(buses) * PROBE_W]), (len(slots), 1)
    )
    m = probes.shape[0]
    n_load, n_sgen = len(model.net.load), len(model.net.sgen)
    vm, lines, trafos = engine.solve(
        Schedule(np.zeros((m, n_load)), np.zeros((m, n_load)), np.zeros((m, n_sgen)), probes)
    )
    limits = model.limits
    for j, k in enumerate(slots):
        block = slice(j * (buses + 1), (j + 1) * (buses + 1))
        v, li, tr = vm[block], lines[block], trafos[block]
        loading = np.hstack([li, tr])
        d_loading = (loading[1:] - loading[0]) / PROBE_W  # (buses, elements)
        d_vm = (v[1:] - v[0]) / PROBE_W
        a = np.vstack([d_loading.T, d_vm.T, -d_vm.T])
        b = np.concatenate(
            [
                limits.max_loading_percent - LOADING_MARGIN - loading[0],
                limits.v_max_pu - VOLTAGE_MARGIN - v[0],
                -(limits.v_min_pu + VOLTAGE_MARGIN - v[0]),
            ]
        )
        # Rows relative to the operating point: ΔW is measured from ``metered``'s flows.
        rows[k] = _Rows(a, b + a @ point[j])


def _solve_day(
    study: MarketStudy,
    run: DesignRun,
    day: int,
    rows: dict[int, _Rows | None],
    imports: np.ndarray,
    exports: np.ndarray,
    curtailed: np.ndarray,
    *,
    keep_end: bool = False,
) -> None:
    c = study.config
    k0 = day * SLOTS_PER_DAY
    days_left = (run.slots - k0) // SLOTS_PER_DAY
    n = SLOTS_PER_DAY * (1 if keep_end else min(1 + LOOKAHEAD_DAYS, days_left))
    soc0 = run.soc_wh[k0].copy()
    slots = np.arange(run.first_slot + k0, run.first_slot + k0 + n)
    bats = Batteries(study.grid.batteries)
    nb, ng = len(study.bats), len(study.pvs)
    pv = study.pv_wh[slots].astype(float)  # (n, G)
    load = study.load_wh[slots].sum(axis=1).astype(float)
    # Variable blocks: charge, discharge, soc (nb × n each), curtail (ng × n), import, export (n each).
    ch, dis, soc = 0, nb * n, 2 * nb * n
    cur = 3 * nb * n
    imp = cur + ng * n
    exp = imp + n
    size = exp + n

    def at(block: int, unit: int, t: int | np.ndarray) -> int | np.ndarray:
        return block + unit * n + t

    cost = np.zeros(size)
    cost[imp : imp + n] = c.retail_per_kwh / WH_PER_KWH
    cost[exp : exp + n] = -c.feed_in_per_kwh / WH_PER_KWH
    for b in range(nb):
        cost[at(soc, b, n - 1)] = -c.feed_in_per_kwh / WH_PER_KWH * bats.efficiency[b]
    upper = np.full(size, np.inf)
    for b in range(nb):
        upper[at(ch, b, 0) : at(ch, b, 0) + n] = bats.power_wh[b]
        upper[at(dis, b, 0) : at(dis, b, 0) + n] = bats.power_wh[b]
        upper[at(soc, b, 0) : at(soc, b, 0) + n] = bats.capacity_wh[b]
    for g in range(ng):
        upper[at(cur, g, 0) : at(cur, g, 0) + n] = pv[:, g]
    lower = np.zeros(size)
    if keep_end:
        for b in range(nb):
            lower[at(soc, b, n - 1)] = upper[at(soc, b, n - 1)] = run.soc_wh[k0 + n, b]

    eq_r, eq_c, eq_v, eq_b = [], [], [], []
    row = 0
    t = np.arange(n)
    for b in range(nb):
        eta = bats.efficiency[b]
        for col, val in ((at(soc, b, t), 1.0), (at(ch, b, t), -eta), (at(dis, b, t), 1 / eta)):
            eq_r += list(row + t)
            eq_c += list(np.atleast_1d(col))
            eq_v += [val] * n
        eq_r += list(row + t[1:])
        eq_c += list(np.atleast_1d(at(soc, b, t[:-1])))
        eq_v += [-1.0] * (n - 1)
        rhs = np.zeros(n)
        rhs[0] = soc0[b]
        eq_b += list(rhs)
        row += n
    # Balance: I − E − Σ charge + Σ discharge − Σ curtailed = loads − PV.
    eq_r += list(row + t) + list(row + t)
    eq_c += list(imp + t) + list(exp + t)
    eq_v += [1.0] * n + [-1.0] * n
    for b in range(nb):
        eq_r += list(row + t) + list(row + t)
        eq_c += list(np.atleast_1d(at(ch, b, t))) + list(np.atleast_1d(at(dis, b, t)))
        eq_v += [-1.0] * n + [1.0] * n
    for g in range(ng):
        eq_r += list(row + t)
        eq_c += list(np.atleast_1d(at(cur, g, t)))
        eq_v += [-1.0] * n
    eq_b += list(load - pv.sum(axis=1))
    row += n
    a_eq = sp.csr_matrix((eq_v, (eq_r, eq_c)), shape=(row, size))

    # Network rows: ΔW at each bus = 4 W per Wh of (charge − discharge + curtailed) there, measured
    # from the no-market point, whose own flows are the rows' constant part.
    bus_of = study.grid.participant_bus_position
    lever_bus = np.concatenate([bus_of[study.bats], bus_of[study.bats], bus_of[study.pvs]]).astype(int)
    lever_sign = np.concatenate([np.ones(nb), -np.ones(nb), np.ones(ng)]) * SLOTS_PER_HOUR
    blocks_r, blocks_c, blocks_v, ub_b = [], [], [], []
    urow = 0
    for t_ in range(n):
        r = rows.get(k0 + t_)
        if r is None:
            continue
        point = np.zeros(len(study.grid.participants))
        point[study.loads] = study.load_wh[slots[t_]]
        point[study.pvs] = -study.pv_wh[slots[t_]]
        ub_b.append(r.b - r.a @ ((point * SLOTS_PER_HOUR) @ study.incidence))
        cols = np.concatenate(
            [ch + np.arange(nb) * n + t_, dis + np.arange(nb) * n + t_, cur + np.arange(ng) * n + t_]
        ).astype(int)
        e = r.a.shape[0]
        blocks_r.append(np.repeat(urow + np.arange(e), len(cols)))
        blocks_c.append(np.tile(cols, e))
        blocks_v.append((r.a[:, lever_bus] * lever_sign).ravel())
        urow += e
    a_ub = None
    if urow:
        a_ub = sp.csr_matrix(
            (np.concatenate(blocks_v), (np.concatenate(blocks_r), np.concatenate(blocks_c))), shape=(urow, size)
        )
    solved = linprog(
        cost,
        A_ub=a_ub,
        b_ub=np.concatenate(ub_b) if urow else None,
        A_eq=a_eq,
        b_eq=np.array(eq_b),
        bounds=np.column_stack([lower, upper]),
        method="highs",
    )
    if solved.status != 0:
        raise GridLedgerError(
            f"the optimum's linear programme for day {run.first_slot // n + day + 1}: {solved.message}"
        )
    x = np.asarray(solved.x)
    m = SLOTS_PER_DAY  # the day is kept; the look-ahead only decides what it leaves for the next
    k = slice(k0, k0 + m)
    charge = np.vstack([x[at(ch, b, 0) : at(ch, b, 0) + n] for b in range(nb)]).T if nb else np.zeros((n, 0))
    discharge = np.vstack([x[at(dis, b, 0) : at(dis, b, 0) + n] for b in range(nb)]).T if nb else np.zeros((n, 0))
    cut = np.vstack([x[at(cur, g, 0) : at(cur, g, 0) + n] for g in range(ng)]).T if ng else np.zeros((n, 0))
    order = np.zeros((n, len(study.grid.participants)), dtype=np.int64)
    order[:, study.loads] = study.load_wh[slots]
    order[:, study.pvs] = -study.pv_wh[slots]
    run.order_wh[k] = order[:m]
    run.curtailed_wh[k] = 0
    run.flex_wh[k] = 0
    run.flex_wh[k][:, study.pvs] = np.rint(cut[:m]).astype(np.int64)
    run.order_wh[k][:, study.bats] = np.rint(charge[:m] - discharge[:m]).astype(np.int64)
    for t_ in range(m):
        socs = np.array([x[at(soc, b, t_)] for b in range(nb)])
        run.soc_wh[k0 + t_ + 1] = socs
    imports[k] = x[imp : imp + m]
    exports[k] = x[exp : exp + m]
    curtailed[k] = cut[:m]


def _store(run: DesignRun, screen: Screen) -> None:
    run.trafo_loading[:] = screen.trafo
    run.line_loading[:] = screen.lines
    run.v_min[:] = screen.v_min
    run.v_max[:] = screen.v_max
    run.violations[:] = screen.violations

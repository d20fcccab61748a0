"""``run_study``: every design over the same days of one grid, and what the report needs.

Designs (c) and (d) spend most of their time in ``facilitate`` on the slots that breach a limit
(its AC confirmation is a pandapower power flow per slot); they run in two forked processes while
this one runs (a), (b), (e), the tariff comparison and the reinforcement check.
"""

from __future__ import annotations

import copy
import multiprocessing as mp
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from gridledger.network.model import NetworkModel
from gridledger.network.validation import BatchEngine, ac_check
from gridledger.study.accounts import Accounts, optimum_welfare, settle_run
from gridledger.study.config import StudyConfig
from gridledger.study.grid import STUDY_GRID, StudyGrid
from gridledger.study.market import MarketStudy, Screen
from gridledger.study.optimum import Optimum, solve_optimum
from gridledger.study.records import Design, DesignRun
from gridledger.study.tariffs import SHAPES, Tariff
from gridledger.units import SLOTS_PER_DAY

StudyProgress = Callable[[str, int], None]  # (what is running, slots just finished)
RELIEVED = (Design.P2P_THEN_CURTAILMENT, Design.JOINT)


@dataclass
class TariffRun:
    tariff: Tariff
    run: DesignRun
    accounts: Accounts


@dataclass
class StudyResult:
    grid: StudyGrid
    study: MarketStudy
    config: StudyConfig
    runs: dict[Design, DesignRun]
    accounts: dict[Design, Accounts]
    optimum: Optimum
    optimum_welfare: np.ndarray
    tariffs: list[TariffRun]
    reinforced_violations: int  # (b)'s slots still over a limit with the reinforced transformer
    critical_days: list[int]
    seconds: float = 0.0
    peak_memory_mb: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)  # wall seconds per part
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds per part (the machine is shared)

    def welfare(self, design: Design) -> float:
        if design is Design.OPTIMUM:
            return float(self.optimum_welfare.sum())
        return self.accounts[design].welfare


def run_study(
    config: StudyConfig, grid: str = STUDY_GRID, progress: StudyProgress | None = None, *, parallel: bool = True
) -> StudyResult:
    started = time.perf_counter()
    timings: dict[str, float] = {}
    cpu: dict[str, float] = {}
    clock: list[float] = []

    def start() -> None:
        clock[:] = [time.perf_counter(), time.process_time()]

    def stop(label: str) -> None:
        timings[label] = time.perf_counter() - clock[0]
        cpu[label] = time.process_time() - clock[1]

    start()
    study_grid = StudyGrid(grid)
    study = MarketStudy(study_grid, config)
    first = (config.first_day - 1) * SLOTS_PER_DAY
    slots = config.days * SLOTS_PER_DAY
    excess = study.forecast_excess_wh(first, slots)
    critical = sorted({int(first + k) // SLOTS_PER_DAY for k in np.flatnonzero(excess > 0)})
    stop("grid, profiles and the DSO's forecast")

    def tariff_of(t: Tariff) -> np.ndarray:
        return t.per_slot(slots, first, critical)

    def report(label: str) -> Callable[[int], None]:
        return lambda n: progress(label, n) if progress else None

    children: dict[Design, Any] = {}
    queue: Any = None
    if parallel and mp.get_all_start_methods().count("fork"):
        # pandapower's numba functions compile on first use (~13 s here): once, before forking.
        ac_check(study_grid.model, study.screen_schedule(study.new_run(Design.NO_MARKET), 0, 1))
        ctx = mp.get_context("fork")
        queue = ctx.Queue()
        for design in RELIEVED:
            proc = ctx.Process(target=_child, args=(study, design, tariff_of(config.tariff), queue), daemon=True)
            proc.start()
            children[design] = proc

    runs: dict[Design, DesignRun] = {}
    for design in (Design.NO_MARKET, Design.P2P_UNCONSTRAINED):
        start()
        runs[design] = study.run(design, tariff_of(config.tariff), report(design.title))
        stop(design.title)
    start()
    optimum = solve_optimum(study, report(Design.OPTIMUM.title))
    stop(Design.OPTIMUM.title)

    tariffs = []
    for shape in SHAPES:
        start()
        tariff = replace(config.tariff, shape=shape)
        if tariff == config.tariff:  # design (b) itself
            run = runs[Design.P2P_UNCONSTRAINED]
        else:
            run = study.run(Design.P2P_UNCONSTRAINED, tariff_of(tariff), report(f"(b) with tariff {shape}"))
        tariffs.append(TariffRun(tariff, run, settle_run(study, run)))
        stop(f"(b) with tariff {shape}")
    start()
    reinforced = _reinforced_violations(study, runs[Design.P2P_UNCONSTRAINED])
    stop("reinforced transformer check")

    if children:
        waiting = set(children)
        while waiting:
            kind, design_value, payload = queue.get()
            design = Design(design_value)
            if kind == "progress":
                if progress:
                    progress(design.title, payload)
            elif kind == "error":
                raise payload
            else:
                runs[design] = payload
                timings[design.title] = payload.seconds
                cpu[design.title] = payload.cpu_seconds
                waiting.discard(design)
        for proc in children.values():
            proc.join()
    else:
        for design in RELIEVED:
            runs[design] = study.run(design, tariff_of(config.tariff), report(design.title))
            timings[design.title] = runs[design].seconds
            cpu[design.title] = runs[design].cpu_seconds

    accounts = {d: settle_run(study, runs[d]) for d in runs}
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return StudyResult(
        grid=study_grid,
        study=study,
        config=config,
        runs={d: runs[d] for d in (Design.NO_MARKET, Design.P2P_UNCONSTRAINED, *RELIEVED)},
        accounts=accounts,
        optimum=optimum,
        optimum_welfare=optimum_welfare(study, optimum),
        tariffs=tariffs,
        reinforced_violations=reinforced,
        critical_days=critical,
        seconds=time.perf_counter() - started,
        peak_memory_mb=max(own, kids) / 1024,
        timings=timings,
        cpu=cpu,
    )


def _child(study: MarketStudy, design: Design, tariff: np.ndarray, queue: Any) -> None:
    try:
        run = study.run(design, tariff, lambda n: queue.put(("progress", design.value, n)))
        queue.put(("done", design.value, run))
    except BaseException as exc:  # reported to the parent, which raises it
        queue.put(("error", design.value, exc))


def _reinforced_violations(study: MarketStudy, run: DesignRun) -> int:
    """Slots of ``run`` that would still break a limit with the transformer reinforced."""
    r = study.config.reinforcement
    grid = study.grid
    net = copy.deepcopy(grid.model.net)
    net.trafo["sn_mva"] = net.trafo["sn_mva"] * r.to_kva / r.from_kva
    model = NetworkModel(net, source=f"{grid.code} (transformer {r.to_kva} kVA)", limits=grid.model.limits)
    reinforced = copy.copy(study)
    reinforced.grid = copy.copy(grid)
    reinforced.grid.model = model
    reinforced.grid.engine = BatchEngine(model)
    screen: Screen = reinforced.screen(run, 0, run.slots)
    return int((screen.violations > 0).sum())

"""Every grid `gridledger demo --grid` allows, checked: it loads, converts for power-grid-model,
validates its day in one batch, offers all its loads as prosumers and passes pandapower's AC
check of a slot.

    python benchmarks/grids.py [--all] [CODE ...]

By default one code per SimBench grid (its "today" scenario with switches) plus the 2034
scenario without switches of the largest ones; ``--all`` takes all 216 codes (hours). Prints per
code: buses, loads, whether the operated network is a tree (the sensitivities' fast path), the
day's worst line and transformer loading and voltage band, the largest prosumer's peak, the
difference between the engines' worst line loading at noon, and the time it took.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from gridledger.network.model import NetworkModel
from gridledger.network.profiles import day_profiles, grid_baseline, load_grid, simbench_codes
from gridledger.network.validation import BatchEngine, Schedule, ac_check

DAY, NOON = 173, 52


def representative() -> list[str]:
    def wanted(code: str) -> bool:
        stem, scenario, switches = code.rsplit("-", 2)
        large = "-all" in stem or stem.startswith(("1-HV-", "1-LV-rural1"))
        return (scenario, switches) == ("0", "sw") or ((scenario, switches) == ("2", "no_sw") and large)

    return [code for code in simbench_codes() if wanted(code)]


def check(code: str) -> str:
    started = time.perf_counter()
    net = load_grid(code)
    model = NetworkModel.load(code)
    engine = BatchEngine(model)
    p, q, g = grid_baseline(day=DAY, grid=code)
    checks = engine.run(Schedule(p, q, g, np.zeros((96, len(model.buses)))))
    prosumers = day_profiles(count=len(net.load), day=DAY, grid=code)
    noon = Schedule(p[NOON : NOON + 1], q[NOON : NOON + 1], g[NOON : NOON + 1], np.zeros((1, len(model.buses))))
    ac = ac_check(model, noon)
    tree = "tree" if engine.tree.radial else f"not a tree ({engine.tree.reason})"
    return (
        f"{code:<30} {len(net.bus):6,} buses {len(net.load):6,} loads  {tree}; "
        f"lines ≤ {max(c.max_line_loading_percent for c in checks):.1f} %, "
        f"transformers ≤ {max(c.max_trafo_loading_percent for c in checks):.1f} %, "
        f"{min(c.v_min_pu for c in checks):.3f}–{max(c.v_max_pu for c in checks):.3f} pu; "
        f"largest prosumer {max(x.peak_w for x in prosumers) / 1000:,.0f} kW; "
        f"AC − batch at noon {ac.max_line_loading_percent - checks[NOON].max_line_loading_percent:+.2f} points; "
        f"{time.perf_counter() - started:.0f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("codes", nargs="*")
    parser.add_argument("--all", action="store_true", help="every supported code")
    args = parser.parse_args()
    codes = args.codes or (list(simbench_codes()) if args.all else representative())
    failed = 0
    for code in codes:
        try:
            print(check(code), flush=True)
        except Exception as exc:  # a grid that does not work is the finding, not a crash
            failed += 1
            print(f"{code:<30} FAILED: {type(exc).__name__}: {exc}", flush=True)
        load_grid.cache_clear()  # one grid in memory at a time
    print(f"{len(codes) - failed} of {len(codes)} grids work")


if __name__ == "__main__":
    main()

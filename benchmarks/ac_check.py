"""``network.validation.ac_check`` against a fresh pandapower ``runpp`` per slot, on the study's
grid (SimBench 1-LV-rural1--2-sw with its market loads), over the same slots.

    python benchmarks/ac_check.py [--slots 100] [--grid 1-LV-rural1--2-sw]

Prints the median wall and CPU milliseconds a call of each, and whether every result (every
line's and transformer's loading, every bus voltage) was the same to the last bit. The machine's
load is not controlled: compare figures taken in one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import types
from pathlib import Path

import numpy as np

from gridledger.network.model import NetworkModel
from gridledger.network.validation import Schedule, ac_check

ROOT = Path(__file__).resolve().parents[1]
# slither-analyzer installs a top-level ``tests`` package into site-packages: name ours explicitly.
_tests = types.ModuleType("tests")
_tests.__path__ = [str(ROOT / "tests")]
sys.modules["tests"] = _tests

from tests.backend.network.test_ac_check import fresh_runpp  # noqa: E402  the test's reference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slots", type=int, default=100)
    parser.add_argument("--grid", default="1-LV-rural1--2-sw")
    args = parser.parse_args()
    model = NetworkModel.load(args.grid)
    p, q, g = model.static_loads()
    rng = np.random.default_rng(12)
    schedules = []
    for k in range(args.slots):
        market = np.where(rng.random(len(model.buses)) < 0.3, rng.normal(0, 4_000, len(model.buses)), 0.0)
        scale = rng.uniform(0.2, 1.2, len(p))
        schedules.append(Schedule((p * scale)[None], (q * scale)[None], (g * (k % 12) / 6)[None], market[None]))
    ac_check(model, schedules[0])  # numba compiles, the case is built once
    fresh_runpp(model, schedules[0])
    wall: dict[str, list[float]] = {"ac_check": [], "fresh runpp": []}
    cpu: dict[str, list[float]] = {"ac_check": [], "fresh runpp": []}
    same = 0
    for schedule in schedules:
        t, c = time.perf_counter(), time.process_time()
        ac_check(model, schedule)
        wall["ac_check"].append(time.perf_counter() - t)
        cpu["ac_check"].append(time.process_time() - c)
        net = model.__dict__["_ac_net"].net
        ours = [
            net.res_line.loading_percent.to_numpy(float),
            net.res_trafo.loading_percent.to_numpy(float),
            net.res_bus.vm_pu.to_numpy(float),
        ]
        t, c = time.perf_counter(), time.process_time()
        theirs = fresh_runpp(model, schedule)
        wall["fresh runpp"].append(time.perf_counter() - t)
        cpu["fresh runpp"].append(time.process_time() - c)
        same += all(np.array_equal(a, b) for a, b in zip(ours, theirs, strict=True))
    print(f"{args.grid}, {args.slots} slots, load average {os.getloadavg()[0]:.1f}")
    for name in wall:
        print(
            f"  {name:12s} median {statistics.median(wall[name]) * 1e3:6.1f} ms wall, "
            f"{statistics.median(cpu[name]) * 1e3:6.1f} ms CPU a call"
        )
    print(f"  identical to the last bit in {same} of {args.slots} slots")


if __name__ == "__main__":
    main()

"""What an uncached GET /network/slots/{ds}/flows costs the chain thread beyond reading the chain's
logs: the slot's AC power flow of every element (``network.validation.ac_flows``) and the answer's
JSON (``service.flows``), on a grid's SimBench baseline at one slot, per call after the first.

    python benchmarks/network_flows.py [--grid 1-LV-semiurb5--0-sw] [--calls 20] [--day 172] [--slot 48]

Prints the median wall and CPU milliseconds of a call (the AC net is built once per model, by the
facilitator's own check long before), and the answer's size. The machine's load is not controlled: compare figures
taken in one run, and say the load average with them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from dataclasses import asdict

import numpy as np

from gridledger.network.model import NetworkModel
from gridledger.network.profiles import grid_baseline
from gridledger.network.validation import Schedule, ac_flows
from gridledger.service.flows import _as_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", default="1-LV-semiurb5--0-sw")
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--day", type=int, default=172)
    parser.add_argument("--slot", type=int, default=48)
    args = parser.parse_args()
    model = NetworkModel.load(args.grid)
    load_p, load_q, sgen_p = (a[args.slot : args.slot + 1].copy() for a in grid_baseline(day=args.day, grid=args.grid))
    schedule = Schedule(load_p, load_q, sgen_p, np.zeros((1, len(model.buses))))
    # A report as the facilitator stores it for this schedule (its check is what the answer compares with).
    report = {
        "limits": asdict(model.limits),
        "check": asdict(ac_flows(model, schedule).check(model)),
        "curtailments": [],
    }
    wall, cpu = [], []
    size = 0
    for _ in range(args.calls + 1):
        w0, c0 = time.perf_counter(), time.process_time()
        flows = ac_flows(model, schedule)
        answer = _as_json(model, 0, "0x", flows, report)
        size = len(json.dumps(answer))
        wall.append((time.perf_counter() - w0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    net = model.net
    shape = f"{len(net.bus)} buses, {len(net.line)} lines, {len(net.trafo)} transformers"
    print(f"{args.grid}: {shape}; load average {os.getloadavg()[0]:.1f}")
    median_wall, median_cpu = statistics.median(wall[1:]), statistics.median(cpu[1:])
    print(f"  then, median of {args.calls}: {median_wall:.1f} ms wall, {median_cpu:.1f} ms CPU")
    print(f"  answer: {size / 1024:.0f} KiB of JSON")


if __name__ == "__main__":
    main()

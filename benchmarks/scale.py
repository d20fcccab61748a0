"""A market day at feeder scale, phase by phase: wall time, transactions, gas and orders.

    python benchmarks/scale.py [--prosumers 1000] [--grid 1-MVLV-rural-all-0-sw]
                               [--chain embedded|hardhat|anvil] [--slots 96] [--first-slot 0] [--day 173]

Runs ``sim.market_day`` (the demo's day: onboarding, then per slot signed orders relayed in
batches, clearing with the network check at gate closure, meter readings and settlement after
delivery) and prints, per phase, its wall time, the transactions and gas it sent and the orders
it handled; the time from gate closure to a committed, validated clearing of each slot (reading
the slot's orders from the chain, ``facilitate``, the commit); the peak resident memory of this
process and of the node. With fewer than 96 slots it also prints a whole day extrapolated from
the slots run (labelled as such). Hardhat and anvil nodes are started and stopped here.

A phase the chain refuses (e.g. a transaction above EIP-7825's 16,777,216 gas) ends the run:
the figures measured until then are printed with the refusal.
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import statistics
import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from gridledger.chain import devnet
from gridledger.chain.ledger import Ledger
from gridledger.config import Settings
from gridledger.errors import GridLedgerError
from gridledger.sim.market_day import DayConfig, SlotOutcome, run_market_day
from gridledger.sim.phases import PhaseClock, PhaseFigures
from gridledger.units import SLOTS_PER_DAY

CLEARING = ("clearing: read orders", "clearing: network check", "clearing: commit")
PER_SLOT = ("orders: sign", "orders: relay", *CLEARING, "meter readings", "settlement", "flexibility")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def group_rss_kib(pid: int) -> tuple[int, int]:
    """Current and peak resident memory (KiB) summed over the processes of ``pid``'s group."""
    current = peak = 0
    group = os.getpgid(pid)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != group:
                continue
            fields = dict(line.split(":", 1) for line in (entry / "status").read_text().splitlines() if ":" in line)
        except (OSError, ProcessLookupError):
            continue
        current += int(fields.get("VmRSS", "0 kB").split()[0])
        peak += int(fields.get("VmHWM", "0 kB").split()[0])
    return current, peak


def table(figures: dict[str, PhaseFigures], slots: int) -> None:
    print(f"{'phase':<26} {'wall s':>9} {'per slot s':>11} {'transactions':>13} {'gas':>15} {'orders':>9}")
    for name, f in figures.items():
        per_slot = f"{f.seconds / slots:11.2f}" if name in PER_SLOT and slots else " " * 11
        print(f"{name:<26} {f.seconds:9.1f} {per_slot} {f.transactions:13,} {f.gas:15,} {f.orders:9,}")
    total = PhaseFigures(
        seconds=sum(f.seconds for f in figures.values()),
        transactions=sum(f.transactions for f in figures.values()),
        gas=sum(f.gas for f in figures.values()),
    )
    print(f"{'all phases':<26} {total.seconds:9.1f} {'':11} {total.transactions:13,} {total.gas:15,}")


def load_average() -> str:
    """The machine's 1-, 5- and 15-minute load averages: the figures depend on what else runs."""
    return " ".join(open("/proc/loadavg").read().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prosumers", type=int, default=1_000)
    parser.add_argument("--grid", default="1-MVLV-rural-all-0-sw")
    parser.add_argument("--chain", default="embedded", choices=("embedded", "hardhat", "anvil"))
    parser.add_argument("--slots", type=int, default=SLOTS_PER_DAY)
    parser.add_argument("--first-slot", type=int, default=0)
    parser.add_argument("--day", type=int, default=173)
    args = parser.parse_args()
    started_load = load_average()

    port = free_port()
    node: AbstractContextManager[devnet.Devnet | None] = (
        nullcontext() if args.chain == "embedded" else devnet.running(args.chain, port)
    )
    with node as running:
        settings = Settings(chain=args.chain, devnet_port=port)
        started = time.perf_counter()
        ledger, _ = Ledger.open(settings, record=False)
        print(
            f"{args.prosumers:,} prosumers of {args.grid} on {args.chain}, day {args.day}, "
            f"{args.slots} slots from slot {args.first_slot} "
            f"(contracts ready in {time.perf_counter() - started:.1f} s)",
            flush=True,
        )
        config = DayConfig(
            prosumers=args.prosumers, day=args.day, grid=args.grid, slots=args.slots, first_slot=args.first_slot
        )
        clock = PhaseClock(ledger)
        done: list[SlotOutcome] = []

        def progress(outcome: SlotOutcome) -> None:
            done.append(outcome)
            k = len(done) - 1  # slots clear and settle in order: the k-th stretch of each is this slot's
            gate_to_commit = sum(clock.figures[name].stretches[k] for name in CLEARING if name in clock.figures)
            print(
                f"  slot {outcome.index:2d}: {outcome.orders:,} orders, {outcome.clearing.traded_wh / 1000:,.1f} kWh "
                f"traded, {len(outcome.network.curtailments)} fills curtailed; gate closure → committed in "
                f"{gate_to_commit:.2f} s",
                flush=True,
            )

        refusal = None
        day_started = time.perf_counter()
        try:
            run_market_day(ledger, config, on_slot=progress, clock=clock)
        except GridLedgerError as exc:
            refusal = str(exc)
        wall = time.perf_counter() - day_started
        node_rss = group_rss_kib(running.pid) if running else None

    slots = len(done)
    print()
    table(clock.figures, slots)
    print(f"wall time of the run: {wall:.1f} s")
    if refusal:
        print(f"REFUSED after {slots} settled slots: {refusal}")

    clearing = [
        sum(c) for c in zip(*(clock.figures[n].stretches for n in CLEARING if n in clock.figures), strict=False)
    ]
    if clearing:
        largest = max(range(len(done)), key=lambda k: done[k].orders) if done else 0
        print(
            f"gate closure → committed, validated clearing: median {statistics.median(clearing):.2f} s, "
            f"max {max(clearing):.2f} s over {len(clearing)} slots"
            + (f"; the largest slot ({done[largest].orders:,} orders) {clearing[largest]:.2f} s" if done else "")
        )
        parts = ", ".join(
            f"{n.split(': ')[1]} {statistics.median(clock.figures[n].stretches):.2f} s"
            for n in CLEARING
            if n in clock.figures
        )
        print(f"  of which (medians): {parts}")

    if slots and slots < SLOTS_PER_DAY:
        fixed = sum(f.seconds for n, f in clock.figures.items() if n not in PER_SLOT)
        per_slot = sum(f.seconds for n, f in clock.figures.items() if n in PER_SLOT) / slots
        print(
            f"EXTRAPOLATED, not measured: a whole day of {SLOTS_PER_DAY} slots ≈ {fixed:.0f} s once + "
            f"{SLOTS_PER_DAY} × {per_slot:.1f} s = {fixed + SLOTS_PER_DAY * per_slot:,.0f} s "
            f"(from {slots} slots {args.first_slot}–{args.first_slot + slots - 1}; the day's slots differ in orders)"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    line = f"peak resident memory: this process {peak / 1024 / 1024:.2f} GiB"
    if node_rss:
        line += f"; the {args.chain} node {node_rss[1] / 1024 / 1024:.2f} GiB (now {node_rss[0] / 1024 / 1024:.2f})"
    print(line)
    print(f"load average {load_average()} on {os.cpu_count()} cores (at the start: {started_load})")


if __name__ == "__main__":
    main()

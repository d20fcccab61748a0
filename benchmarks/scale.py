"""A market day at feeder scale, phase by phase: wall time, transactions, gas and orders.

    python benchmarks/scale.py [--prosumers 1000] [--grid 1-MVLV-rural-all-0-sw]
                               [--chain embedded|hardhat|anvil] [--slots 96] [--first-slot 0] [--day 173]
    python benchmarks/scale.py --python-side 500,1000,2000,5000 [--grid …]

Runs ``sim.market_day`` (the demo's day: onboarding, then per slot signed orders relayed in
batches, clearing with the network check at gate closure, meter readings and settlement after
delivery) and prints, per phase, its wall time, the transactions and gas it sent and the orders
it handled; the time from gate closure to a committed, validated clearing of each slot (reading
the slot's orders from the chain, ``facilitate``, the commit); the peak resident memory of this
process and of the node. With fewer than 96 slots it also prints a whole day extrapolated from
the slots run (labelled as such). Hardhat and anvil nodes are started and stopped here.

A phase the chain refuses (e.g. a transaction above EIP-7825's 16,777,216 gas) ends the run, and
so does SIGINT (Ctrl-C): the figures measured until then are printed with the reason.

``--python-side`` measures, without a chain, what the facilitator's and the prosumers' Python
does in one slot (12:00) for each number of prosumers: signing every order, ``facilitate``
(auction, network check, AC confirmation, report; median of 3), hashing the report and building
the meter readings; per prosumer, so that the growth with the feeder's size shows.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import resource
import socket
import statistics
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from eth_utils.crypto import keccak

from gridledger.chain import devnet
from gridledger.chain.connection import FIRST_PROSUMER_INDEX
from gridledger.chain.ledger import Ledger
from gridledger.config import Settings
from gridledger.errors import GridLedgerError
from gridledger.facilitation import BaselineRef, SlotInputs, facilitate, slot_schedule
from gridledger.market.orders import Order, RecordedOrder, Side
from gridledger.network.model import NetworkModel
from gridledger.network.profiles import day_profiles
from gridledger.network.validation import BatchEngine, ac_check
from gridledger.sim.market_day import DayConfig, SlotOutcome, _metered_wh, first_day_start, run_market_day
from gridledger.sim.participants import derive_accounts
from gridledger.sim.phases import PhaseClock, PhaseFigures
from gridledger.units import SLOT_HOURS, SLOT_SECONDS, SLOTS_PER_DAY
from gridledger.wallet.signing import sign_order

CLEARING = ("clearing: read orders", "clearing: network check", "clearing: commit")
LARGE_SLOT_ORDERS = 5_000
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


def median_s(fn: Callable[[], object], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def python_side(grid: str, sizes: list[int], day: int) -> None:
    config = DayConfig(grid=grid, day=day)
    model = NetworkModel.load(grid)
    engine = BatchEngine(model)
    profiles = day_profiles(count=max(sizes), day=day, grid=grid)
    keys = derive_accounts(Settings().mnemonic, FIRST_PROSUMER_INDEX, max(sizes))
    k = 48
    ds = first_day_start(0, day) + k * SLOT_SECONDS
    ac_check(model, slot_schedule(model, BaselineRef(grid, day, k, ()), [], {}))  # numba compiles once
    gc.freeze()  # as the day does: the grid and the keys stay out of full collections
    market = "0x" + "5a" * 20
    print(
        f"{'prosumers':>9} {'orders':>7} {'sign s':>8} {'facilitate s':>13} {'of it AC s':>11} {'report ms':>10} "
        f"{'readings ms':>12} {'µs/prosumer':>12}"
    )
    for n in sizes:
        rng = random.Random(7)
        started = time.perf_counter()
        signed = []
        for account, profile in zip(keys[:n], profiles[:n], strict=True):
            net_wh = round(float(profile.net_w[k]) * SLOT_HOURS)
            if abs(net_wh) < config.min_order_wh:
                continue
            side = Side.BUY if net_wh > 0 else Side.SELL
            price = rng.randint(config.feed_in_per_kwh, config.retail_per_kwh)
            order = Order(account.address, side, ds, abs(net_wh), price, 0, ds)
            signed.append(sign_order(account, order, chain_id=31337, market_address=market))
        signing = time.perf_counter() - started
        bus_of = {a.address: p.bus for a, p in zip(keys[:n], profiles[:n], strict=True)}
        recorded = [RecordedOrder(s.order, s.order_hash, (1 + i // 100, i % 100)) for i, s in enumerate(signed)]
        ref = BaselineRef.for_delivery(model, grid, ds, bus_of.values())
        inputs = SlotInputs(ds, ref, recorded, bus_of)
        facilitating = median_s(lambda: facilitate(model, engine, inputs))  # noqa: B023
        slot = facilitate(model, engine, inputs)
        schedule = slot_schedule(model, ref, [r.order for r in recorded], bus_of)
        ac = median_s(lambda: ac_check(model, schedule))  # noqa: B023
        started = time.perf_counter()
        keccak(slot.report.canonical())
        report = time.perf_counter() - started
        started = time.perf_counter()
        {a.address: _metered_wh(p, k, config, rng) for a, p in zip(keys[:n], profiles[:n], strict=True)}
        readings = time.perf_counter() - started
        total = signing + facilitating + report + readings
        print(
            f"{n:9,} {len(signed):7,} {signing:8.2f} {facilitating:13.2f} {ac:11.2f} {report * 1000:10.1f} "
            f"{readings * 1000:12.1f} {total / n * 1e6:12.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prosumers", type=int, default=1_000)
    parser.add_argument("--grid", default="1-MVLV-rural-all-0-sw")
    parser.add_argument("--chain", default="embedded", choices=("embedded", "hardhat", "anvil"))
    parser.add_argument("--slots", type=int, default=SLOTS_PER_DAY)
    parser.add_argument("--first-slot", type=int, default=0)
    parser.add_argument("--day", type=int, default=173)
    parser.add_argument("--python-side", help="comma-separated prosumer counts: the Python side of one slot, no chain")
    args = parser.parse_args()
    started_load = load_average()
    if args.python_side:
        python_side(args.grid, [int(n) for n in args.python_side.split(",")], args.day)
        print(f"load average {load_average()} on {os.cpu_count()} cores (at the start: {started_load})")
        return

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
            parts = [clock.figures[name].stretches[k] for name in CLEARING if name in clock.figures]
            print(
                f"  slot {outcome.index:2d}: {outcome.orders:,} orders, {outcome.clearing.traded_wh / 1000:,.1f} kWh "
                f"traded, {len(outcome.network.curtailments)} fills curtailed; gate closure → committed in "
                f"{sum(parts):.2f} s ({' + '.join(f'{s:.2f}' for s in parts)} s: read, network check, commit)",
                flush=True,
            )

        refusal = None
        day_started = time.perf_counter()
        try:
            run_market_day(ledger, config, on_slot=progress, clock=clock)
        except GridLedgerError as exc:
            refusal = str(exc)
        except KeyboardInterrupt:  # SIGINT: print what was measured until then
            refusal = "interrupted (SIGINT) before the day's end: the figures are of the slots settled so far"
        wall = time.perf_counter() - day_started
        node_rss = group_rss_kib(running.pid) if running else None

    slots = len(done)
    print()
    table(clock.figures, slots)
    print(f"wall time of the run: {wall:.1f} s")
    if refusal:
        print(f"STOPPED after {slots} settled slots: {refusal}")

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
        large = [k for k, outcome in enumerate(done) if outcome.orders >= LARGE_SLOT_ORDERS]
        if large:  # issue 11's item 5: a slot of 5,000 orders, gate closure to committed clearing ≤ 10 s
            print(
                f"slots of {LARGE_SLOT_ORDERS:,} orders or more: {len(large)}; gate closure → committed "
                + ", ".join(f"{done[k].orders:,} orders {clearing[k]:.2f} s" for k in large)
            )

    if slots and slots < SLOTS_PER_DAY:
        fixed = sum(f.seconds for n, f in clock.figures.items() if n not in PER_SLOT)
        per_slot = sum(f.seconds for n, f in clock.figures.items() if n in PER_SLOT) / slots
        print(
            f"EXTRAPOLATED, not measured: a whole day of {SLOTS_PER_DAY} slots ≈ {fixed:.0f} s once + "
            f"{SLOTS_PER_DAY} × {per_slot:.1f} s = {fixed + SLOTS_PER_DAY * per_slot:,.0f} s "
            f"(from {slots} slots {args.first_slot}–{args.first_slot + slots - 1}; the day's slots differ in orders)"
        )
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        f"CPU time of this process: {usage.ru_utime + usage.ru_stime:.1f} s (user {usage.ru_utime:.1f} s): "
        "on a shared machine, what the run itself needed"
    )
    peak = usage.ru_maxrss  # KiB on Linux
    line = f"peak resident memory: this process {peak / 1024 / 1024:.2f} GiB"
    if node_rss:
        line += f"; the {args.chain} node {node_rss[1] / 1024 / 1024:.2f} GiB (now {node_rss[0] / 1024 / 1024:.2f})"
    print(line)
    print(f"load average {load_average()} on {os.cpu_count()} cores (at the start: {started_load})")


if __name__ == "__main__":
    main()

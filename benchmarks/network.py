"""Network validation figures: an LV grid (SimBench 1-LV-semiurb5--0-sw) and a feeder of
thousands (1-MVLV-rural-all-0-sw: 5,479 buses, 5,373 loads under 92 MV/LV transformers).

    python benchmarks/network.py [--repeat 20] [--feeder-repeat 5] [--orders 5000] [--congested-lv-grids 8]
                                 [--skip-lv]

LV grid:
1. AC validation of a 96-slot day with power-grid-model's batch power flow (target < 20 ms).
2. Screening 1,000 candidate trades with linear sensitivities (target < 10 ms; computing the
   sensitivities is reported apart).
3. Network-aware clearing of 1,000 orders: the auction, then curtailment until pandapower's AC
   check passes, on a congested situation (target < 1 s).

Feeder:
4. AC validation of a 96-slot day in one power-grid-model batch (target ≤ 1 s).
5. pandapower's AC power flow of one slot, and the sensitivities of one element to every bus
   (read off the solved state) against what finite differences would cost.
6. A congested slot of ``--orders`` orders through ``facilitation.facilitate`` (the auction, the
   network check, curtailment, pandapower's AC confirmation, the report and its hash), as the
   facilitator runs it at gate closure (target ≤ 2 s).
Each figure is the median of its runs after one warm-up run; the machine's load is not
controlled, so compare figures taken in one run.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from gridledger.facilitation import BaselineRef, SlotInputs, facilitate
from gridledger.market.clearing import BookOrder, clear
from gridledger.market.orders import Order, RecordedOrder, Side
from gridledger.network.curtailment import NetworkClearing, TradeFill, clear_network_aware
from gridledger.network.model import NetworkModel
from gridledger.network.profiles import day_profiles, grid_baseline
from gridledger.network.sensitivity import compute, screen
from gridledger.network.validation import BatchEngine, Schedule, ac_check
from gridledger.units import SLOT_HOURS, SLOT_SECONDS

GRID = "1-LV-semiurb5--0-sw"
FEEDER = "1-MVLV-rural-all-0-sw"
DAY, NOON = 173, 52  # 21 June 2016, 13:00


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def lv(repeat: int) -> None:
    model = NetworkModel.load(GRID)
    engine = BatchEngine(model)
    buses = len(model.buses)
    p, q, g = grid_baseline(day=DAY, grid=GRID)
    day = Schedule(p, q, g, np.zeros((96, buses)))

    print(f"── {GRID} ({buses} buses)")
    ms = median_ms(lambda: engine.run(day), repeat)
    print(f"AC validation of a 96-slot day (power-grid-model batch): {ms:8.2f} ms   target < 20 ms")
    ms_ac = median_ms(lambda: ac_check(model, day.slot(NOON)), max(3, repeat // 4))
    print(f"  for comparison, one slot with pandapower runpp:          {ms_ac:8.2f} ms")

    rng = np.random.default_rng(7)
    low_voltage = np.array([model.bus_position[b] for b in model.buses if model.net.bus.at[b, "vn_kv"] < 1])
    sellers, buyers = rng.choice(low_voltage, 1000), rng.choice(low_voltage, 1000)
    power = rng.uniform(1_000, 30_000, 1000)
    noon = day.slot(NOON)

    def sensitivities() -> object:
        sens = compute(engine, noon)
        return np.asarray(sens.d_vm), np.asarray(sens.d_lines), np.asarray(sens.d_trafos)  # every bus's row

    ms_sens = median_ms(sensitivities, repeat)
    sens = compute(engine, noon)
    ms = median_ms(lambda: screen(sens, model.limits, seller_pos=sellers, buyer_pos=buyers, power_w=power), repeat)
    ok = screen(sens, model.limits, seller_pos=sellers, buyer_pos=buyers, power_w=power)
    print(
        f"screening 1,000 candidate trades with sensitivities:      {ms:8.2f} ms   target < 10 ms "
        f"({int(ok.sum())} pass alone)"
    )
    print(f"  computing the sensitivities (a power flow, then every bus's row, {sens.method}): {ms_sens:8.2f} ms")

    # 1,000 orders: 500 buyers near the transformer, 500 sellers at the feeder ends, whose trades
    # overload the feeder.
    random.seed(7)
    far = [int(model.buses[i]) for i in low_voltage[-40:]]
    near = [int(model.net.trafo.lv_bus.iloc[0])]
    orders = []
    for k in range(1000):
        side = Side.SELL if k % 2 else Side.BUY
        price = random.randint(80_000, 200_000) if side is Side.SELL else random.randint(150_000, 300_000)
        orders.append(BookOrder(k.to_bytes(32, "big"), side, random.randint(200, 2_000), price, (k,)))
    bus_of = {o.order_hash: (random.choice(far) if o.side is Side.SELL else near[0]) for o in orders}
    light = Schedule(p[NOON : NOON + 1] * 0.3, q[NOON : NOON + 1] * 0.3, g[NOON : NOON + 1], np.zeros((1, buses)))

    def network_aware() -> NetworkClearing:
        result = clear(orders)
        market = np.zeros(buses)
        fills = []
        for o in orders:
            filled = result.fills[o.order_hash]
            if filled:
                bus = bus_of[o.order_hash]
                fills.append(TradeFill(o.order_hash, "", o.side, bus, filled))
                market[model.bus_position[bus]] += (-4 if o.side is Side.SELL else 4) * filled
        schedule = Schedule(light.load_p_w, light.load_q_var, light.sgen_p_w, market[None, :])
        return clear_network_aware(model, engine, schedule, fills)

    outcome = network_aware()
    ms = median_ms(network_aware, max(3, repeat // 4))
    print(f"network-aware clearing of 1,000 orders:                   {ms:8.2f} ms   target < 1,000 ms")
    print(
        f"  {outcome.screening.max_line_loading_percent:.0f} % line loading unconstrained → "
        f"{outcome.check.max_line_loading_percent:.0f} % after curtailing "
        f"{outcome.curtailed_wh / 1000:.1f} kWh of {len(outcome.curtailments)} fills "
        f"(AC check passed: {outcome.check.passed})"
    )


def congested_slot(model: NetworkModel, engine: BatchEngine, orders: int, lv_grids: int) -> SlotInputs:
    """``orders`` prosumers of the feeder (its first loads) with one order each at 13:00 on a
    sunny day: households buy their net load or sell their PV surplus, and in ``lv_grids`` LV
    grids every third household discharges a 12–24 kW battery into the market instead (the
    congestion)."""
    rng = random.Random(11)
    profiles = day_profiles(count=orders, day=DAY, grid=FEEDER)
    feeders: dict[int, frozenset[int]] = {}
    for p in profiles:
        if p.bus not in feeders:
            members = engine.feeder_of(p.bus)
            feeders.update(dict.fromkeys(members, members))
    firsts = sorted({min(f) for f in feeders.values() if len(f) < len(model.buses) // 2})
    congested = set().union(*(feeders[b] for b in firsts[:lv_grids]))
    start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=DAY - 1)
    delivery = int(start.timestamp()) + NOON * SLOT_SECONDS
    recorded, bus_of = [], {}
    for k, p in enumerate(profiles):
        address = to_checksum_address(keccak(k.to_bytes(32, "big"))[-20:])
        bus_of[address] = p.bus
        net_wh = round(float(p.net_w[NOON]) * SLOT_HOURS)
        if p.bus in congested and k % 3 == 0:
            side, energy, price = Side.SELL, rng.randint(3_000, 6_000), rng.randint(80_000, 150_000)
        elif net_wh < 0:
            side, energy, price = Side.SELL, max(10, -net_wh), rng.randint(80_000, 190_000)
        else:
            side, energy, price = Side.BUY, max(10, net_wh), rng.randint(190_000, 300_000)
        order = Order(address, side, delivery, energy, price, 0, delivery)
        recorded.append(RecordedOrder(order, keccak(k.to_bytes(32, "big") + b"order"), (1_000 + k // 100, k % 100)))
    ref = BaselineRef.for_delivery(model, FEEDER, delivery, bus_of.values())
    return SlotInputs(delivery, ref, recorded, bus_of)


def feeder(repeat: int, orders: int, lv_grids: int) -> None:
    started = time.perf_counter()
    model = NetworkModel.load(FEEDER)
    loaded = time.perf_counter()
    engine = BatchEngine(model)
    built = time.perf_counter()
    buses = len(model.buses)
    print(
        f"── {FEEDER} ({buses:,} buses, {len(model.net.load):,} loads, {len(model.net.trafo)} transformers): "
        f"model loaded in {loaded - started:.1f} s, power-grid-model built in {built - loaded:.1f} s"
    )
    p, q, g = grid_baseline(day=DAY, grid=FEEDER)
    day = Schedule(p, q, g, np.zeros((96, buses)))
    ms = median_ms(lambda: engine.run(day), repeat)
    print(f"AC validation of a 96-slot day (power-grid-model batch):   {ms:8.1f} ms   target ≤ 1,000 ms")

    noon = day.slot(NOON)
    first = time.perf_counter()
    ac_check(model, noon)
    first_ms = (time.perf_counter() - first) * 1000
    ms_ac = median_ms(lambda: ac_check(model, noon), repeat)
    print(
        f"one slot with pandapower runpp (AC, Newton-Raphson):       {ms_ac:8.1f} ms   "
        f"(first call {first_ms:,.0f} ms: copies the net, numba compiles)"
    )
    ms_slot = median_ms(lambda: engine.solve_slot(noon), repeat)
    solved = engine.solve_slot(noon)
    line = int(np.argmax(solved.lines))
    vm_bus = int(np.argmin(solved.vm))

    def column() -> object:
        sens = compute(engine, noon, solved)
        return sens.d_lines[:, line], sens.d_vm[:, vm_bus]

    fresh = engine.solve_slot
    ms_col = median_ms(lambda: compute(engine, noon, fresh(noon)).d_lines[:, line], repeat)
    ms_col_only = median_ms(column, repeat)
    probes = Schedule(
        *(np.repeat(a, 100, axis=0) for a in (noon.load_p_w, noon.load_q_var, noon.sgen_p_w)),
        np.repeat(noon.market_p_w, 100, axis=0),
    )
    ms_probe = median_ms(lambda: engine.solve(probes), max(2, repeat // 2)) / 100
    print(
        f"sensitivities of the most loaded line and the lowest voltage to every bus: {ms_col:6.1f} ms "
        f"(one power flow {ms_slot:.1f} ms, then {ms_col_only:.1f} ms read off it; "
        f"finite differences: {buses + 1:,} power flows ≈ {ms_probe * (buses + 1) / 1000:.0f} s)"
    )

    inputs = congested_slot(model, engine, orders, lv_grids)
    outcome = facilitate(model, engine, inputs)
    ms = median_ms(lambda: facilitate(model, engine, inputs), max(2, repeat // 2))
    network = outcome.network
    schedule_ms = median_ms(lambda: ac_check(model, noon), 2)
    print(f"a congested slot of {len(inputs.recorded):,} orders through facilitate(): {ms:8.1f} ms   target ≤ 2,000 ms")
    worst = network.screening
    print(
        f"  {outcome.clearing.traded_wh / 1000:,.1f} kWh traded; unconstrained {len(worst.violations)} violations "
        f"(lines {worst.max_line_loading_percent:.0f} %, transformers {worst.max_trafo_loading_percent:.0f} %) → "
        f"lines {network.check.max_line_loading_percent:.0f} %, transformers "
        f"{network.check.max_trafo_loading_percent:.0f} % after curtailing {network.curtailed_wh / 1000:.1f} kWh "
        f"of {len(network.curtailments)} fills; confirmed by pandapower's AC power flow "
        f"(~{schedule_ms:.0f} ms of it): passed {network.check.passed}; report {len(outcome.report.canonical()):,} "
        f"bytes, hash {outcome.report.hash.hex()[:12]}…"
    )


def load_average() -> str:
    """The machine's 1-, 5- and 15-minute load averages: the figures depend on what else runs."""
    return " ".join(open("/proc/loadavg").read().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20, help="runs per LV figure")
    parser.add_argument("--feeder-repeat", type=int, default=5, help="runs per feeder figure")
    parser.add_argument("--orders", type=int, default=5_000, help="orders in the feeder's congested slot")
    parser.add_argument("--congested-lv-grids", type=int, default=8, help="LV grids whose batteries export")
    parser.add_argument("--skip-lv", action="store_true", help="only the feeder's figures")
    args = parser.parse_args()
    print(f"load average {load_average()} on {os.cpu_count()} cores")
    if not args.skip_lv:
        lv(args.repeat)
    feeder(args.feeder_repeat, args.orders, args.congested_lv_grids)
    print(f"load average {load_average()}")


if __name__ == "__main__":
    main()

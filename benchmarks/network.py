"""Network validation figures on SimBench 1-LV-semiurb5--0-sw.

    python benchmarks/network.py [--repeat 20]

1. AC validation of a 96-slot day with power-grid-model's batch power flow (target < 20 ms).
2. Screening 1,000 candidate trades with linear sensitivities (target < 10 ms; the one batch
   that computes the sensitivities is reported apart).
3. Network-aware clearing of 1,000 orders: the auction, then curtailment until pandapower's AC
   check passes, on a congested situation (target < 1 s).
Each figure is the median of ``--repeat`` runs after one warm-up run.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable

import numpy as np

from gridledger.market.clearing import BookOrder, clear
from gridledger.market.orders import Side
from gridledger.network.curtailment import NetworkClearing, TradeFill, clear_network_aware
from gridledger.network.model import NetworkModel
from gridledger.network.profiles import grid_baseline
from gridledger.network.sensitivity import compute, screen
from gridledger.network.validation import BatchEngine, Schedule, ac_check

GRID = "1-LV-semiurb5--0-sw"


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    repeat = parser.parse_args().repeat
    model = NetworkModel.load(GRID)
    engine = BatchEngine(model)
    buses = len(model.buses)
    p, q, g = grid_baseline(day=173, grid=GRID)
    day = Schedule(p, q, g, np.zeros((96, buses)))

    ms = median_ms(lambda: engine.run(day), repeat)
    print(f"AC validation of a 96-slot day (power-grid-model batch): {ms:8.2f} ms   target < 20 ms")
    ms_ac = median_ms(lambda: ac_check(model, day.slot(52)), max(3, repeat // 4))
    print(f"  for comparison, one slot with pandapower runpp:          {ms_ac:8.2f} ms")

    rng = np.random.default_rng(7)
    lv = np.array([model.bus_position[b] for b in model.buses if model.net.bus.at[b, "vn_kv"] < 1])
    sellers, buyers = rng.choice(lv, 1000), rng.choice(lv, 1000)
    power = rng.uniform(1_000, 30_000, 1000)
    noon = day.slot(52)
    ms_sens = median_ms(lambda: compute(engine, noon), repeat)
    sens = compute(engine, noon)
    ms = median_ms(lambda: screen(sens, model.limits, seller_pos=sellers, buyer_pos=buyers, power_w=power), repeat)
    ok = screen(sens, model.limits, seller_pos=sellers, buyer_pos=buyers, power_w=power)
    print(
        f"screening 1,000 candidate trades with sensitivities:      {ms:8.2f} ms   target < 10 ms "
        f"({int(ok.sum())} pass alone)"
    )
    print(f"  computing the sensitivities ({buses + 1} power flows, one batch): {ms_sens:8.2f} ms")

    # 1,000 orders: 500 buyers near the transformer, 500 sellers at the feeder ends, whose trades
    # overload the feeder.
    random.seed(7)
    far = [int(model.buses[i]) for i in lv[-40:]]
    near = [int(model.net.trafo.lv_bus.iloc[0])]
    orders = []
    for k in range(1000):
        side = Side.SELL if k % 2 else Side.BUY
        price = random.randint(80_000, 200_000) if side is Side.SELL else random.randint(150_000, 300_000)
        orders.append(BookOrder(k.to_bytes(32, "big"), side, random.randint(200, 2_000), price, (k,)))
    bus_of = {o.order_hash: (random.choice(far) if o.side is Side.SELL else near[0]) for o in orders}
    light = Schedule(p[52:53] * 0.3, q[52:53] * 0.3, g[52:53], np.zeros((1, buses)))

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


if __name__ == "__main__":
    main()

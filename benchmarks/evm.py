"""Speed of the embedded chain on GridLedger's hot path: revm against py-evm.

    python benchmarks/evm.py [--batches 10] [--prosumers 100] [--engines revm,py-evm] [--profile]

On a fresh embedded chain per engine, onboards ``--prosumers`` prosumers, pre-signs
``--batches`` batches of one order per prosumer (each batch for its own slot), then times, as
the service does it (web3, the Transactor, eth-tester): relaying the batches, and committing the
clearing of the first slot. Prints wall time, gas, gas per second and orders per second of each
step. ``--profile`` adds cProfile's heaviest functions of the revm run, to show where the
Python around revm spends its time. py-evm is a dev dependency; the machine is shared, so
compare engines within one run.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time
from collections.abc import Callable
from typing import Any

from eth_utils.crypto import keccak

from gridledger.chain.compile import compile_contracts
from gridledger.chain.connection import Roles, embedded_chain
from gridledger.chain.deploy import ensure_deployed
from gridledger.chain.ledger import Ledger
from gridledger.chain.reverts import RevertDecoder
from gridledger.chain.transactions import Transactor
from gridledger.config import Settings
from gridledger.market.book import clear_recorded
from gridledger.market.orders import Order, Side
from gridledger.sim.participants import make_prosumers

REPORT = {"network_report_hash": keccak(b"report"), "network_model_version": keccak(b"model")}


def open_ledger(engine: str) -> Ledger:
    settings = Settings(chain="embedded")
    chain = embedded_chain(settings.mnemonic, engine=engine)  # type: ignore[arg-type]
    build = compile_contracts()
    transactor = Transactor(chain, RevertDecoder(c.abi for c in build.contracts.values()))
    roles = Roles.from_settings(settings)
    deployment, _ = ensure_deployed(chain, transactor, roles, build, settings, record=False)
    return Ledger(chain, build, deployment, roles, transactor)


def timed(step: Callable[[], list[Any]]) -> tuple[float, int, int]:
    """Wall seconds, gas and transactions of ``step`` (which returns its receipts)."""
    started = time.perf_counter()
    receipts = step()
    return time.perf_counter() - started, sum(r["gasUsed"] for r in receipts), len(receipts)


def run(engine: str, *, batches: int, prosumers: int, profile: bool) -> dict[str, tuple[float, int, int]]:
    started = time.perf_counter()
    ledger = open_ledger(engine)
    accounts = make_prosumers(ledger, count=prosumers, deposit=10**10)
    setup = time.perf_counter() - started
    slot0 = (ledger.chain.now() // 900 + 8) * 900
    signed = [
        [
            ledger.sign(
                a, Order(a.address, Side.BUY if i % 2 else Side.SELL, slot0 + 900 * b, 500 + i, 200_000, b, slot0)
            )
            for i, a in enumerate(accounts)
        ]
        for b in range(batches)
    ]
    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()
    figures = {
        "relay": timed(lambda: [r for batch in signed for r in ledger.relay_orders(batch, batch_size=len(batch))])
    }

    def clear() -> list[Any]:
        fills, result = clear_recorded(ledger.recorded_orders(slot0))
        ledger.chain.move_time_to(slot0 - 300)
        return [ledger.commit_clearing(slot0, result.ledger_price, fills, **REPORT)]

    figures["clearing"] = timed(clear)
    if profiler:
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
        print(f"\n── cProfile of the {engine} run (relay and clearing), by own time ──")
        print("\n".join(out.getvalue().splitlines()[:60]))
    print(f"{engine}: onboarding {prosumers} prosumers (deploy, fund, register, mint, deposit) took {setup:.1f} s")
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=10, help="batches of one order per prosumer (default 10)")
    parser.add_argument("--prosumers", type=int, default=100, help="prosumers, and orders per batch (default 100)")
    parser.add_argument("--engines", default="revm,py-evm", help="comma-separated: revm, py-evm")
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions of the revm run")
    args = parser.parse_args()
    results = {
        engine: run(engine, batches=args.batches, prosumers=args.prosumers, profile=args.profile and engine == "revm")
        for engine in args.engines.split(",")
    }
    print(f"\n{'engine':<8} {'step':<34} {'wall s':>8} {'gas':>13} {'M gas/s':>8} {'tx/s':>7} {'orders/s':>9}")
    for engine, figures in results.items():
        for step, (seconds, gas, txs) in figures.items():
            orders = args.batches * args.prosumers if step == "relay" else args.prosumers
            label = f"{txs} relay txs of {args.prosumers} orders" if step == "relay" else f"clearing of {orders} orders"
            print(
                f"{engine:<8} {label:<34} {seconds:>8.2f} {gas:>13,} {gas / seconds / 1e6:>8.1f} "
                f"{txs / seconds:>7.1f} {orders / seconds:>9,.0f}"
            )


if __name__ == "__main__":
    main()

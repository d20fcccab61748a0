"""Speed of the embedded chain on GridLedger's hot path: revm against py-evm.

    python benchmarks/evm.py [--batches 10] [--prosumers 100] [--engines revm,py-evm] [--profile]

On a fresh embedded chain per engine, onboards ``--prosumers`` prosumers, pre-signs
``--batches`` batches of one order per prosumer (each batch for its own slot), then times, as
the service does it (web3, the Transactor, eth-tester): relaying the batches, and committing the
clearing of the first slot (which first reads the slot's recorded orders with eth_getLogs).
Prints wall time, gas, gas per second and orders per second of each step, and the time inside
the EVM itself (revm's executions, or py-evm's eth-tester backend calls). ``--profile`` adds
cProfile's heaviest functions of the revm run, to show where the Python around revm spends its
time. py-evm is a dev dependency; the machine is shared, so compare engines within one run.
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
    chain = embedded_chain(settings.mnemonic, engine=engine)
    build = compile_contracts()
    transactor = Transactor(chain, RevertDecoder(c.abi for c in build.contracts.values()))
    roles = Roles.from_settings(settings)
    deployment, _ = ensure_deployed(chain, transactor, roles, build, settings, record=False)
    return Ledger(chain, build, deployment, roles, transactor)


class EvmClock:
    """Seconds spent inside the EVM: revm's executions (WorldState.execute, journal reading
    included) or py-evm's (its eth-tester backend's transactions, calls and estimates)."""

    def __init__(self, engine: str) -> None:
        self.seconds = 0.0
        if engine == "revm":
            from gridledger.chain.embedded.state import WorldState

            self._wrap(WorldState, "execute")
        else:
            from eth_tester import PyEVMBackend

            for name in ("send_raw_transaction", "call", "estimate_gas"):
                self._wrap(PyEVMBackend, name)

    def _wrap(self, cls: type, name: str) -> None:
        inner = getattr(cls, name)

        def timed_method(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started

        setattr(cls, name, timed_method)


def timed(step: Callable[[], list[Any]], clock: EvmClock) -> tuple[float, int, int, float]:
    """Wall seconds, gas, transactions and EVM seconds of ``step`` (which returns its receipts)."""
    started, evm = time.perf_counter(), clock.seconds
    receipts = step()
    return time.perf_counter() - started, sum(r["gasUsed"] for r in receipts), len(receipts), clock.seconds - evm


def run(engine: str, *, batches: int, prosumers: int, profile: bool) -> dict[str, tuple[float, int, int, float]]:
    clock = EvmClock(engine)
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
        "relay": timed(
            lambda: [r for batch in signed for r in ledger.relay_orders(batch, batch_size=len(batch))], clock
        )
    }

    def clear() -> list[Any]:
        fills, result = clear_recorded(ledger.recorded_orders(slot0))
        ledger.chain.move_time_to(slot0 - 300)
        return [ledger.commit_clearing(slot0, result.ledger_price, fills, **REPORT)]

    figures["clearing"] = timed(clear, clock)  # reads the slot's recorded orders (eth_getLogs) and commits
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
    print(
        f"\n{'engine':<8} {'step':<34} {'wall s':>8} {'gas':>13} {'M gas/s':>8} {'tx/s':>7} {'orders/s':>9}"
        f" {'EVM s':>7} {'EVM M gas/s':>12}"
    )
    for engine, figures in results.items():
        for step, (seconds, gas, txs, evm) in figures.items():
            orders = args.batches * args.prosumers if step == "relay" else args.prosumers
            label = (
                f"{txs} relay txs of {args.prosumers} orders" if step == "relay" else f"read + clear {orders} orders"
            )
            print(
                f"{engine:<8} {label:<34} {seconds:>8.2f} {gas:>13,} {gas / seconds / 1e6:>8.1f} "
                f"{txs / seconds:>7.1f} {orders / seconds:>9,.0f} {evm:>7.2f} {2 * gas / evm / 1e6:>12.1f}"
            )
    print(
        "(M gas/s: the transactions' gas over the wall time through web3, as the service sends them; "
        "EVM M gas/s: twice that gas, since each transaction runs once as its preflight eth_call and "
        "once mined, over the time inside the EVM)"
    )


if __name__ == "__main__":
    main()

"""Orders per second recorded on the embedded chain and on a Hardhat node.

    python benchmarks/throughput.py [--orders 1000] [--batch 100] [--chains embedded,hardhat,anvil]

Signs ``--orders`` orders from 20 prosumers with eth-account (EIP-712), then relays them in
batches and reports the rate at which the ledger records them (wall time from the first
relay transaction to the last receipt). The devnet nodes are started and stopped here.
"""

from __future__ import annotations

import argparse
import socket
import time

from gridledger.chain import devnet
from gridledger.chain.ledger import Ledger
from gridledger.config import Settings
from gridledger.market.orders import Order, Side
from gridledger.sim.participants import make_prosumers

PROSUMERS = 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def measure(settings: Settings, orders: int, batch: int) -> None:
    ledger, _ = Ledger.open(settings, record=False)
    accounts = make_prosumers(ledger, count=PROSUMERS, deposit=10**12)
    slot = (ledger.chain.now() // 900 + 8) * 900
    started = time.perf_counter()
    signed = []
    for n in range(orders):
        account = accounts[n % PROSUMERS]
        side = Side.BUY if n % 2 else Side.SELL
        order = Order(account.address, side, slot, 100 + n % 50, 150_000, n // PROSUMERS, slot)
        signed.append(ledger.sign(account, order))
    signing = time.perf_counter() - started
    started = time.perf_counter()
    receipts = ledger.relay_orders(signed, batch_size=batch)
    relaying = time.perf_counter() - started
    gas = sum(r["gasUsed"] for r in receipts)
    assert ledger.slot_state(slot).open_orders == orders
    print(
        f"{settings.chain:<9} {orders} orders in {len(receipts)} batches of {batch}: "
        f"signed {orders / signing:,.0f}/s, recorded {orders / relaying:,.0f}/s on chain "
        f"({relaying:.2f} s, {gas / orders:,.0f} gas per order)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--chains", default="embedded,hardhat,anvil")
    args = parser.parse_args()
    for chain in args.chains.split(","):
        if chain == "embedded":
            measure(Settings(chain="embedded"), args.orders, args.batch)
            continue
        port = free_port()
        with devnet.running(chain, port):
            measure(Settings(chain=chain, devnet_port=port), args.orders, args.batch)


if __name__ == "__main__":
    main()

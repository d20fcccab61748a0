"""Gas per relayed order, per committed fill and per settled fill, on the embedded chain.

    python benchmarks/gas.py [--orders 100]

Targets (issue 2): ≤ 45,000 gas per relayed order in a batch of 100, ≤ 25,000 per committed
fill and ≤ 25,000 per settled fill; every batch under EIP-7825's 16,777,216 gas.

Three order batches are measured, because storage decides the cost: an order's ledger entry
shares a storage word with three other nonces of the same prosumer, so the first order of a
word pays for a fresh slot (22,100 gas) and the next three do not.
"""

from __future__ import annotations

import argparse

from eth_utils.crypto import keccak

from gridledger.chain.ledger import Ledger
from gridledger.chain.transactions import MAX_TX_GAS
from gridledger.config import Settings
from gridledger.market.book import clear_recorded
from gridledger.market.orders import Order, Side
from gridledger.sim.participants import make_prosumers

# A stand-in network report: its hash costs the same whatever the report says.
REPORT = {"network_report_hash": keccak(b"report"), "network_model_version": keccak(b"model")}
TARGETS = {"relay": 45_000, "commit": 25_000, "settle": 25_000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100, help="orders per batch (default 100)")
    n = parser.parse_args().orders

    ledger, _ = Ledger.open(Settings(), record=False)
    prosumers = make_prosumers(ledger, count=n, deposit=10**10)
    now = ledger.chain.now()
    slot0 = (now // 900 + 4) * 900
    nonces = {p.address: 0 for p in prosumers}

    def batch(slot: int, owners: list, *, price_of) -> list:
        signed = []
        for k, account in enumerate(owners):
            side = Side.BUY if k % 2 == 0 else Side.SELL
            order = Order(account.address, side, slot, 500 + k, price_of(side), nonces[account.address], slot)
            nonces[account.address] += 1
            signed.append(ledger.sign(account, order))
        return signed

    def report(label: str, gas: int, items: int, unit: str) -> None:
        print(f"{label:<52} {gas:>10,} gas {gas / items:>8,.0f} per {unit}")

    def relay(label: str, signed: list) -> None:
        gas = ledger.relay_orders(signed, batch_size=len(signed))[0]["gasUsed"]
        report(label, gas, len(signed), "order")
        figures.setdefault("relay", []).append(gas / len(signed))

    figures: dict[str, list[float]] = {}
    prices = {Side.BUY: 300_000, Side.SELL: 100_000}
    print(f"batches of {n} orders, half buy (escrowed) and half sell, embedded chain (revm, Prague gas rules)")
    print(f"every transaction below stays under EIP-7825's cap of {MAX_TX_GAS:,} gas")
    # Slot 0: every prosumer's first order (a fresh storage word each: the worst case).
    first = batch(slot0, prosumers, price_of=prices.get)
    relay(f"{n} prosumers, first order each (fresh word)", first)
    # Slot 1: the same prosumers' second orders (their words exist: the steady state).
    second = batch(slot0 + 900, prosumers, price_of=prices.get)
    relay(f"{n} prosumers, next order each (word exists)", second)
    # Slot 2: 25 prosumers × 4 consecutive nonces, as a wallet counting its nonces up does.
    few = prosumers[: max(1, n // 4)]
    for account in few:  # align to a word boundary
        nonces[account.address] = (nonces[account.address] + 3) // 4 * 4
    grouped = batch(slot0 + 1800, [a for a in few for _ in range(4)][:n], price_of=prices.get)
    relay(f"{len(few)} prosumers × 4 orders (one word per prosumer)", grouped)

    # Clear, meter and settle slot 1 (n fills, all crossing).
    slot = slot0 + 900
    recorded = ledger.recorded_orders(slot)
    fills, result = clear_recorded(recorded)
    filled = sum(1 for _, f in fills if f)
    ledger.chain.move_time_to(slot - 300)
    gas = ledger.commit_clearing(slot, result.ledger_price, fills, **REPORT)["gasUsed"]
    report(f"commit of {len(fills)} orders ({filled} filled)", gas, len(fills), "fill")
    figures["commit"] = [gas / len(fills)]
    ledger.chain.move_time_to(slot + 900)
    readings = {o.prosumer: (f if o.side is Side.BUY else -f) for o, f in fills}
    gas = ledger.post_meter_readings(slot, readings)["gasUsed"]
    report(f"meter readings of {len(readings)} meters", gas, len(readings), "reading")
    gas = ledger.settle(slot, fills)["gasUsed"]
    report(f"settlement of {len(fills)} fills", gas, len(fills), "fill")
    figures["settle"] = [gas / len(fills)]

    print()
    for key, target in TARGETS.items():
        worst = max(figures[key])
        verdict = "within" if worst <= target else "ABOVE"
        print(f"{key:<8} worst {worst:>8,.0f} gas per item, target ≤ {target:,}: {verdict} target")


if __name__ == "__main__":
    main()

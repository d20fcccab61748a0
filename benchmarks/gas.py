"""Gas per relayed order, committed fill, meter reading, settled fill and tariff slot, on the
embedded chain, in batches of 100 (issue 11's targets).

    python benchmarks/gas.py [--orders 100] [--tariff 0]

Targets: a meter reading ≤ 5,000 gas; a relayed order ≤ 15,000 in steady state and ≤ 30,000 for
a prosumer's first; a committed fill and a settled fill ≤ 10,000 each; every transaction under
EIP-7825's 16,777,216 gas.

What is measured: onboarding (``registerMany``, ``admit``, ``depositFor`` per participant); 100
prosumers (registered, with a deposit) relay their first order, then
their next one (steady state); four prosumers that never deposited relay a first sale (their
account word is new: the worst first order); the steady slot is cleared (all orders cross),
metered and settled; the DSO sets a day's tariff (96 slots). ``--tariff`` sets the steady
slot's network tariff (token base units per kWh) so that settlement pays network charges.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from eth_account import Account
from eth_utils.crypto import keccak

from gridledger.chain.ledger import Ledger
from gridledger.chain.transactions import MAX_TX_GAS
from gridledger.config import Settings
from gridledger.market.book import clear_recorded
from gridledger.market.orders import Order, Side
from gridledger.sim.participants import make_prosumers
from gridledger.units import SLOT_SECONDS, SLOTS_PER_DAY

# A stand-in network report: its hash costs the same whatever the report says.
REPORT = {"network_report_hash": keccak(b"report"), "network_model_version": keccak(b"model")}
TARGETS = {
    "relay, first order": 30_000,
    "relay, steady state": 15_000,
    "committed fill": 10_000,
    "meter reading": 5_000,
    "settled fill": 10_000,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100, help="orders per batch (default 100)")
    parser.add_argument("--tariff", type=int, default=0, help="the settled slot's network tariff per kWh")
    args = parser.parse_args()
    n = args.orders

    ledger, _ = Ledger.open(Settings(), record=False)
    onboarding = dict(ledger.tx.gas_used)
    prosumers = make_prosumers(ledger, count=n, deposit=10**10, gas_money=False)
    onboarded = {k: v - onboarding.get(k, 0) for k, v in ledger.tx.gas_used.items()}
    balancing = ledger.roles.balancing
    ledger.fund_gas(balancing.address, 10**18)
    ledger.mint(balancing.address, 10**12)
    ledger.deposit(balancing, 10**12)
    now = ledger.chain.now()
    slot0 = (now // SLOT_SECONDS + 8) * SLOT_SECONDS
    nonces = {p.address: 0 for p in prosumers}
    figures: dict[str, float] = {}

    def batch(slot: int, owners: list, *, side_of: Callable[[int], Side]) -> list:
        signed = []
        for k, account in enumerate(owners):
            side = side_of(k)
            price = 300_000 if side is Side.BUY else 100_000
            order = Order(account.address, side, slot, 500 + k, price, nonces[account.address], slot)
            nonces[account.address] += 1
            signed.append(ledger.sign(account, order))
        return signed

    def report(label: str, gas: int, items: int, unit: str, key: str | None = None) -> None:
        print(f"{label:<60} {gas:>11,} gas {gas / items:>8,.0f} per {unit}")
        if key:
            figures[key] = max(figures.get(key, 0.0), gas / items)

    def relay(label: str, signed: list, key: str) -> None:
        (receipt,) = ledger.relay_orders(signed, batch_size=len(signed))
        report(label, receipt["gasUsed"], len(signed), "order", key)

    alternate = lambda k: Side.BUY if k % 2 == 0 else Side.SELL  # noqa: E731
    print(f"batches of {n} orders, half buy (escrowed) and half sell, embedded chain (revm, Prague gas rules)")
    print(f"every transaction below stays under EIP-7825's cap of {MAX_TX_GAS:,} gas")
    report(f"onboarding {n} prosumers: registerMany", onboarded.get("registerMany", 0), n, "participant")
    report(f"onboarding {n} prosumers: admit", onboarded.get("admit", 0), n, "participant")
    report(
        f"onboarding {n} prosumers: depositFor (one pull of the sum)", onboarded.get("depositFor", 0), n, "participant"
    )
    relay(
        f"{n} prosumers, first order each (registry read once)",
        batch(slot0, prosumers, side_of=alternate),
        "relay, first order",
    )
    relay(
        f"{n} prosumers, next order each (steady state)",
        batch(slot0 + 900, prosumers, side_of=alternate),
        "relay, steady state",
    )
    strangers = [Account.from_key(keccak(text=f"gas benchmark stranger {k}")) for k in range(4)]
    for k, stranger in enumerate(strangers):
        ledger.register(stranger.address, meter_id=90_000 + k, bus=k, capacity_w=30_000)
    nonces.update({s.address: 0 for s in strangers})
    relay(
        "4 prosumers without a deposit, first order each (a sale)",
        batch(slot0 + 1800, strangers, side_of=lambda k: Side.SELL),
        "relay, first order",
    )

    gas = ledger.set_network_tariff(slot0 + 2700, [args.tariff or 20_000] * SLOTS_PER_DAY)["gasUsed"]
    report(f"network tariff of {SLOTS_PER_DAY} slots (one call)", gas, SLOTS_PER_DAY, "slot")
    if args.tariff:
        ledger.set_network_tariff(slot0 + 900, [args.tariff])

    # Clear, meter and settle slot 1 (n fills, all crossing).
    slot = slot0 + 900
    fills, result = clear_recorded(ledger.recorded_orders(slot))
    filled = sum(1 for _, f in fills if f)
    ledger.chain.move_time_to(slot - 300)
    receipts = ledger.commit_clearing(slot, result.ledger_price, fills, **REPORT)
    report(
        f"commit of {len(fills)} orders ({filled} filled), 1 transaction",
        receipts[0]["gasUsed"],
        len(fills),
        "fill",
        "committed fill",
    )
    ledger.chain.move_time_to(slot + 900)
    readings = {o.prosumer: (f if o.side is Side.BUY else -f) for o, f in fills}
    (receipt,) = ledger.post_meter_readings(slot, readings)
    report(f"meter readings of {len(readings)} meters", receipt["gasUsed"], len(readings), "reading", "meter reading")
    (receipt,) = ledger.settle(slot, fills)
    report(f"settlement of {len(fills)} fills", receipt["gasUsed"], len(fills), "fill", "settled fill")

    print()
    for key, target in TARGETS.items():
        worst = figures[key]
        verdict = "PASS" if worst <= target else "FAIL"
        print(f"{key:<22} worst {worst:>8,.0f} gas per item, target ≤ {target:>6,}: {verdict}")


if __name__ == "__main__":
    main()

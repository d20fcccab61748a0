"""A wallet's statement: its orders, trades, settlements and payments as one tidy CSV table, one
row per record, built from what the API serves (``/participants/{a}/orders``, ``…/trades``,
``/wallet/{a}/payments``).

Data dictionary (energy Wh, money token base units = 10^-6 GLEUR, times unix seconds):

- ``record``: order | trade | settlement | payment
- ``delivery_start``: the slot (empty for a deposit or withdrawal)
- ``order_hash``: the order the row belongs to (empty for a deposit or withdrawal)
- ``side``: buy | sell; ``status``: an order's status, a payment's kind
- ``energy_wh`` (an order's), ``price_per_kwh`` (its limit), ``filled_wh`` (a trade's)
- ``amount``: a trade at the clearing price; a settlement's net payment (positive to the
  wallet); a payment's signed change of the market balance
- ``imbalance_charge``, ``network_charge``, ``deviation_wh``: a settlement's parts
- ``block``: the block of a payment
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

COLUMNS = (
    "record",
    "delivery_start",
    "order_hash",
    "side",
    "status",
    "energy_wh",
    "price_per_kwh",
    "filled_wh",
    "amount",
    "imbalance_charge",
    "network_charge",
    "deviation_wh",
    "block",
)


def statement_rows(
    orders: list[dict[str, Any]], trades: list[dict[str, Any]], payments: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for o in orders:
        terms = o["order"]
        rows.append(
            {
                "record": "order",
                "delivery_start": terms["delivery_start"],
                "order_hash": o["order_hash"],
                "side": terms["side"],
                "status": o["status"],
                "energy_wh": terms["energy_wh"],
                "price_per_kwh": terms["price_per_kwh"],
                "filled_wh": o["filled_wh"],
            }
        )
    for t in trades:
        common = {"delivery_start": t["delivery_start"], "order_hash": t["order_hash"], "side": t["side"]}
        rows.append(
            common
            | {
                "record": "trade",
                "filled_wh": t["filled_wh"],
                "amount": t["amount"],
                "network_charge": t["network_charge"],
            }
        )
        if s := t.get("settlement"):
            rows.append(
                common
                | {
                    "record": "settlement",
                    "amount": s["payment"],
                    "imbalance_charge": s["imbalance_charge"],
                    "network_charge": s["network_charge"],
                    "deviation_wh": s["deviation_wh"],
                }
            )
    for p in payments:
        rows.append(
            {
                "record": "payment",
                "delivery_start": p["delivery_start"],
                "order_hash": p["order_hash"],
                "status": p["kind"],
                "amount": p["amount"],
                "block": p["block"],
            }
        )
    return rows


def write_statement(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, restval="")
        writer.writeheader()
        writer.writerows(rows)

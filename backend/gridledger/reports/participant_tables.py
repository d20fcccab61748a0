"""A participant's orders, trades and balances, as the facilitator's API returns them, for the terminal."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from gridledger.reports.format import tokens, utc
from gridledger.units import tokens as as_tokens


def orders_table(orders: list[dict[str, Any]]) -> Table:
    """``GET /participants/{account}/orders``: each order and its status."""
    table = Table("order", "slot (UTC)", "side", "Wh", "price/kWh", "status", "filled Wh")
    for o in orders:
        order = o["order"]
        table.add_row(
            o["order_hash"][:18] + "…",
            utc(order["delivery_start"]),
            order["side"],
            str(order["energy_wh"]),
            f"{as_tokens(order['price_per_kwh']):.4f}",
            o["status"] + (f" ({o['reason']})" if o.get("reason") else ""),
            str(o["filled_wh"]),
        )
    return table


def trades_table(trades: list[dict[str, Any]]) -> Table:
    """``GET /participants/{account}/trades``: each fill and its settlement."""
    table = Table("slot (UTC)", "side", "filled Wh", "amount", "settled: payment", "imbalance charge")
    for t in trades:
        s = t["settlement"] or {}
        table.add_row(
            utc(t["delivery_start"]),
            t["side"],
            str(t["filled_wh"]),
            tokens(t["amount"]),
            tokens(s["payment"]) if s else "not yet",
            tokens(s["imbalance_charge"]) if s else "",
        )
    return table


def balance_line(participant: dict[str, Any]) -> str:
    """``GET /participants/{account}``: wallet tokens, the market account and the next nonce."""
    market = participant["market_balance"]
    return (
        f"{participant['account']}: wallet {tokens(participant['token_balance'])} tokens; market available "
        f"{tokens(market['available'])}, locked {tokens(market['locked'])}; next nonce {participant['next_nonce']}"
    )

"""The reports' terminal rendering: the day's flexibility lines and a wallet's tables."""

from __future__ import annotations

import io

from rich.console import Console, RenderableType

from gridledger.reports.day_summary_table import flex_lines
from gridledger.reports.participant_tables import balance_line, orders_table, trades_table
from gridledger.sim.flex_day import FlexOutcome

NOON = 1_782_043_200  # 2026-06-21 12:00 UTC


def text(renderable: RenderableType) -> str:
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def test_the_day_without_a_flexibility_request_says_why() -> None:
    assert flex_lines(None) == [
        ("DSO flexibility request", "not in this run (it needs 16:30–19:00 among the slots run)")
    ]


def test_the_flexibility_request_in_two_lines_and_its_note() -> None:
    flex = FlexOutcome(
        request_id=3,
        congestion_bus=7,
        window_start=NOON + 5 * 3600,
        power_w=12_000,
        offers=4,
        awarded=2,
        awarded_power_w=10_000,
        ordered_wh=10_000,
        delivered_wh=9_500,
        availability_paid=1_500_000,
        utilisation_paid=2_250_000,
        refunded=250_000,
        escrow=4_000_000,
        note="one provider under-delivered",
    )
    assert flex_lines(flex) == [
        (
            "DSO flexibility request",
            "#3 secure, up, at bus 7 (the participants' weakest), 17:00–18:00, 12 kW; 4 offers, 2 awarded (10 kW)",
        ),
        (
            "flexibility delivered",
            "9.50 of 10.00 kWh ordered; paid 3.75 (availability 1.50, utilisation 2.25); "
            "DSO refunded 0.25 of 4.00 escrowed",
        ),
        ("", "one provider under-delivered"),
    ]


def test_a_wallets_orders_trades_and_balance() -> None:
    orders = [
        {
            "order_hash": "0x" + "ab" * 32,
            "order": {"delivery_start": NOON, "side": "buy", "energy_wh": 2000, "price_per_kwh": 280_000},
            "status": "rejected",
            "reason": "gate closed",
            "filled_wh": 0,
        }
    ]
    row = text(orders_table(orders)).splitlines()[3]
    assert [cell.strip() for cell in row.split("│")[1:-1]] == [
        "0xabababababababab…",
        "2026-06-21 12:00",
        "buy",
        "2000",
        "0.2800",
        "rejected (gate closed)",
        "0",
    ]
    trades = [
        {"delivery_start": NOON, "side": "sell", "filled_wh": 1500, "amount": 277_500, "settlement": None},
        {
            "delivery_start": NOON,
            "side": "sell",
            "filled_wh": 1500,
            "amount": 277_500,
            "settlement": {"payment": 270_000, "imbalance_charge": 7_500},
        },
    ]
    rendered = text(trades_table(trades))
    assert "not yet" in rendered and "0.27" in rendered and "0.01" in rendered
    participant = {
        "account": "0xA11CE",
        "token_balance": 5_000_000,
        "market_balance": {"available": 100_277_500, "locked": 560_000},
        "next_nonce": 2,
    }
    assert balance_line(participant) == (
        "0xA11CE: wallet 5.00 tokens; market available 100.28, locked 0.56; next nonce 2"
    )

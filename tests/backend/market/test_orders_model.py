"""Order validation in Python, before anything is signed."""

from __future__ import annotations

import pytest
from eth_account import Account

from gridledger.errors import OrderError
from gridledger.market.orders import Order, Side
from gridledger.wallet.signing import sign_order

ADDRESS = Account.create().address


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("delivery_start", 1_000, "multiple of 900"),
        ("energy_wh", 0, "energy_wh must be an integer from 1 to 4294967295"),
        ("price_per_kwh", -1, "price_per_kwh must be an integer from 0"),
        ("nonce", 2**64, "nonce must be an integer"),
        ("prosumer", "not-an-address", "not an Ethereum address"),
    ],
)
def test_out_of_range_fields_are_refused_with_the_allowed_range(field, value, match) -> None:
    fields = dict(
        prosumer=ADDRESS,
        side=Side.BUY,
        delivery_start=900 * 2_000_000,
        energy_wh=100,
        price_per_kwh=1,
        nonce=0,
        expiry=0,
    )
    fields[field] = value
    with pytest.raises(OrderError, match=match):
        Order(**fields)


def test_max_cost_rounds_up() -> None:
    order = Order(ADDRESS, Side.BUY, 900 * 2_000_000, 333, 1_001, 0, 0)
    assert order.max_cost == 334  # 333 Wh × 1,001 / 1,000 = 333.33 → 334


def test_a_key_cannot_sign_another_prosumers_order() -> None:
    order = Order(ADDRESS, Side.SELL, 900 * 2_000_000, 100, 1, 0, 0)
    with pytest.raises(OrderError, match="cannot sign an order of prosumer"):
        sign_order(Account.create(), order, chain_id=1, market_address=ADDRESS)

"""Shared fixtures: a fresh embedded chain with GridLedger deployed, and funded prosumers."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak

from gridledger.chain.compile import Build, compile_contracts
from gridledger.chain.connection import Roles, connect
from gridledger.chain.deploy import ensure_deployed
from gridledger.chain.ledger import Ledger
from gridledger.chain.reverts import RevertDecoder
from gridledger.chain.transactions import Transactor
from gridledger.config import Settings
from gridledger.market.orders import Order, Side
from gridledger.sim.participants import make_prosumers

DEPOSIT = 100_000_000  # 100 tokens
# Contract tests commit results with a stand-in network report: the contract stores and gates on
# the hash; the network validation that produces real reports is tested in tests/backend/network.
REPORT = {"network_report_hash": keccak(b"network report"), "network_model_version": keccak(b"network model")}


@pytest.fixture(scope="session")
def build() -> Build:
    return compile_contracts()


def open_ledger(build: Build, settings: Settings | None = None) -> Ledger:
    settings = settings or Settings(chain="embedded")
    chain = connect(settings)
    roles = Roles.from_settings(settings)
    transactor = Transactor(chain, RevertDecoder(c.abi for c in build.contracts.values()))
    deployment, _ = ensure_deployed(chain, transactor, roles, build, settings, record=False)
    return Ledger(chain, build, deployment, roles, transactor)


@pytest.fixture
def ledger(build: Build) -> Ledger:
    """A fresh embedded chain with the contracts deployed and the roles granted."""
    return open_ledger(build)


@pytest.fixture
def prosumers(ledger: Ledger) -> list[LocalAccount]:
    """Three registered prosumers with 100 tokens each in the market."""
    return make_prosumers(ledger, count=3, deposit=DEPOSIT)


@pytest.fixture
def next_slot(ledger: Ledger) -> Callable[[], int]:
    """Returns a delivery start whose gate is still open (an hour ahead of the chain's clock)."""

    def slot() -> int:
        return (ledger.chain.now() // 900 + 4) * 900

    return slot


def make_order(
    account: LocalAccount,
    side: Side,
    slot: int,
    energy_wh: int,
    price: int,
    nonce: int = 0,
    expiry: int | None = None,
) -> Order:
    return Order(account.address, side, slot, energy_wh, price, nonce, slot if expiry is None else expiry)


def market_total(ledger: Ledger, accounts: list[str], slots: list[int]) -> int:
    """Every base unit the market owes: accounts' available + locked, plus the pots of slots
    whose settlement is under way (negative while sellers are paid ahead of buyers)."""
    total = sum(sum(ledger.account_of(a)) for a in accounts)
    return total + sum(ledger.slot_state(s).pot for s in slots)


def flex_request_body(window_start: int, **changes: Any) -> dict[str, Any]:
    """The body of ``POST /flex/requests`` the tests' DSO posts: 10 kW up at bus 4 for an hour
    from ``window_start``, bids until an hour before; ``changes`` replace fields."""
    return {
        "service": "secure",
        "direction": "up",
        "baseline": "meter_before_after",
        "congestion_bus": 4,
        "power_w": 10_000,
        "window_start": window_start,
        "window_slots": 4,
        "bid_deadline": window_start - 3_600,
        "max_availability_price_per_kwh": 100_000,
        "max_utilisation_price_per_kwh": 300_000,
    } | changes


def free_port() -> int:
    """A TCP port nothing listens on now, for a node or a server a test starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])

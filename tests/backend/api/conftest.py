"""The facilitator's API on a fresh embedded chain, through FastAPI's TestClient (real HTTP
semantics, in process), with two registered and funded prosumers."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient

from gridledger.api.app import create_app
from gridledger.api.client import GridLedgerClient
from gridledger.chain.connection import FIRST_PROSUMER_INDEX, derive_account
from gridledger.chain.ledger import Ledger
from gridledger.config import Settings
from gridledger.network.model import NetworkModel
from gridledger.service.facilitator import Facilitator
from gridledger.service.relayer import RelayPolicy

DEPOSIT = 100_000_000  # 100 tokens
BALANCING_FLOAT = 1_000_000_000


@pytest.fixture(scope="session")
def semiurb5() -> NetworkModel:
    return NetworkModel.load("1-LV-semiurb5--0-sw")


@dataclass
class Api:
    """A running service, its HTTP client, and helpers that act on the chain's own thread."""

    service: Facilitator
    client: GridLedgerClient
    ledger: Ledger

    def chain(self, fn: Callable[[], Any]) -> Any:
        return self.service.on_chain(fn)

    def now(self) -> int:
        return int(self.chain(self.ledger.chain.now))

    def next_slot(self) -> int:
        return (self.now() // 900 + 4) * 900

    def move_time_to(self, timestamp: int) -> None:
        self.chain(lambda: (self.ledger.chain.move_time_to(timestamp), self.service.ctx.indexer.sync()))

    def relay_now(self) -> None:
        self.chain(lambda: (self.service.ctx.relayer.relay_due(force=True), self.service.ctx.indexer.sync()))

    def wait_for(self, order_hash: str, *statuses: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            status = self.client.get(f"/orders/{order_hash}")
            if status["status"] in statuses or time.monotonic() > deadline:
                assert status["status"] in statuses, status
                return status
            time.sleep(0.05)

    def eventually(self, check: Callable[[], Any], timeout: float = 30) -> Any:
        """Polls ``check`` until it returns something truthy (the chain thread works in the background)."""
        deadline = time.monotonic() + timeout
        while not (result := check()):
            assert time.monotonic() < deadline, "condition not reached in time"
            time.sleep(0.05)
        return result

    def register(self, account: LocalAccount, *, meter_id: int, bus: int, capacity_w: int = 20_000) -> Any:
        body = {"account": account.address, "meter_id": meter_id, "bus": bus, "capacity_w": capacity_w}
        return self.client.request("POST", "/participants", body=body, signer=self.ledger.roles.facilitator)

    def fund(self, account: LocalAccount, amount: int = DEPOSIT) -> None:
        def act() -> None:
            self.ledger.fund_gas(account.address, 10**18)
            self.ledger.mint(account.address, amount)
            self.ledger.deposit(account, amount)
            self.service.ctx.indexer.sync()

        self.chain(act)

    def count(self, table: str) -> int:
        return int(self.service.ctx.db.execute(f"select count(*) from {table}").fetchone()[0])


@contextmanager
def start_api(ledger: Ledger, database: str, model: NetworkModel, policy: RelayPolicy) -> Iterator[Api]:
    settings = Settings(chain="embedded", database=database, network_model=model.source)
    service = Facilitator(ledger, settings, model=model, policy=policy)
    with TestClient(create_app(service), raise_server_exceptions=False) as http:
        yield Api(service, GridLedgerClient(http=http), ledger)


@pytest.fixture
def policy() -> RelayPolicy:
    return RelayPolicy(batch_size=100, max_wait_s=0.05)


@pytest.fixture
def api(ledger: Ledger, tmp_path, semiurb5: NetworkModel, policy: RelayPolicy) -> Iterator[Api]:
    with start_api(ledger, str(tmp_path / "facilitator.sqlite"), semiurb5, policy) as running:
        yield running


@pytest.fixture
def wallets(api: Api) -> list[LocalAccount]:
    """Alice (bus 3) and Bob (bus 4), registered over the API, 100 tokens each in the market;
    the balancing account funded."""
    accounts = [derive_account(Settings().mnemonic, FIRST_PROSUMER_INDEX + i) for i in range(2)]
    for i, account in enumerate(accounts):
        api.register(account, meter_id=100 + i, bus=3 + i)
        api.fund(account)
    api.fund(api.ledger.roles.balancing, BALANCING_FLOAT)
    return accounts


@pytest.fixture
def stranger() -> LocalAccount:
    """A key that is not registered anywhere."""
    return derive_account(Settings().mnemonic, FIRST_PROSUMER_INDEX + 50)

"""`gridledger serve` as its own process on an anvil node the test starts: the start-up the
process-level tests share (the wallet commands over HTTP, the wallet's money commands, the
dashboard in a browser).

Anvil rather than the embedded chain: the test funds wallets and moves the chain's clock from
outside the server's process, which only a node allows."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account.signers.local import LocalAccount
from tests.conftest import free_port

from gridledger.api.client import GridLedgerClient
from gridledger.chain import deploy, devnet
from gridledger.chain.connection import FIRST_PROSUMER_INDEX, Roles, derive_account
from gridledger.chain.ledger import Ledger
from gridledger.config import Settings

GRIDLEDGER = str(Path(sys.executable).parent / "gridledger")
DEPOSIT = 100_000_000  # 100 tokens


@dataclass
class Served:
    """A running `gridledger serve`: its URL, the environment its commands need, an HTTP client,
    the ledger (opened from the server's deployment record) and the operating roles."""

    url: str
    env: dict[str, str]
    api: GridLedgerClient
    ledger: Ledger
    roles: Roles
    settings: Settings

    def prosumers(self, count: int) -> list[LocalAccount]:
        return [derive_account(self.settings.mnemonic, FIRST_PROSUMER_INDEX + i) for i in range(count)]

    def register(self, accounts: list[LocalAccount], *, first_bus: int = 3, capacity_w: int = 20_000) -> None:
        """Registers each account (meter 1, 2, …; buses ``first_bus``, ``first_bus`` + 1, …) through
        the API, signed by the facilitator."""
        for i, account in enumerate(accounts):
            body = {"account": account.address, "meter_id": 1 + i, "bus": first_bus + i, "capacity_w": capacity_w}
            self.api.request("POST", "/participants", body=body, signer=self.roles.facilitator)

    def fund(self, accounts: list[LocalAccount], amount: int = DEPOSIT) -> None:
        """Gas and ``amount`` tokens for each account, deposited into the market by the account's own
        transaction; the balancing account gets ten times as much. Returns once the service has
        indexed the last deposit."""
        for account, units in [*((a, amount) for a in accounts), (self.roles.balancing, 10 * amount)]:
            self.ledger.fund_gas(account.address, 10**18)
            self.ledger.mint(account.address, units)
            self.ledger.deposit(account, units)
        last = accounts[-1].address
        eventually(lambda: self.api.get(f"/participants/{last}")["market_balance"]["available"] >= amount)


def wait_until_up(url: str, server: subprocess.Popen[str], timeout: float = 180, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            said = log.read_text() if log is not None else server.communicate()[0]
            raise AssertionError(f"gridledger serve exited: {said}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError("gridledger serve did not answer in time")


def eventually(check: Callable[[], Any], timeout: float = 60) -> Any:
    """Polls ``check`` until it returns something truthy, and returns that."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)
    return result


@contextmanager
def serving(tmp: Path, env: dict[str, str] | None = None) -> Iterator[Served]:
    """anvil on a free port and `gridledger serve` on it (its database and deployment record in
    ``tmp``; ``env`` adds to the server's environment), stopped when the block ends."""
    node_port, api_port = free_port(), free_port()
    url = f"http://127.0.0.1:{api_port}"
    full_env = (
        os.environ
        | {
            "GRIDLEDGER_CHAIN": "anvil",
            "GRIDLEDGER_DEVNET_PORT": str(node_port),
            "GRIDLEDGER_DATABASE": str(tmp / "facilitator.sqlite"),
            "GRIDLEDGER_DEPLOYMENTS_DIR": str(tmp),
            "GRIDLEDGER_API_PORT": str(api_port),
            "GRIDLEDGER_API_URL": url,
        }
        | (env or {})
    )
    settings = Settings(chain="anvil", devnet_port=node_port)
    with pytest.MonkeyPatch.context() as mp, devnet.running("anvil", node_port):
        mp.setattr(deploy, "DEPLOYMENTS_DIR", tmp)  # the server's deployment record, found by Ledger.open
        log = tmp / "serve.log"  # a file, not a pipe nobody reads: a full pipe would stall the server
        with log.open("w") as out:
            server = subprocess.Popen(
                [GRIDLEDGER, "serve"], env=full_env, stdout=out, stderr=subprocess.STDOUT, text=True
            )
        try:
            wait_until_up(url, server, log=log)
            ledger, deployed = Ledger.open(settings)
            assert not deployed  # the server's deployment, found through its record
            yield Served(url, full_env, GridLedgerClient(url), ledger, Roles.from_settings(settings), settings)
        finally:
            server.terminate()
            server.wait(timeout=60)

"""End to end over real HTTP: the test starts an anvil node and `gridledger serve` as its own
process, two wallets trade a slot with the `gridledger wallet` commands, the operating parties
clear, meter and settle through the API, and balances agree on-chain and in the API."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from tests.integration.test_devnet import free_port

from gridledger.api.client import GridLedgerClient
from gridledger.chain import deploy, devnet
from gridledger.chain.connection import FIRST_PROSUMER_INDEX, Roles, derive_account
from gridledger.chain.ledger import Ledger
from gridledger.config import Settings
from gridledger.wallet import keystore

pytestmark = pytest.mark.devnet

DEPOSIT = 100_000_000
PASSWORD = "correct horse battery"
GRIDLEDGER = str(Path(sys.executable).parent / "gridledger")


def wait_until_up(url: str, server: subprocess.Popen[str], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"gridledger serve exited: {server.communicate()[0]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError("gridledger serve did not answer in time")


def test_two_wallets_trade_a_slot_over_http_on_anvil(tmp_path, monkeypatch) -> None:
    node_port, api_port = free_port(), free_port()
    url = f"http://127.0.0.1:{api_port}"
    env = os.environ | {
        "GRIDLEDGER_CHAIN": "anvil",
        "GRIDLEDGER_DEVNET_PORT": str(node_port),
        "GRIDLEDGER_DATABASE": str(tmp_path / "facilitator.sqlite"),
        "GRIDLEDGER_DEPLOYMENTS_DIR": str(tmp_path),
        "GRIDLEDGER_API_PORT": str(api_port),
        "GRIDLEDGER_API_URL": url,
        "GRIDLEDGER_KEYSTORE_DIR": str(tmp_path / "keys"),
        "GRIDLEDGER_WALLET_PASSWORD": PASSWORD,
    }
    monkeypatch.setattr(deploy, "DEPLOYMENTS_DIR", tmp_path)
    settings = Settings(chain="anvil", devnet_port=node_port)
    alice, bob = (derive_account(settings.mnemonic, FIRST_PROSUMER_INDEX + i) for i in range(2))
    for name, account in (("alice", alice), ("bob", bob)):
        keystore.create(name, PASSWORD, directory=tmp_path / "keys", private_key=account.key.hex())

    def wallet(*args: str) -> str:
        done = subprocess.run([GRIDLEDGER, "wallet", *args], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    with devnet.running("anvil", node_port):
        server = subprocess.Popen(
            [GRIDLEDGER, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        try:
            wait_until_up(url, server)
            ledger, deployed = Ledger.open(settings)
            assert not deployed  # the server's deployment, found through its record
            roles = Roles.from_settings(settings)
            api = GridLedgerClient(url)

            for i, account in enumerate((alice, bob)):
                body = {"account": account.address, "meter_id": 1 + i, "bus": 3 + i, "capacity_w": 20_000}
                api.request("POST", "/participants", body=body, signer=roles.facilitator)
            for account, amount in ((alice, DEPOSIT), (bob, DEPOSIT), (roles.balancing, 10 * DEPOSIT)):
                ledger.fund_gas(account.address, 10**18)
                ledger.mint(account.address, amount)
                ledger.deposit(account, amount)
            _eventually(lambda: api.get(f"/participants/{bob.address}")["market_balance"]["available"] == DEPOSIT)

            slot = (ledger.chain.now() // 900 + 4) * 900
            sold = wallet(
                "order", "alice", "--side", "sell", "--slot", str(slot), "--energy-wh", "1500", "--price", "0.09"
            )
            bought = wallet(
                "order", "bob", "--side", "buy", "--slot", str(slot), "--energy-wh", "2000", "--price", "0.28"
            )
            hashes = [out.split()[1] for out in (sold, bought)]
            assert all(out.strip().endswith("accepted") for out in (sold, bought))
            for h in hashes:
                _eventually(lambda h=h: api.get(f"/orders/{h}")["status"] == "on_chain")
            assert "on_chain" in wallet("orders", "bob")

            ledger.chain.move_time_to(slot - 300)
            cleared = api.request("POST", f"/slots/{slot}/clearing", signer=roles.facilitator)
            assert (cleared["clearing_price_per_kwh"], cleared["traded_wh"]) == (185_000, 1_500)
            ledger.chain.move_time_to(slot + 900)
            readings = [{"account": alice.address, "net_wh": -1_500}, {"account": bob.address, "net_wh": 1_500}]
            api.request("POST", f"/slots/{slot}/meter-readings", body={"readings": readings}, signer=roles.meter)
            settled = api.request("POST", f"/slots/{slot}/settlement", signer=roles.facilitator)
            assert settled["net_payments"] == {alice.address: 277_500, bob.address: -277_500}

            # 1.5 kWh at 0.185 = 0.2775 tokens from Bob to Alice, on-chain and in the API alike.
            assert ledger.account_of(alice.address) == (DEPOSIT + 277_500, 0)
            assert ledger.account_of(bob.address) == (DEPOSIT - 277_500, 0)
            for account in (alice, bob):
                served = api.get(f"/participants/{account.address}")["market_balance"]
                assert (served["available"], served["locked"]) == ledger.account_of(account.address)
            assert "market available 100.28" in wallet("balance", "alice")
            trades = wallet("trades", "bob")
            assert "buy" in trades and "1500" in trades
            assert api.get(f"/slots/{slot}/network-report")["report_hash"] == cleared["network_report_hash"]
        finally:
            server.terminate()
            server.wait(timeout=60)


def _eventually(check, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)

"""End to end over real HTTP: the test starts an anvil node and `gridledger serve` as its own
process, two wallets trade a slot with the `gridledger wallet` commands, the operating parties
clear, meter and settle through the API, and balances agree on-chain and in the API."""

from __future__ import annotations

import subprocess

import pytest
from tests.integration.serving import DEPOSIT, GRIDLEDGER, eventually, serving

from gridledger.wallet import keystore

pytestmark = pytest.mark.devnet

PASSWORD = "correct horse battery"


def test_two_wallets_trade_a_slot_over_http_on_anvil(tmp_path) -> None:
    keys = tmp_path / "keys"
    with serving(tmp_path, {"GRIDLEDGER_KEYSTORE_DIR": str(keys), "GRIDLEDGER_WALLET_PASSWORD": PASSWORD}) as served:
        api, ledger, roles = served.api, served.ledger, served.roles
        alice, bob = served.prosumers(2)
        for name, account in (("alice", alice), ("bob", bob)):
            keystore.create(name, PASSWORD, directory=keys, private_key=account.key.hex())

        def wallet(*args: str) -> str:
            done = subprocess.run(
                [GRIDLEDGER, "wallet", *args], env=served.env, capture_output=True, text=True, timeout=120
            )
            assert done.returncode == 0, done.stdout + done.stderr
            return done.stdout

        served.register([alice, bob])
        served.fund([alice, bob])

        slot = (ledger.chain.now() // 900 + 4) * 900
        sold = wallet("order", "alice", "--side", "sell", "--slot", str(slot), "--energy-wh", "1500", "--price", "0.09")
        bought = wallet("order", "bob", "--side", "buy", "--slot", str(slot), "--energy-wh", "2000", "--price", "0.28")
        hashes = [out.split()[1] for out in (sold, bought)]
        assert all(out.strip().endswith("accepted") for out in (sold, bought))
        for h in hashes:
            eventually(lambda h=h: api.get(f"/orders/{h}")["status"] == "on_chain")
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
            balance = api.get(f"/participants/{account.address}")["market_balance"]
            assert (balance["available"], balance["locked"]) == ledger.account_of(account.address)
        assert "market available 100.28" in wallet("balance", "alice")
        trades = wallet("trades", "bob")
        assert "buy" in trades and "1500" in trades
        assert api.get(f"/slots/{slot}/network-report")["report_hash"] == cleared["network_report_hash"]

"""The wallet's money commands as a user runs them: `gridledger wallet deposit`, `withdraw` and
`statement --csv` as processes against `gridledger serve` on anvil. The wallet sends no
transaction of its own (it has no gas): it signs a permit and a withdrawal that the facilitator
relays. Balances are read from the chain before and after; the statement's rows from its file."""

from __future__ import annotations

import csv
import subprocess

import pytest
from tests.integration.serving import GRIDLEDGER, eventually, serving

from gridledger.wallet import keystore

pytestmark = pytest.mark.devnet

PASSWORD = "correct horse battery"
MINTED = 50_000_000  # 50 tokens in the wallet, none in the market


def test_deposit_withdraw_and_statement_from_the_command_line(tmp_path) -> None:
    keys = tmp_path / "keys"
    with serving(tmp_path, {"GRIDLEDGER_KEYSTORE_DIR": str(keys), "GRIDLEDGER_WALLET_PASSWORD": PASSWORD}) as served:
        ledger, api = served.ledger, served.api
        [alice] = served.prosumers(1)
        keystore.create("alice", PASSWORD, directory=keys, private_key=alice.key.hex())
        served.register([alice])
        ledger.mint(alice.address, MINTED)
        assert (ledger.token_balance(alice.address), ledger.account_of(alice.address)) == (MINTED, (0, 0))

        def wallet(*args: str, ok: bool = True) -> str:
            done = subprocess.run(
                [GRIDLEDGER, "wallet", *args], env=served.env, capture_output=True, text=True, timeout=120
            )
            assert (done.returncode == 0) == ok, done.stdout + done.stderr
            return done.stdout + done.stderr

        deposited = wallet("deposit", "alice", "25")
        assert "deposited 25.00 GLEUR" in deposited
        assert "market balance 25.00 available, 0.00 locked; wallet 25.00 GLEUR" in deposited
        assert (ledger.token_balance(alice.address), ledger.account_of(alice.address)) == (25_000_000, (25_000_000, 0))
        tx = deposited.split("(tx ")[1].split(")")[0]
        receipt = ledger.chain.w3.eth.get_transaction_receipt(tx)
        assert receipt["status"] == 1 and receipt["from"] == served.roles.facilitator.address  # relayed, mined

        # More than the market holds: refused with the contract's reason, nothing moved.
        refused = wallet("withdraw", "alice", "30", ok=False)
        assert "25000000 base units available in the market but 30000000 are needed" in refused, refused
        assert ledger.account_of(alice.address) == (25_000_000, 0)

        withdrew = wallet("withdraw", "alice", "10.5")
        assert "withdrew 10.50 GLEUR" in withdrew and "market balance 14.50 available" in withdrew
        assert (ledger.token_balance(alice.address), ledger.account_of(alice.address)) == (35_500_000, (14_500_000, 0))

        # An order, so that the statement has every kind of row it can have before a trade.
        slot = (ledger.chain.now() // 900 + 4) * 900
        placed = wallet(
            "order", "alice", "--side", "sell", "--slot", str(slot), "--energy-wh", "1200", "--price", "0.1"
        )
        order_hash = placed.split()[1]
        eventually(lambda: api.get(f"/orders/{order_hash}")["status"] == "on_chain")
        eventually(lambda: len(api.get(f"/wallet/{alice.address}/payments")) == 2)

        path = tmp_path / "alice.csv"
        said = wallet("statement", "alice", "--csv", str(path))
        assert f"statement of {alice.address}: 1 order, 0 trades, 0 settlements, 2 payments" in said
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
        assert [(r["record"], r["status"], r["amount"]) for r in rows if r["record"] == "payment"] == [
            ("payment", "deposit", "25000000"),
            ("payment", "withdrawal", "-10500000"),
        ]
        [order] = [r for r in rows if r["record"] == "order"]
        assert (order["order_hash"], order["side"], order["status"]) == (order_hash, "sell", "on_chain")
        assert (order["delivery_start"], order["energy_wh"], order["price_per_kwh"]) == (str(slot), "1200", "100000")

"""Deposits and withdrawals a wallet signs and the facilitator relays (the wallet sends no
transaction and holds no gas): balances and events; expired, replayed and wrongly signed ones
refused by their custom errors with nothing changed; the statement of orders, trades,
settlements and payments."""

from __future__ import annotations

import csv

import pytest
from eth_account import Account
from tests.backend.api.conftest import DEPOSIT

from gridledger.api.client import ApiError
from gridledger.market.orders import Side
from gridledger.reports.statement import statement_rows, write_statement
from gridledger.wallet.funds import WITHDRAWAL_TYPES, sign_permit, sign_withdrawal, withdrawal_message

TOKENS = 50_000_000


def refused(call, status: int) -> dict:
    with pytest.raises(ApiError) as caught:
        call()
    assert caught.value.status == status, caught.value.body
    return caught.value.body


def without_gas(api, account) -> None:
    """Tokens in the wallet, and no ether at all: it could not send a transaction itself."""
    api.chain(lambda: api.ledger.mint(account.address, TOKENS))
    assert api.chain(lambda: api.ledger.chain.w3.eth.get_balance(account.address)) == 0


def test_a_permit_deposit_and_a_signed_withdrawal_move_money_without_the_wallets_gas(api, stranger) -> None:
    without_gas(api, stranger)
    deposited = api.client.deposit(stranger, 30_000_000)
    assert deposited["market_balance"] == {"available": 30_000_000, "locked": 0}
    assert deposited["token_balance"] == TOKENS - 30_000_000 and deposited["permit_nonce"] == 1
    receipt = api.chain(lambda: api.ledger.chain.w3.eth.get_transaction_receipt(deposited["tx_hash"]))
    (event,) = api.ledger.market.events.Deposited().process_receipt(receipt)
    assert (event["args"]["account"], event["args"]["amount"]) == (stranger.address, 30_000_000)
    assert receipt["from"] == api.ledger.roles.facilitator.address  # the facilitator paid the gas

    withdrawn = api.client.withdraw(stranger, 12_000_000)
    assert withdrawn["market_balance"] == {"available": 18_000_000, "locked": 0}
    assert withdrawn["withdrawal_nonce"] == 1
    assert api.chain(lambda: api.ledger.token_balance(stranger.address)) == TOKENS - 18_000_000
    assert api.chain(lambda: api.ledger.account_of(stranger.address)) == (18_000_000, 0)
    payments = api.client.get(f"/wallet/{stranger.address}/payments")
    assert [(p["kind"], p["amount"]) for p in payments] == [("deposit", 30_000_000), ("withdrawal", -12_000_000)]


def test_expired_replayed_and_foreign_signatures_are_refused_and_change_nothing(api, stranger, wallets) -> None:
    alice, _ = wallets
    without_gas(api, stranger)
    api.client.deposit(stranger, 30_000_000)
    wallet = api.client.get(f"/wallet/{stranger.address}")
    domain = api.client.domain
    now = api.now()

    def withdrawal(signer, *, amount=1_000_000, nonce=0, deadline=now + 3_600, owner=stranger.address) -> dict:
        if signer is stranger:
            signature = sign_withdrawal(
                signer,
                chain_id=domain["chainId"],
                market_address=domain["verifyingContract"],
                amount=amount,
                nonce=nonce,
                deadline=deadline,
            )
        else:  # another key signs the stranger's withdrawal, word for word
            message = withdrawal_message(owner, amount=amount, nonce=nonce, deadline=deadline)
            signature = bytes(Account.sign_typed_data(signer.key, domain, WITHDRAWAL_TYPES, message).signature)
        return {
            "owner": owner,
            "amount": amount,
            "nonce": nonce,
            "deadline": deadline,
            "signature": "0x" + signature.hex(),
        }

    def post(path: str, body: dict) -> dict:
        return api.client.request("POST", path, body=body)

    before = (
        api.chain(lambda: api.ledger.account_of(stranger.address)),
        api.chain(lambda: api.ledger.token_balance(stranger.address)),
    )

    expired = refused(lambda: post("/wallet/withdrawals", withdrawal(stranger, deadline=now - 1)), 422)
    assert expired["error"] == "WithdrawalExpired" and "sign a new one" in expired["detail"]

    foreign = refused(lambda: post("/wallet/withdrawals", withdrawal(alice)), 401)
    assert foreign["error"] == "WithdrawalSignatureInvalid" and alice.address in foreign["detail"]

    too_much = refused(lambda: post("/wallet/withdrawals", withdrawal(stranger, amount=30_000_001)), 422)
    assert too_much["error"] == "InsufficientBalance"

    body = withdrawal(stranger)
    assert post("/wallet/withdrawals", body)["market_balance"]["available"] == 29_000_000
    replay = refused(lambda: post("/wallet/withdrawals", body), 409)
    assert replay["error"] == "WithdrawalNonceUsed" and "next unused one is 1" in replay["detail"]

    # A permit counts once: its token nonce is spent, so the replay recovers to another signer.
    deadline = now + 3_600
    permit = sign_permit(
        stranger,
        domain=wallet["token_eip712_domain"],
        spender=wallet["market"],
        amount=5_000_000,
        nonce=wallet["permit_nonce"],
        deadline=deadline,
    )
    deposit = {"owner": stranger.address, "amount": 5_000_000, "deadline": deadline, "signature": "0x" + permit.hex()}
    assert post("/wallet/deposits", deposit)["market_balance"]["available"] == 34_000_000
    again = refused(lambda: post("/wallet/deposits", deposit), 401)
    assert again["error"] == "ERC2612InvalidSigner"
    late = dict(deposit, deadline=now - 1)
    assert refused(lambda: post("/wallet/deposits", late), 422)["error"] == "ERC2612ExpiredSignature"

    # Only the two good ones moved money.
    (available, locked), held = before
    assert api.chain(lambda: api.ledger.account_of(stranger.address)) == (available - 1_000_000 + 5_000_000, locked)
    assert api.chain(lambda: api.ledger.token_balance(stranger.address)) == held + 1_000_000 - 5_000_000


def test_the_statement_lists_orders_trades_settlements_and_payments(api, wallets, tmp_path) -> None:
    alice, bob = wallets
    slot = api.next_slot()
    sell = api.client.place(alice, side=Side.SELL, delivery_start=slot, energy_wh=1_000, price_per_kwh=100_000)
    buy = api.client.place(bob, side=Side.BUY, delivery_start=slot, energy_wh=1_000, price_per_kwh=300_000)
    api.wait_for(sell["order_hash"], "on_chain")
    api.wait_for(buy["order_hash"], "on_chain")
    api.move_time_to(slot - 300)
    api.service.clock.tick(api.now())
    api.move_time_to(slot + 900)
    body = {"readings": [{"account": alice.address, "net_wh": -1_000}, {"account": bob.address, "net_wh": 1_000}]}
    api.client.request("POST", f"/slots/{slot}/meter-readings", body=body, signer=api.ledger.roles.meter)
    assert api.service.clock.tick(api.now()).settled == [slot]

    address = bob.address
    rows = statement_rows(
        api.client.get(f"/participants/{address}/orders"),
        api.client.get(f"/participants/{address}/trades"),
        api.client.get(f"/wallet/{address}/payments"),
    )
    path = tmp_path / "bob.csv"
    write_statement(path, rows)
    with path.open() as f:
        read = list(csv.DictReader(f))
    by_record = {r["record"]: r for r in read}
    assert [r["record"] for r in read] == ["order", "trade", "settlement", "payment", "payment"]
    assert (by_record["order"]["side"], by_record["order"]["status"]) == ("buy", "settled")
    assert (by_record["trade"]["filled_wh"], by_record["trade"]["amount"]) == ("1000", "200000")
    assert by_record["settlement"]["order_hash"] == buy["order_hash"]
    payments = [(r["status"], int(r["amount"])) for r in read if r["record"] == "payment"]
    assert payments == [("deposit", DEPOSIT), ("purchase", -200_000)]

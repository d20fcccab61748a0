"""EnergyMarket.depositFor: a funder pays many participants' deposits in one transaction."""

from __future__ import annotations

import pytest
from eth_account import Account
from web3.logs import DISCARD

from gridledger.errors import LedgerError, NotRegisteredError


def _registered(ledger, count: int, first_meter: int) -> list[str]:
    accounts = [Account.create().address for _ in range(count)]
    ledger.register_many(
        accounts, meter_ids=[first_meter + i for i in range(count)], buses=[1] * count, capacities_w=[4_000] * count
    )
    return accounts


def _funded_admin(ledger, amount: int):
    admin = ledger.roles.admin
    ledger.mint(admin.address, amount)
    ledger.tx.send(admin, ledger.token.functions.approve(ledger.market.address, amount), action="approve")
    return admin


def test_deposit_for_credits_each_account_and_pulls_the_sum_once(ledger) -> None:
    accounts = _registered(ledger, 3, 700)
    admin = ledger.roles.admin
    ledger.mint(admin.address, 1_000)
    wallet = ledger.token_balance(admin.address)
    held = ledger.token_balance(ledger.market.address)
    receipts = ledger.deposit_for(admin, {accounts[0]: 100, accounts[1]: 250, accounts[2]: 7}, batch_size=2)
    assert len(receipts) == 3  # one approval, then batches of 2 and 1
    assert [ledger.account_of(a) for a in accounts] == [(100, 0), (250, 0), (7, 0)]
    assert ledger.token_balance(admin.address) == wallet - 357
    assert ledger.token_balance(ledger.market.address) == held + 357
    deposited, transfer = ledger.market.events.Deposited(), ledger.token.events.Transfer()
    events = [e["args"] for r in receipts[1:] for e in deposited.process_receipt(r, errors=DISCARD)]
    assert [(e["account"], e["amount"]) for e in events] == [(accounts[0], 100), (accounts[1], 250), (accounts[2], 7)]
    transfers = [e["args"] for r in receipts[1:] for e in transfer.process_receipt(r, errors=DISCARD)]
    assert [(t["from"], t["to"], t["value"]) for t in transfers] == [
        (admin.address, ledger.market.address, 350),
        (admin.address, ledger.market.address, 7),
    ]


def test_an_account_named_twice_gets_both_amounts(ledger) -> None:
    (account,) = _registered(ledger, 1, 710)
    admin = _funded_admin(ledger, 30)
    call = ledger.market.functions.depositFor([account, account], [10, 20])
    ledger.tx.send(admin, call, action="deposit for")
    assert ledger.account_of(account) == (30, 0)


@pytest.mark.parametrize(
    ("amounts", "unregistered", "error", "match"),
    [
        ([10], False, "LengthMismatch", r"differ in length \(2 and 1\)"),
        ([10, 0], False, "ZeroAmount", "greater than zero"),
        ([10, 20], True, "NotRegistered", "is not a registered participant"),
    ],
)
def test_deposit_for_refuses_the_whole_batch(ledger, amounts, unregistered, error, match) -> None:
    accounts = _registered(ledger, 2, 720)
    if unregistered:
        accounts[1] = Account.create().address
    admin = _funded_admin(ledger, 100)
    wallet = ledger.token_balance(admin.address)
    with pytest.raises(LedgerError, match=match) as info:
        ledger.tx.send(admin, ledger.market.functions.depositFor(accounts, amounts), action="deposit for")
    assert info.value.error == error
    if unregistered:
        assert isinstance(info.value, NotRegisteredError)
        assert info.value.args_ == {"account": accounts[1]}
    assert ledger.account_of(accounts[0]) == (0, 0)  # the valid first entry was not credited either
    assert ledger.token_balance(admin.address) == wallet


def test_deposit_for_needs_the_funders_approval_of_the_sum(ledger) -> None:
    accounts = _registered(ledger, 2, 730)
    admin = _funded_admin(ledger, 29)  # approves 29 of the 30
    with pytest.raises(LedgerError, match="allowance") as info:
        ledger.tx.send(admin, ledger.market.functions.depositFor(accounts, [10, 20]), action="deposit for")
    assert info.value.error == "ERC20InsufficientAllowance"
    assert [ledger.account_of(a) for a in accounts] == [(0, 0), (0, 0)]


def test_onboarded_prosumers_hold_their_deposits_and_no_wallet_tokens(ledger) -> None:
    from gridledger.sim.participants import make_prosumers

    accounts = make_prosumers(ledger, count=3, deposit=5, deposits=[5, 6, 7], first_meter_id=740, gas_money=False)
    assert [ledger.account_of(a.address) for a in accounts] == [(5, 0), (6, 0), (7, 0)]
    assert [ledger.token_balance(a.address) for a in accounts] == [0, 0, 0]
    assert [ledger.chain.w3.eth.get_balance(a.address) for a in accounts] == [0, 0, 0]

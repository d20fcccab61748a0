"""The relay queue and the index across failures: a bad order in a batch, a restart before the
relay, a crash between sending and recording, an index that resumes, a database of another chain."""

from __future__ import annotations

import pytest
from tests.backend.api.conftest import DEPOSIT, start_api
from tests.conftest import open_ledger

from gridledger.chain.connection import FIRST_PROSUMER_INDEX, derive_account
from gridledger.chain.slots import recorded_order
from gridledger.config import Settings
from gridledger.errors import ConfigurationError
from gridledger.market.orders import Order, Side
from gridledger.service.facilitator import Facilitator
from gridledger.service.relayer import RelayPolicy

HOLD = RelayPolicy(batch_size=100, max_wait_s=3_600)  # nothing is relayed until forced
QUICK = RelayPolicy(batch_size=100, max_wait_s=0.05)


def onboard(api, count: int = 2):
    accounts = [derive_account(Settings().mnemonic, FIRST_PROSUMER_INDEX + i) for i in range(count)]
    for i, account in enumerate(accounts):
        api.register(account, meter_id=200 + i, bus=3 + i)
        api.fund(account)
    return accounts


def submissions(api) -> dict[str, str]:
    return dict(api.service.ctx.db.execute("select order_hash, status from submissions").fetchall())


def test_one_bad_order_is_rejected_with_its_reason_and_the_rest_of_the_batch_goes_through(
    ledger, tmp_path, semiurb5
) -> None:
    with start_api(ledger, str(tmp_path / "f.sqlite"), semiurb5, HOLD) as api:
        alice, bob = onboard(api)
        slot = api.next_slot()
        a1 = api.client.place(alice, side=Side.SELL, delivery_start=slot, energy_wh=100, price_per_kwh=1)
        a2 = api.client.place(alice, side=Side.SELL, delivery_start=slot, energy_wh=200, price_per_kwh=1)
        b1 = api.client.place(bob, side=Side.BUY, delivery_start=slot, energy_wh=1_000, price_per_kwh=100_000)
        # Bob empties his market account after the API accepted his order, before the relay.
        api.chain(lambda: ledger.withdraw(bob, DEPOSIT))
        api.relay_now()
        assert submissions(api) == {
            a1["order_hash"]: "relayed",
            a2["order_hash"]: "relayed",
            b1["order_hash"]: "rejected",
        }
        rejected = api.client.get(f"/orders/{b1['order_hash']}")
        assert rejected["status"] == "rejected" and "deposit more first" in rejected["reason"]
        assert api.chain(lambda: ledger.slot_state(slot)).open_orders == 2
        assert api.chain(lambda: ledger.next_nonce(bob.address)) == 0  # Bob's order never reached the ledger


def test_accepted_orders_survive_a_restart_and_are_relayed_once(ledger, tmp_path, semiurb5) -> None:
    database = str(tmp_path / "f.sqlite")
    with start_api(ledger, database, semiurb5, HOLD) as first:
        alice, _ = onboard(first)
        slot = first.next_slot()
        accepted = [
            first.client.place(alice, side=Side.SELL, delivery_start=slot, energy_wh=100 * (i + 1), price_per_kwh=1)
            for i in range(3)
        ]
        first.service.ctx.worker.stop(drain=False)  # the service dies with three orders queued
    assert set(submissions(first).values()) == {"accepted"}

    with start_api(ledger, database, semiurb5, QUICK) as second:
        for a in accepted:
            second.wait_for(a["order_hash"], "on_chain")
        assert set(submissions(second).values()) == {"relayed"}
        assert second.chain(lambda: ledger.slot_state(slot)).open_orders == 3
        assert second.chain(lambda: ledger.next_nonce(alice.address)) == 3
        recorded = second.chain(lambda: ledger.recorded_orders(slot))
        assert [r.order_hash.hex() for r in recorded] == [a["order_hash"][2:] for a in accepted]


def test_an_order_relayed_just_before_a_crash_is_not_relayed_again(ledger, tmp_path, semiurb5) -> None:
    database = str(tmp_path / "f.sqlite")
    with start_api(ledger, database, semiurb5, HOLD) as first:
        alice, _ = onboard(first)
        slot = first.next_slot()
        orders = [Order(alice.address, Side.SELL, slot, 100 + n, 1, n, slot) for n in range(2)]
        accepted = [first.client.submit_order(alice, o) for o in orders]
        first.service.ctx.worker.stop(drain=False)
    # The relay transaction of the first order landed, but the crash came before it was recorded.
    ledger.relay_orders([ledger.sign(alice, orders[0])])

    with start_api(ledger, database, semiurb5, QUICK) as second:
        for a in accepted:
            second.wait_for(a["order_hash"], "on_chain")
        assert set(submissions(second).values()) == {"relayed"}  # not "rejected" as a replay
        recorded = ledger.market.events.OrderRecorded.get_logs(from_block=0)
        assert sorted(recorded_order(e, ledger.hash_of).order_hash.hex() for e in recorded) == sorted(
            a["order_hash"][2:] for a in accepted
        )
        assert second.service.ctx.relayer.relayed == 2 and second.service.ctx.relayer.rejected == 0


def test_the_index_resumes_from_its_last_block_and_agrees_with_the_chain(ledger, tmp_path, semiurb5) -> None:
    database = str(tmp_path / "f.sqlite")
    with start_api(ledger, database, semiurb5, QUICK) as first:
        alice, bob = onboard(first)
        last = int(first.service.ctx.db.execute("select value from meta where key = 'last_block'").fetchone()[0])
    # While the service is down, Alice withdraws and Bob deposits more.
    ledger.withdraw(alice, 30_000_000)
    ledger.mint(bob.address, 5_000_000)
    ledger.deposit(bob, 5_000_000)

    with start_api(ledger, database, semiurb5, QUICK) as second:
        health = second.client.get("/health")
        assert health["indexed_block"] == ledger.chain.w3.eth.block_number > last
        for account in (alice, bob):
            served = second.client.get(f"/participants/{account.address}")
            on_chain = second.chain(lambda a=account: (ledger.account_of(a.address), ledger.token_balance(a.address)))
            assert (
                (served["market_balance"]["available"], served["market_balance"]["locked"]),
                served["token_balance"],
            ) == on_chain
        assert (
            second.client.get(f"/participants/{alice.address}")["market_balance"]["available"] == DEPOSIT - 30_000_000
        )
        kinds = second.service.ctx.db.execute(
            "select account, kind, amount from payments order by block, log_index"
        ).fetchall()
        assert kinds[-2:] == [(alice.address, "withdrawal", -30_000_000), (bob.address, "deposit", 5_000_000)]


def test_a_database_of_another_chain_is_refused(build, ledger, tmp_path, semiurb5) -> None:
    database = str(tmp_path / "f.sqlite")
    with start_api(ledger, database, semiurb5, QUICK) as api:
        onboard(api, count=1)
    fresh = open_ledger(build)  # same addresses and chain id, another history
    with pytest.raises(ConfigurationError, match="reset or reorganised"):
        Facilitator(fresh, Settings(chain="embedded", database=database), model=semiurb5)

"""ParticipantRegistry: who may register whom, and the refusals."""

from __future__ import annotations

import pytest
from eth_account import Account
from web3.logs import DISCARD

from gridledger.errors import LedgerError


def test_facilitator_registers_a_participant(ledger) -> None:
    account = Account.create().address
    ledger.register(account, meter_id=42, bus=17, capacity_w=11_000)
    meter_id, bus, capacity_w, index = ledger.registry.functions.participant(account).call()
    assert (meter_id, bus, capacity_w) == (42, 17, 11_000)
    assert index == ledger.registry.functions.participantCount().call() - 1  # numbered from 0 in registration order
    assert ledger.registry.functions.accountAt(index).call() == account
    assert ledger.registry.functions.accountOfMeter(42).call() == account


@pytest.mark.parametrize(
    ("setup", "args", "error", "match"),
    [
        (True, dict(meter_id=2, bus=1, capacity_w=1_000), "AlreadyRegistered", "already registered"),
        (
            True,
            dict(meter_id=1, bus=1, capacity_w=1_000, other=True),
            "MeterIdTaken",
            "meter 1 already belongs",
        ),
        (False, dict(meter_id=1, bus=1, capacity_w=0), "InvalidCapacity", "at least 1 W"),
    ],
)
def test_registration_refusals(ledger, setup, args, error, match) -> None:
    account = Account.create().address
    if setup:
        ledger.register(account, meter_id=1, bus=1, capacity_w=1_000)
    target = Account.create().address if args.pop("other", False) else account
    with pytest.raises(LedgerError, match=match) as info:
        ledger.register(target, **args)
    assert info.value.error == error


def test_only_the_facilitator_registers(ledger) -> None:
    call = ledger.registry.functions.register(Account.create().address, 1, 1, 1_000)
    with pytest.raises(LedgerError, match="lacks the role"):
        ledger.tx.send(ledger.roles.meter, call, action="registration by the meter operator")


@pytest.mark.parametrize("capacity_w", [1, 2, 3])
def test_a_capacity_below_one_wh_per_slot_is_refused(ledger, capacity_w) -> None:
    """1 to 3 W carry 0 Wh in a 15-minute slot, which the market reads as "not registered"."""
    account = Account.create().address
    with pytest.raises(LedgerError, match=f"capacity {capacity_w} W is invalid; it must be at least 4 W") as info:
        ledger.register(account, meter_id=7, bus=1, capacity_w=capacity_w)
    assert info.value.error == "InvalidCapacity"
    assert info.value.args_ == {"capacityW": capacity_w, "minCapacityW": 4}
    assert ledger.registry.functions.capacityOf(account).call() == 0


def test_the_smallest_capacity_carries_one_wh_per_slot(ledger) -> None:
    account = Account.create().address
    ledger.register(account, meter_id=7, bus=1, capacity_w=4)
    assert ledger.registry.functions.capacityOf(account).call() == 4
    assert ledger.registry.functions.MIN_CAPACITY_W().call() == 4


def _registered(ledger, accounts: list[str]) -> list[tuple[int, int, int, int]]:
    return [tuple(ledger.registry.functions.participant(a).call()) for a in accounts]


def test_registering_many_numbers_them_in_order(ledger) -> None:
    accounts = [Account.create().address for _ in range(5)]
    first = ledger.registry.functions.participantCount().call()
    receipts = ledger.register_many(
        accounts, meter_ids=[500 + i for i in range(5)], buses=[3, 1, 4, 1, 5], capacities_w=[4_000] * 5, batch_size=2
    )
    assert len(receipts) == 6  # three batches (2 + 2 + 1), each registered and then admitted to the market
    assert _registered(ledger, accounts) == [(500 + i, b, 4_000, first + i) for i, b in enumerate([3, 1, 4, 1, 5])]
    registered = ledger.registry.events.ParticipantRegistered()
    events = [e["args"] for r in receipts for e in registered.process_receipt(r, errors=DISCARD)]
    assert [(e["account"], e["index"]) for e in events] == [(a, first + i) for i, a in enumerate(accounts)]
    assert ledger.registry.functions.accountAt(first + 4).call() == accounts[4]


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        (dict(meter_ids=[1]), "LengthMismatch", r"differ in length \(2 and 1\)"),
        (dict(buses=[1, 2, 3]), "LengthMismatch", r"differ in length \(2 and 3\)"),
        (dict(capacities_w=[]), "LengthMismatch", r"differ in length \(2 and 0\)"),
        (dict(meter_ids=[9, 9]), "MeterIdTaken", "meter 9 already belongs"),
        (dict(duplicate=True), "AlreadyRegistered", "already registered"),
        (dict(capacities_w=[1_000, 3]), "InvalidCapacity", "at least 4 W"),
    ],
)
def test_registering_many_refuses_the_whole_batch(ledger, change, error, match) -> None:
    a, b = Account.create().address, Account.create().address
    args = dict(meter_ids=[8, 9], buses=[1, 2], capacities_w=[1_000, 1_000])
    accounts = [a, a] if change.pop("duplicate", False) else [a, b]
    args.update(change)
    count = ledger.registry.functions.participantCount().call()
    call = ledger.registry.functions.registerMany(accounts, args["meter_ids"], args["buses"], args["capacities_w"])
    with pytest.raises(LedgerError, match=match) as info:
        ledger.tx.send(ledger.roles.facilitator, call, action="registration of a batch")
    assert info.value.error == error
    assert ledger.registry.functions.participantCount().call() == count  # nothing registered, not even the first
    assert ledger.registry.functions.capacityOf(a).call() == 0
    assert ledger.registry.functions.accountOfMeter(8).call() == "0x" + "0" * 40


def test_register_many_checks_its_lengths_before_sending(ledger) -> None:
    block = ledger.chain.w3.eth.block_number
    with pytest.raises(ValueError, match="2 accounts, 2 meter ids, 1 buses, 2 capacities"):
        ledger.register_many(
            [Account.create().address, Account.create().address], meter_ids=[1, 2], buses=[1], capacities_w=[4, 4]
        )
    assert ledger.chain.w3.eth.block_number == block


def test_only_the_facilitator_registers_many(ledger) -> None:
    call = ledger.registry.functions.registerMany([Account.create().address], [1], [1], [1_000])
    with pytest.raises(LedgerError, match="lacks the role"):
        ledger.tx.send(ledger.roles.admin, call, action="registration by the admin")

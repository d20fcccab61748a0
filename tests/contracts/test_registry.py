"""ParticipantRegistry: who may register whom, and the refusals."""

from __future__ import annotations

import pytest
from eth_account import Account

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

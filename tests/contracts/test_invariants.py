"""The contracts' invariants under random sequences of every party's acts (issue item 7).

The machine and its model are in ``invariant_machine.py``. CI runs a small profile, sized by
``GRIDLEDGER_INVARIANT_EXAMPLES`` (examples; default 30) and ``GRIDLEDGER_INVARIANT_STEPS``
(steps per example; default 20); ``benchmarks/invariants.py`` runs the same machine long.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from tests.contracts.invariant_machine import GridLedgerMachine

from gridledger.market.orders import Side

EXAMPLES = int(os.environ.get("GRIDLEDGER_INVARIANT_EXAMPLES", "30"))
STEPS = int(os.environ.get("GRIDLEDGER_INVARIANT_STEPS", "20"))

TestContractInvariants = GridLedgerMachine.TestCase
TestContractInvariants.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def test_the_lens_reads_what_web3_reads() -> None:
    """The machine reads the chain through its lens (straight from revm); after acts that move
    every value it reads away from its start, the lens and web3 read the same."""
    machine = GridLedgerMachine()
    people = machine.addresses
    machine.first_request(min_performance=5_000, power=8_000)
    machine.relay_batch([(0, Side.BUY, 0, 1_000, 200_001), (1, Side.SELL, 0, 1_000, 50_001)], replay=[])
    machine.bind_uftp_key(i=1, key=2)
    machine.deposit_with_permit(i=2, amount=5_000, extra=600, refusal="none")
    machine.withdraw_by_sig(i=0, fraction=50, extra=600, refusal="none")
    machine.close_gate_and_commit(k=0, chunk=1)
    reads = machine.reads()
    assert reads == machine.reads_via_web3()
    assert reads["slots"][machine.slot_times[0]].status == "cleared"
    assert reads["accounts"][people[0]][1] > 0  # the buy order's escrow is locked
    assert reads["nonces"][people[0]] == reads["nonces"][people[1]] == 1
    assert reads["permit_nonces"][people[2]] == reads["withdrawal_nonces"][people[0]] == 1
    assert reads["uftp_keys"][people[1]] != b"\0" * 32
    assert reads["flex_tokens"] == machine.requests[0].escrow

"""The contracts' invariants under random sequences of every party's acts (issue item 7).

The machine and its model are in ``invariant_machine.py``. CI runs a small profile, sized by
``GRIDLEDGER_INVARIANT_EXAMPLES`` (examples; default 10) and ``GRIDLEDGER_INVARIANT_STEPS``
(steps per example; default 20); ``benchmarks/invariants.py`` runs the same machine long.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from tests.contracts.invariant_machine import GridLedgerMachine

EXAMPLES = int(os.environ.get("GRIDLEDGER_INVARIANT_EXAMPLES", "10"))
STEPS = int(os.environ.get("GRIDLEDGER_INVARIANT_STEPS", "20"))

TestContractInvariants = GridLedgerMachine.TestCase
TestContractInvariants.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

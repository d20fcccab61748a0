"""Congested slots of the study on the embedded chain give the fast path's results to the Wh and
the token base unit: fills after the network check, prices, curtailment, state of charge, and
each participant's market balance."""

from __future__ import annotations

import numpy as np

from gridledger.chain.ledger import Ledger
from gridledger.study.ledger import market_money, run_on_ledger
from gridledger.study.records import Design
from gridledger.study.run import StudyResult

WINDOW = range(44, 47)  # 11:00–11:45 of the first day: the transformer is over its limit


def test_congested_slots_on_the_ledger_match_the_fast_path(ledger: Ledger, short_study: StudyResult) -> None:
    study = short_study.study
    k0, k1 = WINDOW.start, WINDOW.stop
    reference = study.new_run(Design.P2P_THEN_CURTAILMENT)
    reference.flexibility = False  # what the ledger path runs today: curtailment of trades only
    reference.soc_wh[k0] = short_study.runs[Design.P2P_UNCONSTRAINED].soc_wh[k0]
    study.relieve(reference, k0, k1)
    assert reference.facilitated == len(WINDOW)  # every slot breached the limit
    assert reference.curtailed_wh[k0:k1].sum() > 0

    on_chain = run_on_ledger(
        ledger, study, first_slot=reference.first_slot + k0, slots=len(WINDOW), soc_wh=reference.soc_wh[k0]
    )
    expected = [reference.record(k, list(study.bats)) for k in WINDOW]
    assert on_chain.records == expected
    money: dict[int, int] = {}
    for record in expected:
        for i, amount in market_money(record).items():
            money[i] = money.get(i, 0) + amount
    assert {i: v for i, v in on_chain.balance_change.items() if v} == {i: v for i, v in money.items() if v}
    assert all(g > 0 for g in on_chain.gas_per_slot)
    assert np.sign(list(money.values())).tolist().count(1) > 0  # sellers were paid

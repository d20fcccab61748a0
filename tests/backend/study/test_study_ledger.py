"""Congested slots of the study on the embedded chain give the fast path's results to the Wh and
the token base unit: fills after the network check, prices, curtailment, state of charge, and
each participant's market balance."""

from __future__ import annotations

from gridledger.chain.ledger import Ledger
from gridledger.study.ledger import compare, market_money, reference_run, run_on_ledger
from gridledger.study.records import Design
from gridledger.study.run import StudyResult

WINDOW = range(44, 47)  # 11:00–11:45 of the first day: the transformer is over its limit


def test_congested_slots_on_the_ledger_match_the_fast_path(ledger: Ledger, short_study: StudyResult) -> None:
    study = short_study.study
    first = short_study.runs[Design.NO_MARKET].first_slot + WINDOW.start
    soc = short_study.runs[Design.P2P_UNCONSTRAINED].soc_wh[WINDOW.start]
    reference = reference_run(study, first_slot=first, slots=len(WINDOW), soc_wh=soc)
    assert reference.facilitated == len(WINDOW)  # every slot breached the limit
    assert reference.curtailed_wh.sum() > 0  # and the facilitator curtailed trades

    on_chain = run_on_ledger(ledger, study, first_slot=first, slots=len(WINDOW), soc_wh=soc)
    assert compare(study, reference, on_chain) == []
    assert [r.slot for r in on_chain.records] == list(range(first, first + len(WINDOW)))
    money: dict[int, int] = {}
    for record in on_chain.records:
        for i, amount in market_money(record).items():
            money[i] = money.get(i, 0) + amount
    assert {i: v for i, v in on_chain.balance_change.items() if v} == {i: v for i, v in money.items() if v}
    assert sum(v > 0 for v in money.values()) > 0 and sum(v < 0 for v in money.values()) > 0
    assert all(g > 0 for g in on_chain.gas_per_slot)

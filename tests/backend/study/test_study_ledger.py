"""A congested day of the study on the embedded chain gives the fast path's results to the Wh and
the token base unit: design (d) with the study's time-of-use network charge set on the market and
the flexibility offered on the FlexibilityMarket (fills after the network check, prices, network
charges per buyer, curtailment, activations, meter readings, state of charge, each participant's
market balance, the DSO's network charges and the providers' flexibility payments)."""

from __future__ import annotations

import numpy as np
import pytest

from gridledger.chain.ledger import Ledger
from gridledger.errors import ConfigurationError
from gridledger.study.ledger import compare, flex_money, market_money, reference_run, run_on_ledger
from gridledger.study.records import Design
from gridledger.study.run import StudyResult


def test_a_congested_day_on_the_ledger_matches_the_fast_path(ledger: Ledger, short_study: StudyResult) -> None:
    study = short_study.study
    joint = short_study.runs[Design.JOINT]
    battery_of = [int(i) for i in study.bats]
    first, soc, tariff = joint.first_slot, joint.soc_wh[0], joint.tariff
    reference = reference_run(study, design=Design.JOINT, first_slot=first, days=1, soc_wh=soc, tariff=tariff)
    # The reference is the study's own (d): the same day, slot for slot.
    assert [reference.record(k, battery_of) for k in range(96)] == [joint.record(k, battery_of) for k in range(96)]
    assert reference.facilitated > 0 and (joint.trafo_loading <= 100.0 + 1e-6).all()
    assert (reference.flex_wh[:, study.bats] != 0).any()  # batteries' flexibility activated
    assert len(set(reference.tariff.tolist())) == 3  # night, day and peak rates
    assert reference.network_charges().sum() > 0

    on_chain = run_on_ledger(ledger, study, design=Design.JOINT, first_slot=first, days=1, soc_wh=soc, tariff=tariff)

    assert [r.slot for r in on_chain.records] == list(range(joint.first_slot, joint.first_slot + 96))
    assert compare(study, reference, on_chain) == []
    assert on_chain.dso_network_charges == int(reference.network_charges().sum())
    shortfall, surplus = ledger.market.functions.imbalancePrices().call()
    money: dict[int, int] = {}
    for record, metered in zip(on_chain.records, on_chain.metered_wh, strict=True):
        for i, amount in market_money(record, metered, shortfall=shortfall, surplus=surplus).items():
            money[i] = money.get(i, 0) + amount
    assert {i: v for i, v in on_chain.balance_change.items() if v} == {i: v for i, v in money.items() if v}
    assert on_chain.flex_paid == flex_money(study, reference) != {}
    assert all(g > 0 for g in on_chain.gas_per_slot)


def test_the_ledger_runs_whole_days_of_c_or_d_only(short_study: StudyResult) -> None:
    study = short_study.study
    tariff = np.zeros(96, dtype=np.int64)
    soc = short_study.runs[Design.JOINT].soc_wh[0]
    with pytest.raises(ConfigurationError, match="allowed: c, d"):
        reference_run(study, design=Design.P2P_UNCONSTRAINED, first_slot=0, days=1, soc_wh=soc, tariff=tariff)
    with pytest.raises(ConfigurationError, match="must start a day"):
        reference_run(study, design=Design.JOINT, first_slot=44, days=1, soc_wh=soc, tariff=tariff)
    with pytest.raises(ConfigurationError, match="the tariff has 95 slots, the run 96"):
        reference_run(study, design=Design.JOINT, first_slot=0, days=1, soc_wh=soc, tariff=tariff[:95])

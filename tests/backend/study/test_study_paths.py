"""The study's fast path is facilitate()'s path: a slot the day's screen passes would come out of
facilitate() unchanged, and a slot it relieved is facilitate()'s own result."""

from __future__ import annotations

import numpy as np
import pytest

from gridledger.facilitation import SlotInputs, facilitate
from gridledger.study.market import delivery_start, order_hash
from gridledger.study.records import Check, Design
from gridledger.study.run import StudyResult
from gridledger.units import SLOTS_PER_DAY


def test_screened_slots_come_out_of_facilitate_unchanged(short_study: StudyResult) -> None:
    study, run = short_study.study, short_study.runs[Design.JOINT]
    screened = [k for k in range(36, 64) if run.checked_by[k] == Check.SCREEN.value]  # 09:00–16:00, first day
    assert len(screened) >= 10
    for k in screened[::2]:
        slot = run.first_slot + k
        inputs = SlotInputs(
            delivery_start(slot),
            short_study.grid.baseline(slot),
            study.recorded(slot, run.order_wh[k]),
            short_study.grid.bus_of,
            network_charge_per_kwh=int(run.tariff[k]),
        )
        result = facilitate(short_study.grid.model, short_study.grid.engine, inputs)
        assert result.report.check.passed, k
        assert result.clearing.ledger_price == run.price[k]
        for i in np.flatnonzero(run.order_wh[k]):
            assert result.network.fills.get(order_hash(int(i), slot), 0) == abs(run.fill_wh[k][i])
        # facilitate()'s first check is the same engine on the same schedule as the study's screen.
        assert result.network.screening.max_trafo_loading_percent == pytest.approx(run.trafo_loading[k], abs=1e-3)


def test_relieved_slots_record_facilitates_result(short_study: StudyResult) -> None:
    study, run = short_study.study, short_study.runs[Design.P2P_THEN_CURTAILMENT]
    relieved = np.flatnonzero(run.checked_by == Check.FACILITATED.value)
    k = int(relieved[0])
    slot = run.first_slot + k
    record = run.record(k, list(study.bats))
    assert record.slot == slot and k < SLOTS_PER_DAY
    assert record.price_per_kwh == run.price[k] > 0
    assert sum(v for i, v in record.flex_wh.items() if i in set(study.pvs.tolist())) > 0  # PV curtailed
    assert record.network_charge_per_kwh == run.tariff[k]
    assert record.network_charges == {i: v for i, v in enumerate(run.network_charges()[k]) if v} and all(
        record.fills_wh[i] > 0 for i in record.network_charges
    )

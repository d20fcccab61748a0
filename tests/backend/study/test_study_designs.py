"""The designs on a congested day: batteries' state, relief, the optimum as upper bound, every
participant's money accounted for."""

from __future__ import annotations

import numpy as np
import pytest

from gridledger.reports.study_tables import design_rows, participant_rows, party_rows, pv_curtailed_wh
from gridledger.study.devices import Batteries
from gridledger.study.records import Check, Design
from gridledger.study.run import StudyResult

FEASIBLE = (Design.P2P_THEN_CURTAILMENT, Design.JOINT)


def test_the_grid_overloads_without_relief_and_not_after_it(short_study: StudyResult) -> None:
    for design in (Design.NO_MARKET, Design.P2P_UNCONSTRAINED):
        run = short_study.runs[design]
        assert (run.violations > 0).sum() >= 10
        assert run.trafo_loading.max() > 120.0
    for design in FEASIBLE:
        run = short_study.runs[design]
        assert run.facilitated > 0
        assert int((run.violations > 0).sum()) == 0
        # Every slot the screen found over a limit went through facilitate(): its AC check has the last word.
        assert run.trafo_loading[run.checked_by == Check.FACILITATED.value].max() <= 100.0
    assert short_study.optimum.run.violations.sum() == 0


def test_joint_clearing_relieves_with_batteries_instead_of_pv(short_study: StudyResult) -> None:
    independent = pv_curtailed_wh(short_study, Design.P2P_THEN_CURTAILMENT)
    joint = pv_curtailed_wh(short_study, Design.JOINT)
    assert independent > 20_000  # tens of kWh of PV thrown away on a June day
    assert joint < independent / 10
    assert short_study.runs[Design.JOINT].reserved_wh.sum() > 0


def test_battery_state_of_charge_is_carried_and_bounded(short_study: StudyResult) -> None:
    study = short_study.study
    specs = short_study.grid.batteries
    capacity = np.array([s.capacity_wh for s in specs])
    eff = np.array([s.efficiency for s in specs])
    for design in (Design.P2P_UNCONSTRAINED, *FEASIBLE):
        run = short_study.runs[design]
        soc = run.soc_wh
        assert (soc >= -1e-6).all() and (soc <= capacity + 1e-6).all()
        metered = run.metered_wh[:, study.bats].astype(float)
        step = np.where(metered > 0, metered * eff, metered / eff)
        expected = np.clip(soc[:-1] + step, 0.0, capacity)
        np.testing.assert_allclose(soc[1:], expected, atol=1e-6)
        assert soc.max() > 0.9 * capacity.max()  # they do fill up
    # Power per slot is bounded by the ratings.
    power_wh = Batteries(specs).power_wh
    for design in FEASIBLE:
        metered = np.abs(short_study.runs[design].metered_wh[:, study.bats])
        assert (metered <= power_wh + 1).all()


def test_optimum_is_the_upper_bound_of_every_design(short_study: StudyResult) -> None:
    # (a) and every design that keeps the limits; (b) breaks them, so no bound applies to it.
    best = short_study.welfare(Design.OPTIMUM)
    for design in (Design.NO_MARKET, *FEASIBLE):
        assert short_study.welfare(design) < best, design
    assert short_study.welfare(Design.NO_MARKET) < short_study.welfare(Design.P2P_UNCONSTRAINED)
    rows = {r["design"]: r for r in design_rows(short_study)}
    assert rows[Design.OPTIMUM.title]["% of (e)"] == pytest.approx(100.0)
    assert all(rows[d.title]["% of (e)"] < 100.0 for d in (Design.NO_MARKET, *FEASIBLE))


def test_every_token_paid_has_a_receiver(short_study: StudyResult) -> None:
    for design, accounts in short_study.accounts.items():
        assert accounts.balance == 0, design
        assert accounts.welfare == pytest.approx(accounts.welfare_per_slot.sum())
    joint = short_study.accounts[Design.JOINT]
    assert joint.dso_network_charges > 0 and joint.dso_availability > 0
    assert short_study.accounts[Design.P2P_THEN_CURTAILMENT].dso_pv_curtailment > 0
    for t in short_study.tariffs:
        assert t.accounts.balance == 0


def test_every_participant_and_party_has_a_row(short_study: StudyResult) -> None:
    rows = participant_rows(short_study)
    assert [r["participant"] for r in rows] == [p.name for p in short_study.grid.participants]
    assert {r["kind"] for r in rows} == {"load", "pv", "battery"}
    loads = [r for r in rows if r["kind"] == "load"]
    assert all(r["b: benefit vs (a)"] > 0 for r in loads)  # buying locally beats the retail tariff
    parties = party_rows(short_study)
    assert [p["design"] for p in parties] == [d.title for d in (Design.NO_MARKET, Design.P2P_UNCONSTRAINED, *FEASIBLE)]
    for p in parties[1:]:
        assert p["facilitator: gas per slot"] > 0 and p["facilitator: fee covering it (base units per kWh traded)"] > 0
        assert p["supplier: sales lost vs (a)"] > 0
        assert p["money check: all parties sum to"] == 0


def test_a_network_charge_moves_trades_and_pays_the_dso(short_study: StudyResult) -> None:
    by_shape = {t.tariff.shape: t for t in short_study.tariffs}
    free = by_shape["none"].accounts
    assert free.dso_network_charges == 0
    free_prices = by_shape["none"].run.price
    for shape in ("flat", "tou", "cpp"):
        charged = by_shape[shape].accounts
        assert charged.dso_network_charges > 0
        assert charged.traded_wh <= free.traded_wh
        # Buyers clear at limit − t: where the price is set by a bid, it falls, and sellers get less.
        prices = by_shape[shape].run.price
        assert (prices <= free_prices).all() and (prices < free_prices).any()
        assert charged.market_received.sum() < free.market_received.sum()
    critical = by_shape["cpp"].run
    assert critical.tariff.max() == by_shape["cpp"].tariff.critical_per_kwh

"""The joint-versus-independent report, on one day of the congested feeder."""

from __future__ import annotations

from gridledger.reports.flex_week import run_week


def test_joint_clearing_trades_more_curtails_less_and_leaves_no_violation() -> None:
    independent, joint, decisions = run_week(first_day=18, days=1)
    assert independent.congested_slots == joint.congested_slots == len(decisions) > 0
    assert independent.violations_left == joint.violations_left == 0
    assert independent.flex_wh == 0 and independent.dso_spend == 0
    assert joint.curtailed_wh < independent.curtailed_wh
    assert joint.traded_wh > independent.traded_wh
    assert joint.traded_wh + joint.curtailed_wh == independent.traded_wh + independent.curtailed_wh  # same orders
    assert joint.flex_wh > 0 and joint.flex_availability_cost > 0 and joint.flex_utilisation_cost > 0
    # Flexibility was bought only where it cost less than the trades it saved.
    assert joint.prosumer_benefit - joint.dso_spend > independent.prosumer_benefit
    assert {d["choice"] for d in decisions} <= {"flex", "both", "curtail"}
    assert all("least cost under the network limits" in d["reason"] for d in decisions)

"""The network model, power-flow validation, and network-aware clearing on SimBench grids."""

from __future__ import annotations

import numpy as np
import pytest

from gridledger.errors import NetworkError
from gridledger.market.orders import Side
from gridledger.network.curtailment import TradeFill, clear_network_aware
from gridledger.network.model import UK_LIMITS, Limits, NetworkModel
from gridledger.network.validation import BatchEngine, Schedule, ac_check, report_for


@pytest.fixture(scope="module")
def semiurb() -> NetworkModel:
    return NetworkModel.load("1-LV-semiurb5--0-sw")


@pytest.fixture(scope="module")
def semiurb_engine(semiurb) -> BatchEngine:
    return BatchEngine(semiurb)


def static_schedule(model: NetworkModel, *, load: float, pv: float, slots: int = 1) -> Schedule:
    p, q, g = model.static_loads()
    rows = np.ones((slots, 1))
    return Schedule(rows * p * load, rows * q * load, rows * g * pv, np.zeros((slots, len(model.buses))))


def test_model_version_names_content_and_limits(semiurb) -> None:
    assert len(semiurb.version) == 32
    assert NetworkModel.load("1-LV-semiurb5--0-sw").version == semiurb.version
    assert NetworkModel.load("1-LV-semiurb5--0-sw", UK_LIMITS).version != semiurb.version
    assert NetworkModel.load("1-LV-rural2--0-sw").version != semiurb.version


def test_a_model_loads_from_a_pandapower_json_file(semiurb, tmp_path) -> None:
    import pandapower

    path = tmp_path / "grid.json"
    pandapower.to_json(semiurb.net, str(path))
    from_file = NetworkModel.load(str(path))
    assert from_file.buses == semiurb.buses


@pytest.mark.parametrize(
    ("limits", "match"),
    [
        (dict(max_loading_percent=0), "max loading 0 % makes no sense"),
        (dict(v_min_pu=1.05, v_max_pu=1.10), "voltage band 1.05–1.1 pu makes no sense"),
        (dict(v_min_pu=0.9, v_max_pu=0.95), "makes no sense"),
    ],
)
def test_limits_that_make_no_sense_are_refused(limits, match) -> None:
    with pytest.raises(NetworkError, match=match):
        Limits(**limits)


def test_unknown_buses_and_files_are_refused(semiurb, tmp_path) -> None:
    with pytest.raises(NetworkError, match="bus 9999 is not in the network model 1-LV-semiurb5--0-sw"):
        semiurb.require_bus(9999)
    with pytest.raises(NetworkError, match="does not exist"):
        NetworkModel.load(str(tmp_path / "missing.json"))
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(NetworkError, match="is not a pandapower network"):
        NetworkModel.load(str(tmp_path / "bad.json"))


def test_a_power_flow_that_does_not_converge_is_an_error(semiurb, semiurb_engine) -> None:
    schedule = static_schedule(semiurb, load=200.0, pv=0.0)  # 200 × every load: no solution
    with pytest.raises(NetworkError, match="did not converge"):
        semiurb_engine.run(schedule)
    with pytest.raises(NetworkError, match="did not converge"):
        ac_check(semiurb, schedule)


@pytest.mark.parametrize(("load", "pv"), [(1.0, 0.0), (0.3, 0.9), (0.6, 0.5)])
def test_batch_engine_agrees_with_pandapower(semiurb, semiurb_engine, load, pv) -> None:
    """Stated tolerance: voltages within 0.001 pu, line loading within 0.1 percentage points,
    transformer loading within 2 points (pandapower rates transformer loading by current at
    the rated voltage, power-grid-model by apparent power)."""
    schedule = static_schedule(semiurb, load=load, pv=pv)
    batch = semiurb_engine.run(schedule)[0]
    ac = ac_check(semiurb, schedule)
    assert abs(batch.v_min_pu - ac.v_min_pu) < 1e-3
    assert abs(batch.v_max_pu - ac.v_max_pu) < 1e-3
    assert batch.max_line == ac.max_line
    assert abs(batch.max_line_loading_percent - ac.max_line_loading_percent) < 0.1
    assert abs(batch.max_trafo_loading_percent - ac.max_trafo_loading_percent) < 2.0


def test_a_day_validates_in_one_batch(semiurb, semiurb_engine) -> None:
    from gridledger.network.profiles import grid_baseline

    p, q, g = grid_baseline(day=173, grid="1-LV-semiurb5--0-sw")
    checks = semiurb_engine.run(Schedule(p, q, g, np.zeros((96, len(semiurb.buses)))))
    assert len(checks) == 96
    assert all(c.passed for c in checks)  # the "today" grid stays within limits all day
    midday, night = checks[52], checks[8]
    assert midday.v_max_pu > night.v_max_pu or midday.max_line_loading_percent != night.max_line_loading_percent


def test_report_hash_is_deterministic_and_covers_the_model(semiurb, semiurb_engine) -> None:
    check = semiurb_engine.run(static_schedule(semiurb, load=0.5, pv=0.5))[0]
    a = report_for(semiurb, 900 * 2_000_000, check)
    b = report_for(semiurb, 900 * 2_000_000, check)
    assert a.hash == b.hash and len(a.hash) == 32
    assert report_for(semiurb, 900 * 2_000_001, check).hash != a.hash
    assert f'"model_version":"0x{semiurb.version.hex()}"'.encode() in a.canonical()


# ───────────── real congestion: trades that the network cannot carry ─────────────


def far_and_near(model: NetworkModel, engine: BatchEngine, schedule: Schedule) -> tuple[int, int]:
    """The weakest bus (lowest voltage under load) and the transformer's LV bus."""
    return engine.run(schedule)[0].v_min_bus, int(model.net.trafo.lv_bus.iloc[0])


def trades(model, far, near, *, far_side: Side, n: int, energy_wh: int):
    """n trades of ``energy_wh`` between prosumers at the far bus and the transformer bus."""
    fills, market = [], np.zeros(len(model.buses))
    near_side = Side.BUY if far_side is Side.SELL else Side.SELL
    for k in range(n):
        for bus, side, tag in ((far, far_side, 1), (near, near_side, 2)):
            fills.append(TradeFill(bytes([tag, k]) * 16, f"{side.name.lower()}{k}@{bus}", side, bus, energy_wh))
            # A sale injects (negative load), a purchase withdraws, 4 W per Wh in a 15-minute slot.
            market[model.bus_position[bus]] += (-1 if side is Side.SELL else 1) * energy_wh * 4
    return fills, market


def test_ev_charging_at_the_end_of_a_weak_rural_feeder_is_curtailed_to_keep_voltage_in_band() -> None:
    # 1-LV-rural2--0-sw with UK limits (0.94–1.10 pu), households at 60 % of their peak, and six
    # 11 kW chargers at the weakest bus buying from sellers at the transformer.
    model = NetworkModel.load("1-LV-rural2--0-sw", UK_LIMITS)
    engine = BatchEngine(model)
    base = static_schedule(model, load=0.6, pv=0.0)
    assert engine.run(base)[0].passed  # the grid alone is fine
    far, near = far_and_near(model, engine, base)
    fills, market = trades(model, far, near, far_side=Side.BUY, n=6, energy_wh=2_750)
    schedule = Schedule(base.load_p_w, base.load_q_var, base.sgen_p_w, market[None, :])

    unconstrained = ac_check(model, schedule)
    assert not unconstrained.passed
    assert {v.limit for v in unconstrained.violations} == {"v_min_pu"}

    result = clear_network_aware(model, engine, schedule, fills)
    assert result.check.engine == "pandapower" and result.check.passed
    assert result.check.v_min_pu >= 0.94
    # Only the chargers that cause the drop are curtailed, pro rata (equal orders, equal cuts),
    # and the sellers lose exactly as much: bought = sold.
    bought = {c["prosumer"]: c["curtailed_wh"] for c in result.curtailments if c["side"] == "buy"}
    sold = sum(c["curtailed_wh"] for c in result.curtailments if c["side"] == "sell")
    assert len(bought) == 6 and max(bought.values()) - min(bought.values()) <= 2
    assert sum(bought.values()) == sold == result.curtailed_wh > 0
    assert all(name.endswith(f"@{far}") for name in bought)
    reason = result.curtailments[0]["reasons"][0]
    assert reason["element"] == "bus" and reason["limit"] == "v_min_pu" and reason["limit_value"] == 0.94
    assert reason["value"] < 0.94 and reason["excess"] > 0
    assert sum(result.fills.values()) == sum(f.filled_wh for f in fills) - 2 * sold


def test_battery_export_that_overloads_a_line_is_curtailed(semiurb, semiurb_engine) -> None:
    # 1-LV-semiurb5--0-sw at a sunny, light-load hour, and ten 30 kW batteries at the weakest
    # bus selling to buyers at the transformer: the feeder's first line overloads.
    base = static_schedule(semiurb, load=0.1, pv=0.9)
    assert semiurb_engine.run(base)[0].passed
    far, near = far_and_near(semiurb, semiurb_engine, static_schedule(semiurb, load=1.0, pv=0.0))
    fills, market = trades(semiurb, far, near, far_side=Side.SELL, n=10, energy_wh=7_500)
    schedule = Schedule(base.load_p_w, base.load_q_var, base.sgen_p_w, market[None, :])
    unconstrained = ac_check(semiurb, schedule)
    assert any(v.element == "line" for v in unconstrained.violations)

    result = clear_network_aware(semiurb, semiurb_engine, schedule, fills)
    assert result.check.passed
    assert result.check.max_line_loading_percent <= 100.0
    reasons = {r["element"] for c in result.curtailments for r in c["reasons"]}
    assert "line" in reasons
    sellers = [c for c in result.curtailments if c["side"] == "sell"]
    cuts = [c["curtailed_wh"] for c in sellers]
    assert len(sellers) == 10 and max(cuts) - min(cuts) <= 2  # pro rata; whole Wh shared in arrival order


def test_nothing_is_curtailed_when_the_network_carries_the_trades(semiurb, semiurb_engine) -> None:
    base = static_schedule(semiurb, load=0.5, pv=0.5)
    far, near = far_and_near(semiurb, semiurb_engine, base)
    fills, market = trades(semiurb, far, near, far_side=Side.SELL, n=2, energy_wh=500)
    result = clear_network_aware(
        semiurb, semiurb_engine, Schedule(base.load_p_w, base.load_q_var, base.sgen_p_w, market[None, :]), fills
    )
    assert result.curtailments == [] and result.check.passed
    assert result.fills == {f.order_hash: f.filled_wh for f in fills}


def test_the_model_version_is_the_same_in_another_process(semiurb) -> None:
    """The version goes on-chain; an auditor's process must compute the same bytes."""
    import subprocess
    import sys

    code = "from gridledger.network.model import NetworkModel; print(NetworkModel.load().version.hex())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    assert out.stdout.strip().splitlines()[-1] == semiurb.version.hex()


def test_a_participant_at_a_bus_the_model_lacks_is_refused_before_the_chain(ledger, semiurb) -> None:
    from eth_account import Account

    from gridledger.facilitation import register_participant

    account = Account.create().address
    with pytest.raises(NetworkError, match="bus 4242 is not in the network model"):
        register_participant(ledger, semiurb, account, meter_id=1, bus=4242, capacity_w=10_000)
    assert ledger.registry.functions.capacityOf(account).call() == 0  # nothing was written
    register_participant(ledger, semiurb, account, meter_id=1, bus=semiurb.buses[5], capacity_w=10_000)
    assert ledger.registry.functions.participant(account).call()[1] == semiurb.buses[5]

"""``ac_check`` reuses pandapower's internal case between calls: its results must be those of a
fresh ``runpp`` on the same schedule, to the last bit, slot after slot (loads, PV and market
power changing, the transformer over its limit in some slots and not in others)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from gridledger.errors import NetworkError
from gridledger.network.model import NetworkModel
from gridledger.network.validation import Schedule, ac_check
from gridledger.units import W_PER_MW


def fresh_runpp(model: NetworkModel, schedule: Schedule) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """pandapower's own power flow on a fresh copy of the net (switches and all, default start)."""
    import pandapower

    net = copy.deepcopy(model.net)
    pandapower.create_loads(net, buses=model.buses, p_mw=0.0)
    net.load["scaling"], net.sgen["scaling"] = 1.0, 1.0
    net.load["p_mw"] = np.concatenate([schedule.load_p_w[0], schedule.market_p_w[0]]) / W_PER_MW
    net.load["q_mvar"] = np.concatenate([schedule.load_q_var[0], np.zeros(len(model.buses))]) / W_PER_MW
    net.sgen["p_mw"] = schedule.sgen_p_w[0] / W_PER_MW
    net.sgen["q_mvar"] = 0.0
    pandapower.runpp(net, max_iteration=30)
    return (
        net.res_line.loading_percent.to_numpy(float).copy(),
        net.res_trafo.loading_percent.to_numpy(float).copy(),
        net.res_bus.vm_pu.to_numpy(float).copy(),
    )


@pytest.fixture(scope="module")
def rural_2034() -> NetworkModel:
    return NetworkModel.load("1-LV-rural1--2-sw")


def test_ac_check_equals_a_fresh_runpp_to_the_last_bit(rural_2034: NetworkModel) -> None:
    model = rural_2034
    p, q, g = model.static_loads()
    rng = np.random.default_rng(12)
    trafo_loading = []
    for k in range(12):
        # From night load to midday export beyond the transformer's rating, with market power at random buses.
        market = np.where(rng.random(len(model.buses)) < 0.3, rng.normal(0, 4_000, len(model.buses)), 0.0)
        scale = rng.uniform(0.2, 1.2, len(p))
        schedule = Schedule((p * scale)[None], (q * scale)[None], (g * k / 6)[None], market[None])
        check = ac_check(model, schedule)
        lines, trafos, vm = fresh_runpp(model, schedule)
        net = model.__dict__["_ac_net"].net
        assert np.array_equal(net.res_line.loading_percent.to_numpy(float), lines)
        assert np.array_equal(net.res_trafo.loading_percent.to_numpy(float), trafos)
        assert np.array_equal(net.res_bus.vm_pu.to_numpy(float), vm)
        assert check.max_trafo_loading_percent == round(float(trafos.max()), 4)
        limits = model.limits
        within = max(trafos.max(), lines.max()) <= limits.max_loading_percent
        assert check.passed == (within and limits.v_min_pu <= vm.min() and vm.max() <= limits.v_max_pu)
        trafo_loading.append(trafos.max())
    assert min(trafo_loading) < 100.0 < max(trafo_loading)  # both sides of the limit were checked


def test_a_power_flow_that_does_not_converge_is_refused_and_the_next_one_is_right(rural_2034: NetworkModel) -> None:
    model = rural_2034
    p, q, g = model.static_loads()
    impossible = Schedule(p[None] * 400, q[None] * 400, g[None] * 0, np.zeros((1, len(model.buses))))
    with pytest.raises(NetworkError, match="AC power flow did not converge on 1-LV-rural1--2-sw"):
        ac_check(model, impossible)
    normal = Schedule(p[None], q[None], g[None], np.zeros((1, len(model.buses))))
    check = ac_check(model, normal)
    _, trafos, _ = fresh_runpp(model, normal)
    assert check.max_trafo_loading_percent == round(float(trafos.max()), 4)

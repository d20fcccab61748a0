"""Sensitivities read off the solved state (network/radial.py) against finite differences on the
batch engine, and what each method is used for."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from gridledger.network.curtailment import sensitivities
from gridledger.network.model import UK_LIMITS, NetworkModel
from gridledger.network.profiles import grid_baseline
from gridledger.network.sensitivity import _finite_differences, compute
from gridledger.network.validation import BatchEngine, Schedule, Violation

# What the linearisation leaves out (second-order terms) stays within a few per cent of each effect.
TOLERANCE = 0.03  # of the largest sensitivity of the same kind


def noon(model: NetworkModel, *, scale_load: float = 1.0) -> Schedule:
    p, q, g = grid_baseline(day=173, grid=model.source)
    return Schedule(p[52:53] * scale_load, q[52:53] * scale_load, g[52:53], np.zeros((1, len(model.buses))))


def assert_close(analytic: np.ndarray, reference: np.ndarray) -> None:
    scale = np.abs(reference).max()
    assert scale > 0
    assert np.abs(analytic - reference).max() <= TOLERANCE * scale


@pytest.mark.parametrize(
    ("grid", "limits", "scale_load"),
    [
        ("1-LV-semiurb5--0-sw", None, 1.0),  # one LV grid at noon: PV export
        ("1-LV-rural2--0-sw", UK_LIMITS, 3.0),  # a weak rural feeder, heavily loaded
        ("1-MV-rural--0-sw", None, 1.0),  # two HV/MV transformers in parallel behind bus-bar couplers
    ],
)
def test_radial_sensitivities_agree_with_finite_differences(grid, limits, scale_load) -> None:
    model = NetworkModel.load(grid, limits)
    engine = BatchEngine(model)
    assert engine.tree.radial, engine.tree.reason
    schedule = noon(model, scale_load=scale_load)
    solved = engine.solve_slot(schedule)
    radial = compute(engine, schedule, solved)
    reference = _finite_differences(engine, schedule, solved)
    assert radial.method == "radial" and reference.method == "finite differences"
    everyone = np.arange(len(model.buses))
    for kind in ("d_vm", "d_lines", "d_trafos"):
        assert_close(getattr(radial, kind)[everyone], getattr(reference, kind)[everyone])
    # Extra load lowers voltages and, on a feeder that imports, loads the transformer.
    assert (radial.d_vm[everyone] <= 0).all()
    # A column (one element's sensitivity to every bus) is the rows' column.
    line = int(np.argmax(solved.lines))
    assert np.array_equal(radial.d_lines[:, line], radial.d_lines[everyone][:, line])
    weakest = int(np.argmin(solved.vm))
    assert np.allclose(radial.d_vm[:, weakest], radial.d_vm[everyone][:, weakest], rtol=1e-12, atol=0)


def test_a_branch_reacts_only_to_load_below_it() -> None:
    model = NetworkModel.load("1-LV-rural2--0-sw")
    engine = BatchEngine(model)
    schedule = noon(model, scale_load=2.0)
    sens = compute(engine, schedule)
    line = int(np.argmax(engine.solve_slot(schedule).lines))
    column = sens.d_lines[:, line]
    below = {b for b, slope in zip(model.buses, column, strict=True) if slope != 0}
    # The line's far end and everything it feeds: remove the line and exactly those buses are cut off.
    import pandapower.topology as top

    net = copy.deepcopy(model.net)
    net.line.loc[net.line.index[line], "in_service"] = False
    supplied = set(top.connected_component(top.create_nxgraph(net), int(net.ext_grid.bus.iloc[0])))
    assert below == set(model.buses) - supplied and below


def test_a_meshed_network_falls_back_to_finite_differences() -> None:
    model = NetworkModel.load("1-LV-semiurb5--0-sw")
    net = copy.deepcopy(model.net)
    import pandapower

    ends = net.line.to_bus.iloc[-1], net.line.to_bus.iloc[len(net.line) // 2]
    pandapower.create_line(net, int(ends[0]), int(ends[1]), length_km=0.1, std_type="NAYY 4x150 SE")
    meshed = NetworkModel(net, source="semiurb5 with a ring closed")
    engine = BatchEngine(meshed)
    assert not engine.tree.radial
    assert engine.tree.reason == "it has a loop (a closed ring or meshed branches)"
    assert engine.feeder_of(meshed.buses[3]) == frozenset(meshed.buses)  # no feeder structure to lean on
    schedule = noon(model)
    sens = compute(engine, schedule)
    assert sens.method == "finite differences"
    rows = sens.d_vm[[3, 7]]
    assert rows.shape == (2, len(meshed.buses)) and (rows < 0).any()
    # Curtailment asks for the fills' buses only (one power flow each), in the fills' order.
    trafo = Violation("trafo", int(net.trafo.index[0]), "t", "max_loading_percent", 100.0, 120.0)
    slopes = sensitivities(engine, schedule, trafo, positions=np.array([7, 3, 7]))
    column = sens.d_trafos[[7, 3]][:, 0]
    assert slopes.tolist() == [column[0], column[1], column[0]]
    assert (slopes < 0).all()  # at noon the grid exports PV: extra load relieves the transformer

"""A feeder of thousands: SimBench's MV/LV grid as the network model, its profiles, the batch
engine over its day, and network-aware clearing with the sensitivities read off its state."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from gridledger.errors import ConfigurationError
from gridledger.facilitation import BaselineRef, SlotInputs, facilitate
from gridledger.market.orders import Order, RecordedOrder, Side
from gridledger.network.model import NetworkModel, _vector_groups
from gridledger.network.profiles import day_profiles, grid_baseline, require_grid
from gridledger.network.sensitivity import _finite_differences, compute
from gridledger.network.validation import BatchEngine, Schedule

FEEDER = "1-MVLV-rural-all-0-sw"
DELIVERY = 1_782_133_200  # 2026-06-22 13:00 UTC: day 173 of the year, slot 52


@pytest.fixture(scope="module")
def feeder() -> NetworkModel:
    return NetworkModel.load(FEEDER)


@pytest.fixture(scope="module")
def feeder_engine(feeder) -> BatchEngine:
    return BatchEngine(feeder)


def test_the_mv_lv_grid_loads_with_its_profiles_and_validates_a_day_in_one_batch(feeder, feeder_engine) -> None:
    net = feeder.net
    assert (len(net.bus), len(net.load), len(net.sgen), len(net.trafo)) == (5_479, 5_373, 581, 92)
    p, q, g = grid_baseline(day=173, grid=FEEDER)
    assert p.shape == (96, 5_373) and g.shape == (96, 581)
    pv = net.sgen.profile.str.startswith("PV").to_numpy()
    assert g[52, pv].sum() > 1e6 and g[8, pv].max() == 0  # its PV produces at noon (MW), not at 02:00
    checks = feeder_engine.run(Schedule(p, q, g, np.zeros((96, len(feeder.buses)))))
    assert len(checks) == 96 and all(c.passed for c in checks)  # the "today" feeder is within limits
    assert max(c.max_trafo_loading_percent for c in checks) > 20  # and it carries load


def test_every_load_of_the_feeder_can_be_a_prosumer() -> None:
    profiles = day_profiles(count=5_373, day=173, grid=FEEDER)
    assert len({p.load_index for p in profiles}) == 5_373
    assert sum(p.pv_kwp > 0 for p in profiles) == (5_373 + 1) // 2
    assert all(p.load_w.min() >= 0 and p.pv_w.min() >= 0 for p in profiles)
    with pytest.raises(ConfigurationError, match="grid 1-MVLV-rural-all-0-sw has 5,373 loads; choose 1 to 5,373"):
        day_profiles(count=5_374, day=173, grid=FEEDER)


def test_grid_codes_are_checked_with_what_is_allowed() -> None:
    with pytest.raises(
        ConfigurationError, match=r"unknown grid '1-MVLV-rural-al-0-sw' \(did you mean 1-MVLV-rural-all-0-sw"
    ):
        require_grid("1-MVLV-rural-al-0-sw")
    with pytest.raises(
        ConfigurationError, match=r"allowed are SimBench codes: .*1-MVLV-semiurb-all-\{0,1,2\}-\{sw,no_sw\}"
    ):
        require_grid("no such grid")
    with pytest.raises(ConfigurationError, match=r"extra-high-voltage grids .* regulate voltage"):
        require_grid("1-EHV-mixed--0-sw")


def test_transformers_get_a_vector_group_their_phase_shift_allows() -> None:
    trafos = pd.DataFrame({"shift_degree": [150.0, 0.0, 330.0]})
    assert _vector_groups(trafos) == ["Dyn5", "YNyn0", "Dyn11"]


def test_the_feeder_is_a_tree_and_its_sensitivities_agree_with_finite_differences(feeder, feeder_engine) -> None:
    tree = feeder_engine.tree
    assert tree.radial, tree.reason  # two HV/MV transformers in parallel behind couplers: one edge
    p, q, g = grid_baseline(day=173, grid=FEEDER)
    noon = Schedule(p[52:53], q[52:53], g[52:53], np.zeros((1, len(feeder.buses))))
    solved = feeder_engine.solve_slot(noon)
    radial, reference = compute(feeder_engine, noon, solved), _finite_differences(feeder_engine, noon, solved)
    some = np.random.default_rng(3).choice(len(feeder.buses), 6, replace=False)
    for kind in ("d_vm", "d_lines", "d_trafos"):
        a, f = getattr(radial, kind)[some], getattr(reference, kind)[some]
        assert np.abs(a - f).max() <= 0.03 * np.abs(f).max()
    # A bus's feeder is its LV grid: tens of buses under one MV/LV transformer.
    net = feeder.net
    lv_bus = int(net.load.bus[net.bus.vn_kv.reindex(net.load.bus).to_numpy() < 1].iloc[-1])
    lv_grid = feeder_engine.feeder_of(lv_bus)
    assert lv_bus in lv_grid and 10 < len(lv_grid) < 300
    assert {float(v) for v in net.bus.loc[sorted(lv_grid), "vn_kv"]} == {0.4}
    mv_bus = int(net.load.bus[net.bus.vn_kv.reindex(net.load.bus).to_numpy() > 1].iloc[0])
    assert len(feeder_engine.feeder_of(mv_bus)) > 5_000  # an MV customer's "feeder": all under the HV/MV one


def test_a_congested_feeder_slot_is_curtailed_where_it_is_congested_and_confirmed_by_ac(feeder, feeder_engine) -> None:
    # 400 households at noon; in two LV grids, the batteries of every second one export 24 kW.
    profiles = day_profiles(count=400, day=173, grid=FEEDER)
    congested = feeder_engine.feeder_of(profiles[100].bus) | feeder_engine.feeder_of(profiles[300].bus)
    recorded, bus_of = [], {}
    for k, prof in enumerate(profiles):
        address = to_checksum_address(keccak(k.to_bytes(32, "big"))[-20:])
        bus_of[address] = prof.bus
        if prof.bus in congested and k % 2 == 0:
            side, energy_wh, price = Side.SELL, 6_000, 100_000
        else:
            side, energy_wh, price = Side.BUY, max(10, round(float(prof.net_w[52]) / 4)), 250_000
        order = Order(address, side, DELIVERY, energy_wh, price, 0, DELIVERY)
        recorded.append(RecordedOrder(order, keccak(b"order" + k.to_bytes(32, "big")), (1, k)))
    ref = BaselineRef.for_delivery(feeder, FEEDER, DELIVERY, bus_of.values())
    assert (ref.day, ref.slot) == (173, 52) and len(ref.replaced_loads) == 400
    slot = facilitate(feeder, feeder_engine, SlotInputs(DELIVERY, ref, recorded, bus_of))

    network = slot.network
    assert not network.screening.passed  # the batteries overload their LV grids
    assert {v.element for v in network.screening.violations} <= {"line", "trafo"}
    assert network.check.engine == "pandapower" and network.check.passed
    sellers = [c for c in network.curtailments if c["side"] == "sell"]
    assert sellers and all(c["bus"] in congested for c in sellers)  # only batteries there were cut
    assert sum(c["curtailed_wh"] for c in sellers) == sum(
        c["curtailed_wh"] for c in network.curtailments if c["side"] == "buy"
    )
    assert (
        slot.report.check == network.check
        and slot.report.hash
        == facilitate(feeder, feeder_engine, SlotInputs(DELIVERY, ref, recorded, bus_of)).report.hash
    )  # the audit's re-run gives the same report

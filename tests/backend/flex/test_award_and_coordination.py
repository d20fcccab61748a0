"""The award rule and joint clearing on a congested SimBench feeder: six 11 kW chargers at the
end of 1-LV-rural2--0-sw (UK voltage band) buy from sellers at the transformer."""

from __future__ import annotations

import numpy as np
import pytest

from gridledger.flex.award import RELIEF_THRESHOLD, award
from gridledger.flex.coordination import FlexUnit, PricedFill, clear_jointly
from gridledger.flex.products import BaselineMethod, Direction, FlexOffer, FlexRequest, ServiceType
from gridledger.market.orders import Side
from gridledger.network.curtailment import TradeFill, clear_network_aware
from gridledger.network.model import UK_LIMITS, NetworkModel
from gridledger.network.validation import BatchEngine, Schedule, ac_check

BID, ASK = 300_000, 100_000  # 0.30 and 0.10 per kWh


@pytest.fixture(scope="module")
def feeder():
    model = NetworkModel.load("1-LV-rural2--0-sw", UK_LIMITS)
    engine = BatchEngine(model)
    p, q, g = model.static_loads()
    base = Schedule(p[None, :] * 0.6, q[None, :] * 0.6, g[None, :] * 0.0, np.zeros((1, len(model.buses))))
    far = engine.run(base)[0].v_min_bus
    near = int(model.net.trafo.lv_bus.iloc[0])
    fills, market = [], np.zeros(len(model.buses))
    for k in range(6):
        for bus, side, tag, price in ((far, Side.BUY, 1, BID), (near, Side.SELL, 2, ASK)):
            fills.append(PricedFill(TradeFill(bytes([tag, k]) * 16, f"{side.name}{k}", side, bus, 2_750), price))
            market[model.bus_position[bus]] += (-1 if side is Side.SELL else 1) * 2_750 * 4
    schedule = Schedule(base.load_p_w, base.load_q_var, base.sgen_p_w, market[None, :])
    assert not ac_check(model, schedule).passed  # the unconstrained trades drop the voltage below 0.94 pu
    return model, engine, schedule, fills, far, near


def units(far: int, price: int) -> list[FlexUnit]:
    return [FlexUnit(bytes([9, k]) * 16, far, Direction.UP, 1_250, price) for k in range(4)]


def test_cheap_flexibility_replaces_curtailment(feeder) -> None:
    model, engine, schedule, fills, far, _ = feeder
    result = clear_jointly(model, engine, schedule, fills, units(far, 120_000))
    assert result.check.engine == "pandapower" and result.check.passed and result.check.v_min_pu >= 0.94
    assert result.choice == "flex" and result.curtailed_wh == 0
    assert result.fills == {f.fill.order_hash: 2_750 for f in fills}  # every trade kept
    assert 0 < result.flex_wh <= 4 * 1_250
    assert result.flex_cost == result.flex_wh * 120_000 // 1000
    assert "flexibility" in result.reason


def test_dear_flexibility_loses_to_curtailment_and_bought_still_equals_sold(feeder) -> None:
    model, engine, schedule, fills, far, _ = feeder
    result = clear_jointly(model, engine, schedule, fills, units(far, 900_000))
    assert result.choice == "curtail" and result.flex_wh == 0 and result.check.passed
    bought = sum(2_750 - result.fills[f.fill.order_hash] for f in fills if f.fill.side is Side.BUY)
    sold = sum(2_750 - result.fills[f.fill.order_hash] for f in fills if f.fill.side is Side.SELL)
    assert bought == sold == result.curtailed_wh > 0
    # Curtailing a pair loses its surplus, 0.20 per kWh.
    assert result.lost_value == result.curtailed_wh * (BID - ASK) // 1000


def test_joint_clearing_costs_no_more_than_curtailment_alone(feeder) -> None:
    model, engine, schedule, fills, far, _ = feeder
    alone = clear_network_aware(model, engine, schedule, [f.fill for f in fills])
    joint = clear_jointly(model, engine, schedule, fills, units(far, 120_000))
    curtail_cost = alone.curtailed_wh * (BID - ASK) // 1000
    assert alone.check.passed and alone.curtailed_wh > 0
    assert joint.flex_cost + joint.lost_value < curtail_cost


def test_nothing_is_done_when_the_network_carries_the_trades(feeder) -> None:
    model, engine, schedule, fills, far, _ = feeder
    light = Schedule(schedule.load_p_w, schedule.load_q_var, schedule.sgen_p_w, schedule.market_p_w * 0.1)
    result = clear_jointly(model, engine, light, fills, units(far, 1))
    assert result.choice == "none" and result.flex_wh == 0 and result.check.passed


def test_the_award_takes_the_cheapest_offers_that_relieve_the_point(feeder) -> None:
    model, engine, schedule, _, far, near = feeder
    request = FlexRequest(
        ServiceType.SECURE, Direction.UP, BaselineMethod.HISTORICAL, far, 10_000, 9_000, 4, 5_000, 100_000, 300_000
    )
    offers = [
        (b"\x01" * 32, FlexOffer("0x" + "11" * 20, 1, 9_000, 6_000, 20_000, 150_000, far, 0)),
        (b"\x02" * 32, FlexOffer("0x" + "22" * 20, 1, 9_000, 6_000, 10_000, 100_000, near, 0)),  # cheapest, wrong place
        (b"\x03" * 32, FlexOffer("0x" + "33" * 20, 1, 9_000, 6_000, 30_000, 200_000, far, 0)),
        (b"\x04" * 32, FlexOffer("0x" + "44" * 20, 1, 9_000, 6_000, 90_000, 290_000, far, 0)),  # dearest
    ]
    result = award(model, engine, schedule, 1, request, offers)
    assert result.awarded == [b"\x01" * 32, b"\x03" * 32]  # 6 + 6 kW cover the 10 kW, cheapest first
    rows = {r["offer_id"]: r for r in result.report["offers"]}
    near_row = rows["0x" + "02" * 32]
    assert not near_row["eligible"] and near_row["relief_ratio"] < RELIEF_THRESHOLD
    assert "below the threshold" in near_row["reason"]
    assert rows["0x" + "01" * 32]["relief_ratio"] == pytest.approx(1.0)
    assert rows["0x" + "04" * 32]["reason"] == "the requested power was covered by cheaper offers"
    assert result.report["awarded_power_w"] == 12_000 and len(result.hash) == 32

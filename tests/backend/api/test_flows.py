"""GET /network/slots/{ds}/flows: a cleared slot's loading of every line and transformer and voltage
of every bus, re-run from public facts, checked against pandapower run independently here (the
net and SimBench's profiles as simbench itself applies them, the orders at their buses)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pytest
from tests.backend.api.conftest import start_api
from tests.backend.api.test_errors import refused
from tests.backend.api.test_overview import trade_a_slot

from gridledger.api.routes import flows as flows_route
from gridledger.chain.connection import FIRST_PROSUMER_INDEX, derive_account
from gridledger.config import Settings
from gridledger.market.orders import Side
from gridledger.network.model import UK_LIMITS, NetworkModel
from gridledger.service.flows import FlowCache
from gridledger.store.reports import ReportStore


def independent_run(model: NetworkModel, day: int, slot: int, replaced: list[int], market_w: dict[int, float]):
    """pandapower on a fresh copy of the model's net: SimBench's absolute values for the profile
    step (simbench's own function), the participants' household loads removed, their net market
    power as loads at their buses (W, load positive)."""
    import pandapower
    import simbench

    net = copy.deepcopy(model.net)
    step = (day - 1) * 96 + slot
    profiles = simbench.get_absolute_values(net, profiles_instead_of_study_cases=True)
    net.load["p_mw"] = profiles[("load", "p_mw")].iloc[step].to_numpy(float)
    net.load["q_mvar"] = profiles[("load", "q_mvar")].iloc[step].to_numpy(float)
    net.sgen["p_mw"] = profiles[("sgen", "p_mw")].iloc[step].to_numpy(float)
    net.sgen["q_mvar"] = 0.0
    net.load["scaling"], net.sgen["scaling"] = 1.0, 1.0
    net.load.loc[replaced, ["p_mw", "q_mvar"]] = 0.0
    for bus, w in market_w.items():
        pandapower.create_load(net, bus=bus, p_mw=w / 1e6)
    pandapower.runpp(net, max_iteration=30)
    return net


def test_a_cleared_slot_s_flows_are_an_independent_pandapower_run_of_it(api, wallets, monkeypatch) -> None:
    slot, _, _ = trade_a_slot(api, wallets)  # Alice sells 1.5 kWh at bus 3, Bob bids for 2 kWh at bus 4
    assert refused(lambda: api.client.get(f"/network/slots/{slot}/flows"), 404)["detail"].endswith(
        "has not been cleared yet"
    )
    api.move_time_to(slot - 300)
    api.client.request("POST", f"/slots/{slot}/clearing", signer=api.ledger.roles.facilitator)
    report = api.client.get(f"/slots/{slot}/network-report")
    flows = api.client.get(f"/network/slots/{slot}/flows")

    model = api.service.ctx.model
    assert (flows["report_hash"], flows["matches_report"], flows["engine"]) == (
        report["report_hash"],
        True,
        "pandapower",
    )
    assert [len(flows[k]) for k in ("lines", "trafos", "buses")] == [len(model.net.line), 1, len(model.net.bus)]
    assert flows["curtailments"] == [] and flows["activations"] == {}

    moment = datetime.fromtimestamp(slot, tz=UTC)
    day, slot_of_day = moment.timetuple().tm_yday, moment.hour * 4 + moment.minute // 15
    baseline = report["report"]["baseline"]
    assert (baseline["day"], baseline["slot"]) == (day, slot_of_day)
    # Each order's energy flows at its prosumer's bus (a sale injects, a purchase withdraws: 4 W per Wh).
    net = independent_run(model, day, slot_of_day, baseline["replaced_loads"], {3: -1_500 * 4.0, 4: 2_000 * 4.0})
    for kind, table, key in (("lines", net.res_line, "loading_percent"), ("trafos", net.res_trafo, "loading_percent")):
        served = {e["index"]: e[key] for e in flows[kind]}
        for index in [*table.index[:3], table[key].idxmax()]:
            assert served[int(index)] == pytest.approx(float(table.at[index, key]), rel=1e-9), (kind, index)
    voltages = {b["index"]: b["vm_pu"] for b in flows["buses"]}
    for bus in (3, 4, int(net.res_bus.vm_pu.idxmin()), int(net.res_bus.vm_pu.idxmax())):
        assert voltages[bus] == pytest.approx(float(net.res_bus.at[bus, "vm_pu"]), rel=1e-12), bus
    check = report["report"]["check"]
    assert max(e["loading_percent"] for e in flows["lines"]) == pytest.approx(
        check["max_line_loading_percent"], abs=1e-4
    )
    assert min(voltages.values()) == pytest.approx(check["v_min_pu"], abs=1e-6)

    # Cached per slot: asked again, the same answer without another power flow.
    monkeypatch.setattr(flows_route, "slot_flows", lambda *_: pytest.fail("a cached slot was solved again"))
    assert api.client.get(f"/network/slots/{slot}/flows") == flows
    assert len(api.client.http.app.state.slot_flows) == 1


def test_flows_are_refused_for_a_bad_slot_an_uncleared_one_and_a_report_the_chain_does_not_confirm(
    api, wallets
) -> None:
    bad = refused(lambda: api.client.get("/network/slots/901/flows"), 422)
    assert bad["fields"][0]["field"] == "path.delivery_start"
    assert "multiple of 900" in bad["fields"][0]["problem"]
    never = api.next_slot() + 9_000
    assert (
        "has no orders and no clearing"
        in refused(lambda: api.client.get(f"/network/slots/{never}/flows"), 404)["detail"]
    )

    slot, _, _ = trade_a_slot(api, wallets)
    api.move_time_to(slot - 300)
    api.client.request("POST", f"/slots/{slot}/clearing", signer=api.ledger.roles.facilitator)
    store = ReportStore(api.service.ctx.settings.database)
    row = store.get(api.ledger.market.address, slot)
    honest = json.dumps(row["report"])
    row["report"]["curtailments"] = [{"bus": 3, "side": "sell", "curtailed_wh": 500, "reasons": []}]
    store.table.update((api.ledger.market.address, slot), {"report": json.dumps(row["report"])})
    conflict = refused(lambda: api.client.get(f"/network/slots/{slot}/flows"), 409)
    assert "hashes to" in conflict["detail"] and "the chain has" in conflict["detail"]
    store.table.update((api.ledger.market.address, slot), {"report": honest})  # nothing was cached meanwhile
    assert api.client.get(f"/network/slots/{slot}/flows")["matches_report"] is True


def test_the_cache_keeps_the_latest_slots_and_drops_the_least_recently_used() -> None:
    cache = FlowCache(size=2)
    cache.put(900, {"slot": 900})
    cache.put(1_800, {"slot": 1_800})
    assert cache.get(900) == {"slot": 900}  # 900 is now the most recent
    cache.put(2_700, {"slot": 2_700})
    assert (cache.get(1_800), cache.get(900), cache.get(2_700), len(cache)) == (
        None,
        {"slot": 900},
        {"slot": 2_700},
        2,
    )


FAR, NEAR = 65, 62  # 1-LV-rural2--0-sw: the weakest bus and the transformer's LV bus


@pytest.fixture(scope="module")
def rural2() -> NetworkModel:
    return NetworkModel.load("1-LV-rural2--0-sw", UK_LIMITS)


def test_a_curtailed_slot_s_flows_include_the_curtailment(ledger, tmp_path, rural2, policy) -> None:
    """Chargers at the end of a weak feeder buying from sellers at the transformer breach the UK
    voltage band; the curtailed schedule, not the traded one, is what the flows show."""
    with start_api(ledger, str(tmp_path / "f.sqlite"), rural2, policy) as api:
        keys = [derive_account(Settings().mnemonic, FIRST_PROSUMER_INDEX + i) for i in range(2 * CHARGERS)]
        buyers = keys[:CHARGERS]
        for i, key in enumerate(keys):
            api.register(key, meter_id=700 + i, bus=FAR if key in buyers else NEAR, capacity_w=11_000)
        for key in buyers:
            api.fund(key)
        slot = api.next_slot()
        placed = [
            api.client.place(
                k,
                side=Side.BUY if k in buyers else Side.SELL,
                delivery_start=slot,
                energy_wh=2_750,
                price_per_kwh=300_000 if k in buyers else 100_000,
            )
            for k in keys
        ]
        for p in placed:
            api.wait_for(p["order_hash"], "on_chain")
        api.move_time_to(slot - 300)
        cleared = api.client.request("POST", f"/slots/{slot}/clearing", signer=api.ledger.roles.facilitator)
        report = api.client.get(f"/slots/{slot}/network-report")["report"]
        assert cleared["curtailed_wh"] > 0 and report["curtailments"]

        flows = api.client.get(f"/network/slots/{slot}/flows")
        assert flows["matches_report"] is True
        assert flows["curtailments"] == report["curtailments"]
        far = next(b["vm_pu"] for b in flows["buses"] if b["index"] == FAR)
        assert far == pytest.approx(report["check"]["v_min_pu"], abs=1e-6) and far >= UK_LIMITS.v_min_pu
        # The traded schedule without its curtailment would be below the band at the far bus.
        baseline = report["baseline"]
        traded = independent_run(
            rural2,
            baseline["day"],
            baseline["slot"],
            baseline["replaced_loads"],
            {FAR: CHARGERS * 2_750 * 4.0, NEAR: -CHARGERS * 2_750 * 4.0},
        )
        assert float(traded.res_bus.at[FAR, "vm_pu"]) < UK_LIMITS.v_min_pu < far


CHARGERS = 10  # 11 kW each: the far bus falls to ~0.93 pu at any time of day, below the UK band

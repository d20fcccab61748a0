"""The dashboard's read routes (slots with price and volume, the grid, flexibility requests, a
slot's audit), the change feed behind GET /events, and the page served at /."""

from __future__ import annotations

import copy
import json

import pandas as pd
from fastapi import FastAPI
from fastapi.testclient import TestClient
from tests.backend.api.test_errors import refused
from tests.conftest import flex_request_body

from gridledger.api.routes.events import frame
from gridledger.dashboard import BUILD_DIR, NOT_BUILT, mount_dashboard
from gridledger.encoding import to_hex
from gridledger.market.orders import Side
from gridledger.service.queries import EventFeed, _geodata, _schematic


def trade_a_slot(api, wallets) -> tuple[int, dict, dict]:
    alice, bob = wallets
    slot = api.next_slot()
    sell = api.client.place(alice, side=Side.SELL, delivery_start=slot, energy_wh=1_500, price_per_kwh=90_000)
    buy = api.client.place(bob, side=Side.BUY, delivery_start=slot, energy_wh=2_000, price_per_kwh=280_000)
    for order in (sell, buy):
        api.wait_for(order["order_hash"], "on_chain")
    return slot, sell, buy


def test_market_slots_show_the_book_then_price_and_volume(api, wallets) -> None:
    slot, _, _ = trade_a_slot(api, wallets)
    [open_slot] = api.client.get("/market/slots")
    assert open_slot == {
        "delivery_start": slot,
        "gate_closure": slot - 300,
        "status": "open",
        "orders": 2,
        "bid_wh": 2_000,
        "ask_wh": 1_500,
        "clearing_price_per_kwh": None,
        "traded_wh": None,
        "curtailed_wh": None,
        "network_passed": None,
    }
    api.move_time_to(slot - 300)
    api.client.request("POST", f"/slots/{slot}/clearing", signer=api.ledger.roles.facilitator)
    [cleared] = api.client.get("/market/slots?limit=1")
    assert (cleared["status"], cleared["clearing_price_per_kwh"], cleared["traded_wh"]) == ("cleared", 185_000, 1_500)
    assert (cleared["curtailed_wh"], cleared["network_passed"]) == (0, True)
    too_few = refused(lambda: api.client.get("/market/slots?limit=0"), 422)
    assert too_few["error"] == "InvalidRequest" and "limit" in too_few["fields"][0]["field"]


def test_the_grid_is_the_published_model_with_its_geodata(api, wallets) -> None:
    grid = api.client.get("/network/grid")
    net = api.service.ctx.model.net
    assert grid["network_model"] == "1-LV-semiurb5--0-sw"
    assert grid["model_version"] == to_hex(api.service.ctx.model.version)
    assert (len(grid["buses"]), len(grid["lines"]), len(grid["trafos"])) == (
        len(net.bus),
        len(net.line),
        len(net.trafo),
    )
    assert grid["limits"] == {"max_loading_percent": 100.0, "v_min_pu": 0.9, "v_max_pu": 1.1}
    assert grid["participant_buses"] == [3, 4]  # Alice's and Bob's connections
    first = json.loads(net.bus.at[net.bus.index[0], "geo"])["coordinates"]
    assert grid["geodata"] is True
    assert (grid["buses"][0]["x"], grid["buses"][0]["y"]) == (first[0], first[1])
    lines = {line["index"]: (line["from_bus"], line["to_bus"]) for line in grid["lines"]}
    assert lines == {int(i): (int(r.from_bus), int(r.to_bus)) for i, r in net.line.iterrows()}


def test_a_model_without_geodata_is_drawn_as_a_tree_from_the_slack_bus(semiurb5) -> None:
    net = copy.deepcopy(semiurb5.net)
    net.bus["geo"] = pd.Series([None] * len(net.bus), index=net.bus.index, dtype=object)
    assert _geodata(net) is None
    positions = _schematic(net)
    assert set(positions) == {int(b) for b in net.bus.index}
    slack = int(net.ext_grid.bus.iloc[0])
    assert positions[slack][0] == 0.0
    # Every line and transformer joins buses one column apart: the feeder tree, drawn by depth.
    pairs = [
        *zip(net.line.from_bus, net.line.to_bus, strict=True),
        *zip(net.trafo.hv_bus, net.trafo.lv_bus, strict=True),
    ]
    assert all(abs(positions[int(a)][0] - positions[int(b)][0]) == 1 for a, b in pairs)
    leaves = [p for b, p in positions.items() if sum(int(b) in (int(x), int(y)) for x, y in pairs) == 1 and b != slack]
    assert sorted(y for _, y in leaves) == [float(i) for i in range(len(leaves))]  # one row per leaf


def test_the_audit_confirms_a_cleared_slot_and_refuses_an_unknown_one(api, wallets) -> None:
    slot, _, _ = trade_a_slot(api, wallets)
    assert refused(lambda: api.client.get(f"/audit/slots/{slot}"), 404)["detail"].endswith("has not been cleared yet")
    api.move_time_to(slot - 300)
    api.client.request("POST", f"/slots/{slot}/clearing", signer=api.ledger.roles.facilitator)
    assert api.client.get(f"/audit/slots/{slot}") == {"delivery_start": slot, "confirmed": True, "differences": []}
    # A report altered after the commit: the audit names the mismatch.
    db = api.service.ctx.db
    db.execute("""update network_reports set report = replace(report, '"engine":"', '"engine":"altered ')""")
    db.conn.commit()
    audit = api.client.get(f"/audit/slots/{slot}")
    assert audit["confirmed"] is False and audit["differences"]


def test_flexibility_requests_are_listed_newest_first(api, wallets) -> None:
    assert api.client.get("/flex/requests") == []
    ledger, dso = api.ledger, api.ledger.roles.dso
    api.chain(lambda: (ledger.fund_gas(dso.address, 10**18), ledger.mint(dso.address, 50_000_000)))
    start = api.next_slot() + 4 * 3_600
    body = flex_request_body(start)
    first = api.client.request("POST", "/flex/requests", body=body, signer=dso)
    second = api.client.request("POST", "/flex/requests", body=body | {"power_w": 5_000}, signer=dso)
    listed = api.client.get("/flex/requests")
    assert [r["request_id"] for r in listed] == [second["request_id"], first["request_id"]]
    assert listed[1] == api.client.get(f"/flex/requests/{first['request_id']}")


def test_the_event_feed_sends_each_change_once_from_its_start(api, wallets) -> None:
    feed = EventFeed(api.service.ctx)
    assert feed.poll() == []  # the state when a client connects is not replayed
    slot, sell, buy = trade_a_slot(api, wallets)
    events = feed.poll()
    kinds = [(kind, data["order_hash"]) for kind, data in events]
    assert sorted(kinds) == sorted(
        [(k, o["order_hash"]) for k in ("order_accepted", "order_on_chain") for o in (sell, buy)]
    )
    assert feed.poll() == []
    alice = wallets[0]
    spare = api.client.place(alice, side=Side.BUY, delivery_start=slot, energy_wh=500, price_per_kwh=100_000)
    api.wait_for(spare["order_hash"], "on_chain")
    api.client.cancel(alice, spare["order_hash"])
    api.wait_for(spare["order_hash"], "cancelled")
    assert [(k, d["order_hash"]) for k, d in feed.poll()] == [
        ("order_accepted", spare["order_hash"]),
        ("order_on_chain", spare["order_hash"]),
        ("order_cancelled", spare["order_hash"]),
    ]
    api.move_time_to(slot - 300)
    api.client.request("POST", f"/slots/{slot}/clearing", signer=api.ledger.roles.facilitator)
    cleared = [e for e in feed.poll() if e[0] == "slot_cleared"]
    assert cleared == [
        (
            "slot_cleared",
            {"delivery_start": slot, "clearing_price_per_kwh": 185_000, "traded_wh": 1_500, "status": "cleared"},
        )
    ]
    text = frame(*cleared[0])
    assert text.startswith("event: slot_cleared\ndata: ") and text.endswith("\n\n")
    assert json.loads(text.split("data: ", 1)[1])["data"]["traded_wh"] == 1_500


def test_events_are_documented_as_an_event_stream(api) -> None:
    op = api.client.get("/openapi.json")["paths"]["/events"]["get"]
    stream = op["responses"]["200"]["content"]["text/event-stream"]["schema"]
    assert stream["properties"]["kind"]["enum"] == [
        "order_accepted",
        "order_on_chain",
        "order_cancelled",
        "slot_cleared",
        "slot_settled",
        "flexibility",
    ]


def test_the_page_is_served_at_the_root_and_the_api_keeps_its_paths(api) -> None:
    page = api.client.http.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="app.js">' in page.text
    script = api.client.http.get("/app.js")
    assert script.status_code == 200 and "eth_signTypedData_v4" in script.text  # bundled, no CDN
    assert "https://" not in page.text
    assert api.client.get("/health")["status"] == "ok"
    missing = api.client.http.get("/no-such-page")
    assert missing.status_code == 404 and missing.json()["error"]
    assert (BUILD_DIR / "index.html").is_file()


def test_an_unbuilt_dashboard_says_how_to_build_it(tmp_path) -> None:
    app = FastAPI()
    mount_dashboard(app, tmp_path / "nothing-here")
    answer = TestClient(app).get("/")
    assert answer.status_code == 503 and answer.text == NOT_BUILT
    assert "scripts/setup.sh" in answer.text

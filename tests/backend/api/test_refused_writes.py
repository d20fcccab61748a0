"""A refused privileged write writes nothing, including repeats: no report stored for a clearing
or an award the chain refuses, no reading changed by a repeated post."""

from __future__ import annotations

from tests.backend.api.test_errors import refused
from tests.backend.api.test_flexibility_api import flex  # noqa: F401  (fixture)

from gridledger.market.orders import Side


def test_a_clearing_refused_before_gate_closure_stores_no_report(api, wallets) -> None:
    alice, bob = wallets
    slot = api.next_slot()
    api.client.place(alice, side=Side.SELL, delivery_start=slot, energy_wh=400, price_per_kwh=50_000)
    placed = api.client.place(bob, side=Side.BUY, delivery_start=slot, energy_wh=400, price_per_kwh=60_000)
    api.wait_for(placed["order_hash"], "on_chain")
    early = refused(
        lambda: api.client.request("POST", f"/slots/{slot}/clearing", signer=api.ledger.roles.facilitator), 409
    )
    assert early["error"] == "GateNotClosed"
    assert refused(lambda: api.client.get(f"/slots/{slot}/network-report"), 404)["error"] == "NotFoundError"
    assert api.count("network_reports") == 0


def test_an_award_refused_before_the_deadline_stores_no_report(api, wallets, flex) -> None:  # noqa: F811
    _, bob = wallets
    posted, _ = flex
    rid = posted["request_id"]
    api.client.offer(bob, rid, power_w=4_000, availability_price_per_kwh=10_000, utilisation_price_per_kwh=100_000)
    early = refused(
        lambda: api.client.request("POST", f"/flex/requests/{rid}/award", signer=api.ledger.roles.facilitator), 409
    )
    assert early["error"] == "AwardTooEarly"
    assert refused(lambda: api.client.get(f"/flex/requests/{rid}/award"), 404)["error"] == "NotFoundError"
    assert api.count("flex_award_reports") == 0


def test_repeated_meter_readings_are_refused_and_change_nothing(api, wallets) -> None:
    alice, bob = wallets
    slot = api.next_slot()
    api.move_time_to(slot + 900)
    meter = api.ledger.roles.meter
    first = [{"account": alice.address, "net_wh": -100}, {"account": bob.address, "net_wh": 250}]
    api.client.request("POST", f"/slots/{slot}/meter-readings", body={"readings": first}, signer=meter)
    again = [{"account": alice.address, "net_wh": 9_999}]
    repeat = refused(
        lambda: api.client.request("POST", f"/slots/{slot}/meter-readings", body={"readings": again}, signer=meter),
        409,
    )
    assert repeat["error"] == "MeterReadingAlreadyPosted"
    rows = api.service.ctx.db.execute(
        "select account, net_wh from meter_readings where delivery_start = ? order by account", [slot]
    ).fetchall()
    assert dict(rows) == {alice.address: -100, bob.address: 250}

"""A slot traded through the API: orders, book, clearing with its network report, metering,
settlement; and the index agreeing with the chain at every step."""

from __future__ import annotations

from eth_utils.crypto import keccak
from tests.backend.api.conftest import BALANCING_FLOAT, DEPOSIT

from gridledger.market.orders import Side


def test_service_describes_itself(api, wallets) -> None:
    health = api.client.get("/health")
    assert health["status"] == "ok"
    assert health["chain_id"] == api.ledger.chain.chain_id
    assert health["contracts"]["EnergyMarket"] == api.ledger.market.address
    assert health["indexer_lag_blocks"] == 0 and health["relay_queue"] == 0
    assert health["indexed_block"] == api.chain(lambda: api.ledger.chain.w3.eth.block_number)
    version = api.client.get("/version")
    assert version["eip712_domain"]["verifyingContract"] == api.ledger.market.address
    assert version["gate_closure_seconds"] == 300
    schema = api.client.get("/openapi.json")
    for path in ("/orders", "/orders/{order_hash}/cancellation", "/slots/{delivery_start}/network-report"):
        assert path in schema["paths"]
    assert api.client.http.get("/docs").status_code == 200


def test_a_slot_traded_over_http_settles_and_the_index_agrees_with_the_chain(api, wallets) -> None:
    alice, bob = wallets
    slot = api.next_slot()
    sell = api.client.place(alice, side=Side.SELL, delivery_start=slot, energy_wh=1_500, price_per_kwh=90_000)
    buy = api.client.place(bob, side=Side.BUY, delivery_start=slot, energy_wh=2_000, price_per_kwh=280_000)
    assert sell["status"] == buy["status"] == "accepted"
    api.wait_for(sell["order_hash"], "on_chain")
    api.wait_for(buy["order_hash"], "on_chain")

    # The book, and Bob's escrow (2 kWh at 0.28) locked on-chain and in the index alike.
    book = api.client.get(f"/slots/{slot}/book")
    assert book["bids"] == [{"price_per_kwh": 280_000, "energy_wh": 2_000, "orders": 1, "cumulative_wh": 2_000}]
    assert book["asks"] == [{"price_per_kwh": 90_000, "energy_wh": 1_500, "orders": 1, "cumulative_wh": 1_500}]
    assert api.client.get(f"/participants/{bob.address}")["market_balance"] == {
        "available": DEPOSIT - 560_000,
        "locked": 560_000,
    }
    assert api.chain(lambda: api.ledger.account_of(bob.address)) == (DEPOSIT - 560_000, 560_000)

    api.move_time_to(slot - 300)
    cleared = api.client.request("POST", f"/slots/{slot}/clearing", signer=api.ledger.roles.facilitator)
    assert (cleared["status"], cleared["clearing_price_per_kwh"], cleared["traded_wh"]) == ("cleared", 185_000, 1_500)
    assert cleared["network_passed"] is True and cleared["curtailed_wh"] == 0
    assert {(t["prosumer"], t["side"], t["filled_wh"], t["amount"]) for t in cleared["trades"]} == {
        (alice.address, "sell", 1_500, 277_500),
        (bob.address, "buy", 1_500, 277_500),
    }
    assert api.client.get(f"/slots/{slot}/trades") == cleared["trades"]

    # The network report over HTTP is the one whose hash the chain holds.
    report = api.client.get(f"/slots/{slot}/network-report")
    state = api.chain(lambda: api.ledger.slot_state(slot))
    canonical = __import__("json").dumps(report["report"], sort_keys=True, separators=(",", ":")).encode()
    assert "0x" + keccak(canonical).hex() == report["report_hash"] == "0x" + state.network_report_hash.hex()
    assert report["report"]["delivery_start"] == slot and report["passed"] is True
    assert report["model_version"] == cleared["network_model_version"]

    api.move_time_to(slot + 900)
    readings = [{"account": alice.address, "net_wh": -1_200}, {"account": bob.address, "net_wh": 1_500}]
    posted = api.client.request(
        "POST", f"/slots/{slot}/meter-readings", body={"readings": readings}, signer=api.ledger.roles.meter
    )
    assert posted == {"delivery_start": slot, "posted": 2}
    settled = api.client.request("POST", f"/slots/{slot}/settlement", signer=api.ledger.roles.facilitator)
    assert settled["status"] == "settled"
    assert settled["meter_readings_wh"] == {alice.address: -1_200, bob.address: 1_500}
    # Alice fed in 300 Wh less than she sold: she buys it back at the shortfall price 0.40/kWh.
    assert settled["net_payments"] == {alice.address: 277_500 - 120_000, bob.address: -277_500}
    assert api.wait_for(sell["order_hash"], "settled")["settlement"]["imbalance_charge"] == 120_000

    # Every figure the API serves agrees with the chain.
    for account in (alice, bob, api.ledger.roles.balancing):
        served = api.client.get(f"/participants/{account.address}") if account in wallets else None
        on_chain = api.chain(lambda a=account: api.ledger.account_of(a.address))
        row = api.service.ctx.db.execute(
            "select available, locked from accounts where account = ?", [account.address]
        ).fetchone()
        assert tuple(row) == on_chain
        if served:
            assert (served["market_balance"]["available"], served["market_balance"]["locked"]) == on_chain
    assert api.chain(lambda: api.ledger.account_of(alice.address)) == (DEPOSIT + 277_500 - 120_000, 0)
    assert api.chain(lambda: api.ledger.account_of(api.ledger.roles.balancing.address))[0] == BALANCING_FLOAT + 120_000
    final = api.chain(lambda: api.ledger.slot_state(slot))
    served_slot = api.client.get(f"/slots/{slot}/clearing")
    assert (served_slot["status"], served_slot["fills_hash"]) == (final.status, "0x" + final.fills_hash.hex())
    assert [t["order_hash"] for t in api.client.get(f"/participants/{alice.address}/trades")] == [sell["order_hash"]]


def test_a_signed_cancellation_over_http_releases_the_escrow(api, wallets) -> None:
    _, bob = wallets
    slot = api.next_slot()
    buy = api.client.place(bob, side=Side.BUY, delivery_start=slot, energy_wh=1_000, price_per_kwh=200_000)
    api.wait_for(buy["order_hash"], "on_chain")
    assert api.client.cancel(bob, buy["order_hash"]) == {"order_hash": buy["order_hash"], "cancellation": "pending"}
    api.wait_for(buy["order_hash"], "cancelled")
    api.eventually(lambda: api.client.get(f"/orders/{buy['order_hash']}")["cancellation"]["status"] == "done")
    assert api.chain(lambda: api.ledger.account_of(bob.address)) == (DEPOSIT, 0)
    assert api.client.get(f"/participants/{bob.address}")["market_balance"] == {"available": DEPOSIT, "locked": 0}
    assert api.chain(lambda: api.ledger.is_cancelled(bytes.fromhex(buy["order_hash"][2:])))


def test_an_order_cancelled_before_relay_never_reaches_the_ledger(ledger, tmp_path, semiurb5) -> None:
    from tests.backend.api.conftest import start_api

    from gridledger.service.relayer import RelayPolicy

    with start_api(ledger, str(tmp_path / "f.sqlite"), semiurb5, RelayPolicy(batch_size=100, max_wait_s=3600)) as api:
        from gridledger.chain.connection import FIRST_PROSUMER_INDEX, derive_account
        from gridledger.config import Settings

        alice = derive_account(Settings().mnemonic, FIRST_PROSUMER_INDEX)
        api.register(alice, meter_id=7, bus=3)
        slot = api.next_slot()
        sell = api.client.place(alice, side=Side.SELL, delivery_start=slot, energy_wh=500, price_per_kwh=50_000)
        api.client.cancel(alice, sell["order_hash"])
        api.wait_for(sell["order_hash"], "withdrawn")
        api.eventually(lambda: api.client.get(f"/orders/{sell['order_hash']}")["cancellation"]["status"] == "done")
        # The nonce is burnt on-chain, so the signed order can never be relayed by anyone.
        assert api.chain(lambda: api.ledger.next_nonce(alice.address)) == 1
        api.relay_now()
        assert api.chain(lambda: api.ledger.slot_state(slot)).open_orders == 0
        assert api.client.get(f"/slots/{slot}/book")["asks"] == []


def test_the_wallets_orders_show_every_status(api, wallets) -> None:
    alice, _ = wallets
    slot = api.next_slot()
    first = api.client.place(alice, side=Side.SELL, delivery_start=slot, energy_wh=100, price_per_kwh=1)
    second = api.client.place(alice, side=Side.SELL, delivery_start=slot + 900, energy_wh=200, price_per_kwh=2)
    api.wait_for(second["order_hash"], "on_chain")
    orders = api.client.get(f"/participants/{alice.address}/orders")
    assert [(o["order_hash"], o["order"]["nonce"], o["status"]) for o in orders] == [
        (first["order_hash"], 0, "on_chain"),
        (second["order_hash"], 1, "on_chain"),
    ]
    assert api.client.get(f"/participants/{alice.address}")["next_nonce"] == 2

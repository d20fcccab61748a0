"""Live coordination: a slot that breaches the voltage band on a weak rural feeder is cleared
by the service together with the DSO's awarded flexibility, and the audit confirms it."""

from __future__ import annotations

import json

import pytest
from tests.backend.api.conftest import start_api

from gridledger.audit import audit_slot
from gridledger.chain.connection import FIRST_PROSUMER_INDEX, derive_account
from gridledger.config import Settings
from gridledger.market.orders import Side
from gridledger.network.model import UK_LIMITS, NetworkModel
from gridledger.network.validation import BatchEngine
from gridledger.service.relayer import RelayPolicy
from gridledger.store.reports import ReportStore

FAR, NEAR = 65, 62  # 1-LV-rural2--0-sw: the weakest bus and the transformer's LV bus
CHARGERS = 10


@pytest.fixture(scope="module")
def rural2() -> NetworkModel:
    return NetworkModel.load("1-LV-rural2--0-sw", UK_LIMITS)


def test_a_congested_slot_is_cleared_with_flexibility_and_audited(ledger, tmp_path, rural2) -> None:
    database = str(tmp_path / "f.sqlite")
    policy = RelayPolicy(batch_size=100, max_wait_s=0.05)
    with start_api(ledger, database, rural2, policy) as api:
        keys = [derive_account(Settings().mnemonic, FIRST_PROSUMER_INDEX + i) for i in range(2 * CHARGERS + 2)]
        buyers, sellers, providers = keys[:CHARGERS], keys[CHARGERS : 2 * CHARGERS], keys[2 * CHARGERS :]
        for i, key in enumerate(keys):
            bus = NEAR if key in sellers else FAR
            api.register(key, meter_id=500 + i, bus=bus, capacity_w=11_000 if key not in providers else 20_000)
        for key in buyers:
            api.fund(key)
        dso = ledger.roles.dso
        api.chain(lambda: (ledger.fund_gas(dso.address, 10**18), ledger.mint(dso.address, 50_000_000)))

        slot = api.next_slot() + 3_600
        request = {
            "service": "secure",
            "direction": "up",
            "baseline": "historical",
            "congestion_bus": FAR,
            "power_w": 16_000,
            "window_start": slot,
            "window_slots": 4,
            "bid_deadline": slot - 1_800,
            "max_availability_price_per_kwh": 50_000,
            "max_utilisation_price_per_kwh": 200_000,
        }
        rid = api.client.request("POST", "/flex/requests", body=request, signer=dso)["request_id"]
        offers = [
            api.client.offer(
                p, rid, power_w=8_000, availability_price_per_kwh=10_000, utilisation_price_per_kwh=120_000
            )
            for p in providers
        ]
        api.move_time_to(slot - 1_799)
        api.client.request("POST", f"/flex/requests/{rid}/award", signer=ledger.roles.facilitator)

        placed = [
            api.client.place(b, side=Side.BUY, delivery_start=slot, energy_wh=2_750, price_per_kwh=300_000)
            for b in buyers
        ] + [
            api.client.place(s, side=Side.SELL, delivery_start=slot, energy_wh=2_750, price_per_kwh=100_000)
            for s in sellers
        ]
        for p in placed:
            api.wait_for(p["order_hash"], "on_chain")
        api.move_time_to(slot - 300)
        cleared = api.client.request("POST", f"/slots/{slot}/clearing", signer=ledger.roles.facilitator)
        assert cleared["network_passed"] is True

        report = api.client.get(f"/slots/{slot}/network-report")["report"]
        flexibility = report["flexibility"]
        assert flexibility["choice"] in ("flex", "both") and flexibility["flex_wh"] > 0
        assert {u["offer_id"] for u in flexibility["units"]} == {o["offer_id"] for o in offers}
        assert report["check"]["v_min_pu"] >= 0.94
        # Flexibility at 0.12 per kWh is cheaper than curtailing pairs worth 0.20: little or no curtailment.
        assert flexibility["curtailed_wh"] < flexibility["flex_wh"]
        for offer_id, wh in flexibility["activations"].items():
            served = api.client.get(f"/flex/offers/{offer_id}")["deliveries"]
            assert [(d["slot"], d["ordered_wh"]) for d in served] == [(slot, wh)]

        audit = api.chain(lambda: audit_slot(ledger, rural2, BatchEngine(rural2), ReportStore(database), slot))
        assert audit.confirmed, audit.differences
        # The per-element flows re-run with the activations (and any curtailment) give the report's extremes.
        flows = api.client.get(f"/network/slots/{slot}/flows")
        assert flows["matches_report"] is True and flows["activations"] == flexibility["activations"]

        # A report that claims less flexibility than the chain activated is caught.
        store = ReportStore(database)
        row = store.get(ledger.market.address, slot)
        offer_id = next(iter(flexibility["activations"]))
        row["report"]["flexibility"]["activations"][offer_id] -= 1
        store.table.update((ledger.market.address, slot), {"report": json.dumps(row["report"])})
        audit = api.chain(lambda: audit_slot(ledger, rural2, BatchEngine(rural2), ReportStore(database), slot))
        assert any("stored report hashes to" in d for d in audit.differences)
        assert any(f"activation of {offer_id[:14]}" in d and "the chain has" in d for d in audit.differences)

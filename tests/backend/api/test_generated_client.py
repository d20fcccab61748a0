"""A client generated from the live /openapi.json calls every operation in it.

The models come from ``datamodel-code-generator`` run on the document the app serves. Each call
builds its body from the generated request model the operation names, signs it where the
operation's security scheme says so (the project's signing helpers), checks that the answer has
the documented success status and parses it with the generated model for that status. The set
of operations called must be the document's, so a route added without coverage fails here.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from datamodel_code_generator import DataModelType, Formatter, InputFileType, LiteralType, generate
from eth_account.signers.local import LocalAccount
from pydantic import BaseModel, TypeAdapter

from gridledger.flex.products import FlexOffer
from gridledger.market.orders import Order, Side
from gridledger.wallet.funds import sign_permit, sign_withdrawal
from gridledger.wallet.requests import sign_request
from gridledger.wallet.signing import sign_cancellation, sign_offer, sign_order

DSO_FUNDS = 50_000_000


def generated_models(document: dict[str, Any], directory: Path) -> ModuleType:
    target = directory / "generated_api.py"
    generate(
        json.dumps(document),
        input_file_type=InputFileType.OpenAPI,
        output=target,
        output_model_type=DataModelType.PydanticV2BaseModel,
        formatters=[Formatter.RUFF_FORMAT],
        enum_field_as_literal=LiteralType.All,
    )
    spec = importlib.util.spec_from_file_location("generated_api", target)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["generated_api"] = module  # pydantic resolves the models' forward references here
    spec.loader.exec_module(module)
    return module


class GeneratedClient:
    """Calls operations of ``document`` over ``http`` with the generated ``models``."""

    def __init__(self, http: Any, document: dict[str, Any], models: ModuleType, signers: dict[str, LocalAccount]):
        self.http = http
        self.document = document
        self.models = models
        self.signers = signers
        self.called: set[tuple[str, str]] = set()

    def operations(self) -> set[tuple[str, str]]:
        """Every JSON operation (GET /events streams text/event-stream: test_overview.py reads it)."""
        return {
            (method.upper(), path)
            for path, ops in self.document["paths"].items()
            for method, op in ops.items()
            if "text/event-stream" not in op["responses"].get("200", {}).get("content", {})
        }

    def _model(self, schema: dict[str, Any]) -> Any:
        if "$ref" in schema:
            return getattr(self.models, schema["$ref"].rsplit("/", 1)[1])
        assert schema.get("type") == "array", schema
        return list[self._model(schema["items"])]  # type: ignore[misc]

    def call(self, method: str, template: str, body: BaseModel | None = None, **path_params: Any) -> Any:
        operation = self.document["paths"][template][method.lower()]
        path = template.format(**path_params)
        content, headers = b"", {}
        if body is not None:
            documented = operation["requestBody"]["content"]["application/json"]["schema"]
            assert isinstance(body, self._model(documented)), f"{method} {template} takes {documented}"
            content = body.model_dump_json(by_alias=True, exclude_unset=True).encode()
            headers["content-type"] = "application/json"
        else:
            assert not operation.get("requestBody", {}).get("required"), f"{method} {template} needs a body"
        for requirement in operation.get("security", []):
            (scheme,) = requirement
            headers |= sign_request(self.signers[scheme], method, path, content)
        response = self.http.request(method, path, content=content, headers=headers)
        successes = [status for status in operation["responses"] if status.startswith("2")]
        assert str(response.status_code) in successes, (method, path, response.status_code, response.text)
        documented = operation["responses"][str(response.status_code)]["content"]["application/json"]["schema"]
        self.called.add((method.upper(), template))
        return TypeAdapter(self._model(documented)).validate_python(response.json())


def test_a_client_generated_from_the_openapi_document_calls_every_operation(api, wallets, stranger, tmp_path) -> None:
    alice, bob = wallets
    ledger = api.ledger
    document = api.client.http.get("/openapi.json").json()
    m = generated_models(document, tmp_path)
    signers = {
        "FacilitatorSignature": ledger.roles.facilitator,
        "DsoSignature": ledger.roles.dso,
        "MeterOperatorSignature": ledger.roles.meter,
    }
    client = GeneratedClient(api.client.http, document, m, signers)

    # ─── service ───
    assert client.call("GET", "/health").status == "ok"
    version = client.call("GET", "/version")
    market = version.eip712_domain
    flex_domain = version.flex_eip712_domain

    # ─── participants ───
    registration = m.ParticipantCreate(account=stranger.address, meter_id=777, bus=5, capacity_w=10_000)
    registered = client.call("POST", "/participants", registration)
    assert registered.account == stranger.address and registered.next_nonce == 0
    assert client.call("GET", "/participants/{account}", account=stranger.address).bus == 5

    # ─── orders ───
    def order_create(account: LocalAccount, order: Order) -> Any:
        signed = sign_order(account, order, chain_id=market.chainId, market_address=market.verifyingContract)
        return m.OrderCreate(
            prosumer=order.prosumer,
            side=order.side.name.lower(),
            delivery_start=order.delivery_start,
            energy_wh=order.energy_wh,
            price_per_kwh=order.price_per_kwh,
            nonce=order.nonce,
            expiry=order.expiry,
            signature="0x" + (signed.r + signed.vs).hex(),
        )

    def until(order_hash: str, status: str) -> Any:
        deadline = time.monotonic() + 30
        while (state := client.call("GET", "/orders/{order_hash}", order_hash=order_hash)).status != status:
            assert time.monotonic() < deadline, state
            time.sleep(0.05)
        return state

    slot = api.next_slot()
    sell = client.call(
        "POST", "/orders", order_create(alice, Order(alice.address, Side.SELL, slot, 1_000, 90_000, 0, slot))
    )
    buy = client.call("POST", "/orders", order_create(bob, Order(bob.address, Side.BUY, slot, 1_000, 200_000, 0, slot)))
    spare = client.call(
        "POST", "/orders", order_create(alice, Order(alice.address, Side.SELL, slot, 100, 900_000, 1, slot))
    )
    for accepted in (sell, buy, spare):
        assert until(accepted.order_hash, "on_chain").order.delivery_start == slot
    r, vs = sign_cancellation(
        alice, bytes.fromhex(spare.order_hash[2:]), chain_id=market.chainId, market_address=market.verifyingContract
    )
    cancellation = m.CancellationCreate(signature="0x" + (r + vs).hex())
    assert (
        client.call("POST", "/orders/{order_hash}/cancellation", cancellation, order_hash=spare.order_hash).cancellation
        == "pending"
    )
    assert until(spare.order_hash, "cancelled").cancellation is not None

    # ─── slots ───
    book = client.call("GET", "/slots/{delivery_start}/book", delivery_start=slot)
    assert [level.energy_wh for level in book.asks] == [1_000]
    api.move_time_to(slot - 300)
    cleared = client.call("POST", "/slots/{delivery_start}/clearing", delivery_start=slot)
    assert cleared.traded_wh == 1_000 and cleared.network_passed is True
    assert client.call("GET", "/slots/{delivery_start}/clearing", delivery_start=slot) == cleared
    assert client.call("GET", "/slots/{delivery_start}/trades", delivery_start=slot) == cleared.trades
    assert client.call("GET", "/slots/{delivery_start}/network-report", delivery_start=slot).passed is True
    api.move_time_to(slot + 900)
    readings = m.MeterReadingsCreate(
        readings=[
            m.MeterReading(account=alice.address, net_wh=-1_000),
            m.MeterReading(account=bob.address, net_wh=1_000),
        ]
    )
    assert client.call("POST", "/slots/{delivery_start}/meter-readings", readings, delivery_start=slot).posted == 2
    assert client.call("POST", "/slots/{delivery_start}/settlement", delivery_start=slot).status == "settled"
    assert client.call("GET", "/slots/{delivery_start}/settlement", delivery_start=slot).status == "settled"
    orders = client.call("GET", "/participants/{account}/orders", account=alice.address)
    assert {o.order_hash for o in orders} == {sell.order_hash, spare.order_hash}
    trades = client.call("GET", "/participants/{account}/trades", account=alice.address)
    assert [t.settlement is not None for t in trades] == [True]

    # ─── the dashboard's overview ───
    [listed] = client.call("GET", "/market/slots")
    assert (listed.delivery_start, listed.status, listed.traded_wh) == (slot, "settled", 1_000)
    grid = client.call("GET", "/network/grid")
    assert len(grid.buses) == 111 and grid.participant_buses == [3, 4, 5]
    assert client.call("GET", "/audit/slots/{delivery_start}", delivery_start=slot).confirmed is True
    flows = client.call("GET", "/network/slots/{delivery_start}/flows", delivery_start=slot)
    assert flows.matches_report is True and len(flows.buses) == 111

    # ─── flexibility ───
    dso = ledger.roles.dso
    api.chain(lambda: (ledger.fund_gas(dso.address, 10**18), ledger.mint(dso.address, DSO_FUNDS)))
    start = api.next_slot() + 4 * 3_600
    flex_request = m.FlexRequestCreate(
        service="secure",
        direction="up",
        baseline="meter_before_after",
        congestion_bus=4,
        power_w=10_000,
        window_start=start,
        window_slots=4,
        bid_deadline=start - 3_600,
        max_availability_price_per_kwh=100_000,
        max_utilisation_price_per_kwh=300_000,
    )
    posted = client.call("POST", "/flex/requests", flex_request)
    rid = posted.request_id
    assert client.call("GET", "/flex/requests/{request_id}", request_id=rid).status == "open"
    assert [r.request_id for r in client.call("GET", "/flex/requests")] == [rid]
    offer = FlexOffer(bob.address, rid, start, 8_000, 50_000, 200_000, 4, 1)
    signed = sign_offer(bob, offer, chain_id=flex_domain.chainId, flex_address=flex_domain.verifyingContract)
    offer_create = m.FlexOfferCreate(
        provider=offer.provider,
        window_start=offer.window_start,
        power_w=offer.power_w,
        availability_price_per_kwh=offer.availability_price_per_kwh,
        utilisation_price_per_kwh=offer.utilisation_price_per_kwh,
        bus=offer.bus,
        nonce=offer.nonce,
        signature="0x" + (signed.r + signed.vs).hex(),
    )
    offer_id = client.call("POST", "/flex/requests/{request_id}/offers", offer_create, request_id=rid).offer_id
    api.move_time_to(start - 3_600 + 1)
    awarded = client.call("POST", "/flex/requests/{request_id}/award", request_id=rid)
    assert client.call("GET", "/flex/requests/{request_id}/award", request_id=rid) == awarded
    activation = m.ActivationCreate(slot=start, power_w=8_000)
    activated = client.call("POST", "/flex/offers/{offer_id}/activations", activation, offer_id=offer_id)
    assert activated.deliveries[0].ordered_wh == 2_000
    api.move_time_to(start + 4 * 900)
    measurement = m.MeasurementCreate(slot=start, baseline_wh=3_000, actual_wh=1_200)
    measured = client.call("POST", "/flex/offers/{offer_id}/measurements", measurement, offer_id=offer_id)
    assert measured.deliveries[0].measured is True
    assert client.call("POST", "/flex/requests/{request_id}/settlement", request_id=rid).status == "settled"
    assert client.call("GET", "/flex/offers/{offer_id}", offer_id=offer_id).availability_payment == 400_000

    # ─── the clock, and a wallet's money moved by its signatures alone ───
    clock = client.call("GET", "/clock")
    assert clock.last_settled_slot == slot and clock.missing_readings == []
    wallet = client.call("GET", "/wallet/{account}", account=stranger.address)
    api.chain(lambda: ledger.mint(stranger.address, 5_000_000))
    deadline = api.now() + 3_600
    permit = sign_permit(
        stranger,
        domain=wallet.token_eip712_domain.model_dump(),
        spender=wallet.market,
        amount=5_000_000,
        nonce=wallet.permit_nonce,
        deadline=deadline,
    )
    deposit = m.DepositCreate(
        owner=stranger.address, amount=5_000_000, deadline=deadline, signature="0x" + permit.hex()
    )
    assert client.call("POST", "/wallet/deposits", deposit).market_balance.available == 5_000_000
    signature = sign_withdrawal(
        stranger,
        chain_id=market.chainId,
        market_address=market.verifyingContract,
        amount=2_000_000,
        nonce=0,
        deadline=deadline,
    )
    withdrawal = m.WithdrawalCreate(
        owner=stranger.address, amount=2_000_000, nonce=0, deadline=deadline, signature="0x" + signature.hex()
    )
    assert client.call("POST", "/wallet/withdrawals", withdrawal).token_balance == 2_000_000
    payments = client.call("GET", "/wallet/{account}/payments", account=stranger.address)
    assert [(p.kind, p.amount) for p in payments] == [("deposit", 5_000_000), ("withdrawal", -2_000_000)]

    assert client.called == client.operations()

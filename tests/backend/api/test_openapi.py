"""The OpenAPI document says what the API does: every body (signed or not), every response
model, every refusal with the one error body the service sends; and the refusals it documents
are the ones it gives (413 before parsing, the signature before the body)."""

from __future__ import annotations

import json
import subprocess
import sys

from gridledger.api.errors import ErrorBody
from gridledger.wallet.requests import HEADER_ADDRESS, HEADER_NONCE, HEADER_TIMESTAMP, sign_request

JSON = {"content-type": "application/json"}
MIB = 1_048_576
# The routes that read a body, and the routes whose callers sign their requests (by scheme).
BODIES = {
    ("POST", "/participants"): "ParticipantCreate",
    ("POST", "/orders"): "OrderCreate",
    ("POST", "/orders/{order_hash}/cancellation"): "CancellationCreate",
    ("POST", "/slots/{delivery_start}/meter-readings"): "MeterReadingsCreate",
    ("POST", "/flex/requests"): "FlexRequestCreate",
    ("POST", "/flex/requests/{request_id}/offers"): "FlexOfferCreate",
    ("POST", "/flex/offers/{offer_id}/activations"): "ActivationCreate",
    ("POST", "/flex/offers/{offer_id}/measurements"): "MeasurementCreate",
    ("POST", "/wallet/deposits"): "DepositCreate",
    ("POST", "/wallet/withdrawals"): "WithdrawalCreate",
}
SIGNED = {
    ("POST", "/participants"): "FacilitatorSignature",
    ("POST", "/slots/{delivery_start}/clearing"): "FacilitatorSignature",
    ("POST", "/slots/{delivery_start}/meter-readings"): "MeterOperatorSignature",
    ("POST", "/slots/{delivery_start}/settlement"): "FacilitatorSignature",
    ("POST", "/flex/requests"): "DsoSignature",
    ("POST", "/flex/requests/{request_id}/award"): "FacilitatorSignature",
    ("POST", "/flex/requests/{request_id}/settlement"): "FacilitatorSignature",
    ("POST", "/flex/offers/{offer_id}/activations"): "DsoSignature",
    ("POST", "/flex/offers/{offer_id}/measurements"): "MeterOperatorSignature",
}


def operations(document: dict) -> dict[tuple[str, str], dict]:
    return {(method.upper(), path): op for path, ops in document["paths"].items() for method, op in ops.items()}


def test_every_body_response_and_refusal_is_documented(api) -> None:
    document = api.client.get("/openapi.json")
    schemas = document["components"]["schemas"]
    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
    for key, op in operations(document).items():
        body = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        if key in BODIES:
            assert body == {"$ref": f"#/components/schemas/{BODIES[key]}"}, key
            assert schemas[BODIES[key]]["properties"], key
        else:
            assert body is None, key
        signed = [scheme for requirement in op.get("security", []) for scheme in requirement]
        assert signed == ([SIGNED[key]] if key in SIGNED else []), key
        headers = {p["name"] for p in op.get("parameters", []) if p["in"] == "header"}
        assert headers == ({HEADER_ADDRESS, HEADER_TIMESTAMP, HEADER_NONCE} if key in SIGNED else set()), key
        statuses = set(op["responses"])
        successes = {s for s in statuses if s.startswith("2")}
        assert len(successes) == 1, key
        content = op["responses"][successes.pop()]["content"]
        if key == ("GET", "/events"):  # server-sent events: a stream of ServerEvent frames, not JSON
            assert content["text/event-stream"]["schema"]["title"] == "ServerEvent", key
        else:
            assert "$ref" in str(content["application/json"]["schema"]), key
        assert {"413", "503"} <= statuses, key
        if op.get("parameters") or body:
            assert "422" in statuses, key
        if key in SIGNED or key in BODIES:
            assert {"401", "409"} <= statuses, key
        for status in statuses - {"200", "201", "202"}:
            assert op["responses"][status]["content"]["application/json"]["schema"] == error_ref, (key, status)
    assert "HTTPValidationError" not in schemas  # FastAPI's own 422 body, which the API never sends
    assert set(document["components"]["securitySchemes"]) == set(SIGNED.values())


def test_every_refusal_has_the_documented_error_body(api, wallets) -> None:
    alice, _ = wallets
    refusals = [
        api.client.http.get("/orders/0x1234"),  # 422 from path validation
        api.client.http.post("/orders", content=b"{not json", headers=JSON),  # 422, undecodable
        api.client.http.post("/orders", json={"side": "hold"}),  # 422, fields
        api.client.http.get(f"/orders/0x{'ab' * 32}"),  # 404
        api.client.http.post("/participants", json={}),  # 401
        api.client.http.post("/participants", json={}, headers=sign_request(alice, "POST", "/participants", b"{}")),
    ]
    assert [r.status_code for r in refusals] == [422, 422, 422, 404, 401, 403]
    for response in refusals:
        body = ErrorBody.model_validate(response.json(), strict=True)
        assert set(response.json()) == {"error", "detail", "fields"}
        assert bool(body.fields) == (body.error == "InvalidRequest"), response.json()


def test_the_signature_is_checked_before_the_body_and_the_path_before_the_signature(api, wallets) -> None:
    facilitator = api.ledger.roles.facilitator
    unsigned_junk = api.client.http.post("/participants", content=b"{not json", headers=JSON)
    assert unsigned_junk.status_code == 401 and "needs the facilitator's signature" in unsigned_junk.json()["detail"]
    signed_junk = api.client.http.post(
        "/participants",
        content=b"{not json",
        headers=JSON | sign_request(facilitator, "POST", "/participants", b"{not json"),
    )
    assert signed_junk.status_code == 422 and signed_junk.json()["error"] == "InvalidRequest"
    bad_slot = api.client.http.post("/slots/901/clearing")
    assert bad_slot.status_code == 422 and bad_slot.json()["fields"][0]["field"] == "path.delivery_start"
    slot = api.next_slot()
    content = json.dumps({"unexpected": 1}).encode()
    path = f"/slots/{slot}/clearing"
    extra = api.client.http.post(path, content=content, headers=JSON | sign_request(facilitator, "POST", path, content))
    assert extra.status_code == 422 and extra.json()["fields"][0]["field"] == "unexpected"


def test_a_body_above_the_limit_is_refused_with_413_before_it_is_parsed(api, wallets) -> None:
    assert api.service.ctx.settings.max_body_bytes == MIB  # the documented default
    big = b"x" * (2 * MIB)
    # Declared by Content-Length: refused before the signature, the JSON or the route is looked at.
    for path in ("/orders", "/participants", "/slots/901/clearing"):
        response = api.client.http.post(path, content=big, headers=JSON)
        assert response.status_code == 413, (path, response.text)
        body = ErrorBody.model_validate(response.json(), strict=True)
        assert body.error == "BodyTooLargeError"
        assert f"has {2 * MIB} bytes; at most {MIB} bytes are accepted" in body.detail

    # Streamed without a Content-Length (chunked): counted, and refused at the first byte too many.
    def chunks(total: int):
        for _ in range(total // 65_536):
            yield b"x" * 65_536

    streamed = api.client.http.post("/orders", content=chunks(2 * MIB), headers=JSON)
    assert streamed.status_code == 413 and "without a Content-Length" in streamed.json()["detail"]
    # A streamed body within the limit reaches the route whole (here: not JSON, so 422).
    small = api.client.http.post("/orders", content=chunks(4 * 65_536), headers=JSON)
    assert small.status_code == 422 and small.json()["error"] == "InvalidRequest"
    assert api.count("submissions") == 0


def test_the_client_does_not_import_the_service_layer() -> None:
    code = (
        "import sys, gridledger.api.client\nprint(sorted(m for m in sys.modules if m.startswith('gridledger.service')))"
    )
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert imported.strip() == "[]"

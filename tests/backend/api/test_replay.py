"""A signed request, order, cancellation or offer counts once, however its signature is encoded:
every form that recovers to the same signer for the same message (v as 0/1 or 27/28, s or n − s
with the other parity, the 64-byte EIP-2098 form, upper-case hex) is the same act."""

from __future__ import annotations

import json

from tests.backend.api.test_flexibility_api import flex  # noqa: F401  (fixture)

from gridledger.flex.products import FlexOffer
from gridledger.market.orders import Order, Side
from gridledger.wallet.requests import HEADER_SIGNATURE, sign_request
from gridledger.wallet.signing import sign_cancellation

N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def encodings(signature: str) -> dict[str, str]:
    """Every encoding of one secp256k1 signature given as 64 (r ‖ vs) or 65 (r ‖ s ‖ v) bytes of hex.
    (The 64-byte form has no high-s variant: n − s needs the bit that carries the parity.)"""
    raw = bytes.fromhex(signature.removeprefix("0x"))
    r = raw[:32]
    if len(raw) == 64:
        packed = int.from_bytes(raw[32:], "big")
        s, v = packed & ((1 << 255) - 1), 27 + (packed >> 255)
    else:
        s, v = int.from_bytes(raw[32:64], "big"), raw[64] if raw[64] >= 27 else raw[64] + 27
    low = r + s.to_bytes(32, "big")
    high = r + (N - s).to_bytes(32, "big")
    forms = {
        "65 bytes, v 27/28": low + bytes([v]),
        "65 bytes, v 0/1": low + bytes([v - 27]),
        "65 bytes, s high": high + bytes([55 - v]),
        "64 bytes, EIP-2098": r + (s | ((v - 27) << 255)).to_bytes(32, "big"),
    }
    hexes = {name: "0x" + b.hex() for name, b in forms.items()}
    hexes["upper-case hex"] = "0x" + (low + bytes([v])).hex().upper()
    return hexes


def test_a_replayed_dso_request_counts_once_in_every_encoding(api, flex) -> None:  # noqa: F811
    """The replay that posted a second flexibility request and escrowed twice: refused in every form."""
    _, body = flex
    dso = api.ledger.roles.dso
    content = json.dumps(body | {"window_start": body["window_start"] + 900 * 8}).encode()
    headers = {"content-type": "application/json"} | sign_request(dso, "POST", "/flex/requests", content)
    first = api.client.http.post("/flex/requests", content=content, headers=headers)
    assert first.status_code == 201, first.text
    requests_before, balance = api.count("flex_requests"), api.chain(lambda: api.ledger.token_balance(dso.address))
    for name, signature in encodings(headers[HEADER_SIGNATURE]).items():
        replay = api.client.http.post(
            "/flex/requests", content=content, headers=headers | {HEADER_SIGNATURE: signature}
        )
        assert replay.status_code == 409, (name, replay.text)
        assert "replay refused" in replay.json()["detail"], name
    assert api.count("flex_requests") == requests_before
    assert api.chain(lambda: api.ledger.token_balance(dso.address)) == balance  # escrowed once


def test_an_order_a_cancellation_and_an_offer_count_once_in_every_encoding(api, wallets, flex) -> None:  # noqa: F811
    alice, bob = wallets
    slot = api.next_slot()
    body = api.client.order_body(alice, Order(alice.address, Side.SELL, slot, 700, 90_000, 40, slot))
    assert api.client.http.post("/orders", json=body).status_code == 202
    for name, signature in encodings(body["signature"]).items():
        again = api.client.http.post("/orders", json=body | {"signature": signature})
        assert again.status_code in (409, 422), (name, again.text)  # 422: a form the schema does not take
    assert api.count("submissions") == 1

    order_hash = api.client.place(bob, side=Side.BUY, delivery_start=slot, energy_wh=300, price_per_kwh=95_000)[
        "order_hash"
    ]
    api.wait_for(order_hash, "on_chain")
    cancelled = api.client.cancel(bob, order_hash)
    assert cancelled["cancellation"] == "pending"
    r, vs = sign_cancellation(
        bob,
        bytes.fromhex(order_hash[2:]),
        chain_id=api.client.domain["chainId"],
        market_address=api.client.domain["verifyingContract"],
    )
    for name, signature in encodings("0x" + (r + vs).hex()).items():
        again = api.client.http.post(f"/orders/{order_hash}/cancellation", json={"signature": signature})
        assert again.status_code in (409, 422), (name, again.text)
    assert api.count("cancellations") == 1

    posted, request = flex
    rid = posted["request_id"]
    offer = FlexOffer(bob.address, rid, request["window_start"], 2_000, 20_000, 150_000, 4, 0)
    offer_body = api.client.offer_body(bob, offer)
    assert api.client.http.post(f"/flex/requests/{rid}/offers", json=offer_body).status_code == 201
    for name, signature in encodings(offer_body["signature"]).items():
        again = api.client.http.post(f"/flex/requests/{rid}/offers", json=offer_body | {"signature": signature})
        assert again.status_code in (409, 422), (name, again.text)
    assert len(api.client.get(f"/flex/requests/{rid}")["offers"]) == 1

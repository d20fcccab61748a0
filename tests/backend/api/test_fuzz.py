"""No request crashes the service: hostile bodies against every body-taking route, and
schemathesis's generated requests (signed, see ``fuzzing.py``) against every operation.

Every malformed input is a 422 with the API's error body: an integer field given a string, a
float (even ``5.0``), a boolean, ``NaN``/``Infinity``, a number beyond every range; JSON nested
deeper than any parser goes, bytes that are not UTF-8, a body that is not JSON, an empty body, an
array as long as the size limit allows.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fuzzing import fuzz, prepare
from tests.conftest import flex_request_body

from gridledger.api.errors import ErrorBody
from gridledger.wallet.requests import sign_request

ADDRESS = "0x" + "ab" * 20
OFFER_ID = "0x" + "cd" * 32
MARKER = "__VALUE__"  # replaced by the raw JSON text of a hostile value


@dataclass
class Route:
    method: str
    path: Callable[[Any], str]
    role: str | None  # whose signed request headers it needs, if any
    body: Callable[[Any], dict[str, Any]]  # a body the route would take; MARKER marks an integer field


def _order(api: Any) -> dict[str, Any]:
    slot = api.next_slot()
    return {
        "prosumer": ADDRESS,
        "side": "sell",
        "delivery_start": slot,
        "energy_wh": MARKER,
        "price_per_kwh": 80_000,
        "nonce": 1,
        "expiry": slot,
        "signature": "0x" + "11" * 64,
    }


def _flex_request(api: Any) -> dict[str, Any]:
    start = api.next_slot() + 4 * 3_600
    return flex_request_body(start, power_w=MARKER)


def _offer(api: Any) -> dict[str, Any]:
    return {
        "provider": ADDRESS,
        "window_start": api.next_slot(),
        "power_w": 8_000,
        "availability_price_per_kwh": 50_000,
        "utilisation_price_per_kwh": 200_000,
        "bus": 4,
        "nonce": MARKER,
        "signature": "0x" + "11" * 65,
    }


ROUTES = {
    "register": Route(
        "POST",
        lambda api: "/participants",
        "facilitator",
        lambda api: {"account": ADDRESS, "meter_id": MARKER, "bus": 3, "capacity_w": 10_000},
    ),
    "order": Route("POST", lambda api: "/orders", None, _order),
    "cancellation": Route(
        "POST", lambda api: f"/orders/{OFFER_ID}/cancellation", None, lambda api: {"signature": MARKER}
    ),
    "meter readings": Route(
        "POST",
        lambda api: f"/slots/{api.next_slot()}/meter-readings",
        "meter",
        lambda api: {"readings": [{"account": ADDRESS, "net_wh": MARKER}]},
    ),
    "flex request": Route("POST", lambda api: "/flex/requests", "dso", _flex_request),
    "offer": Route("POST", lambda api: "/flex/requests/1/offers", None, _offer),
    "activation": Route(
        "POST",
        lambda api: f"/flex/offers/{OFFER_ID}/activations",
        "dso",
        lambda api: {"slot": api.next_slot(), "power_w": MARKER},
    ),
    "measurement": Route(
        "POST",
        lambda api: f"/flex/offers/{OFFER_ID}/measurements",
        "meter",
        lambda api: {"slot": api.next_slot(), "baseline_wh": 0, "actual_wh": MARKER},
    ),
    # Signed routes whose body is empty (or {}): any field is one too many.
    "clearing": Route(
        "POST", lambda api: f"/slots/{api.next_slot()}/clearing", "facilitator", lambda api: {"x": MARKER}
    ),
    "settlement": Route(
        "POST", lambda api: f"/slots/{api.next_slot()}/settlement", "facilitator", lambda api: {"x": MARKER}
    ),
    "award": Route("POST", lambda api: "/flex/requests/1/award", "facilitator", lambda api: {"x": MARKER}),
    "flex settlement": Route(
        "POST", lambda api: "/flex/requests/1/settlement", "facilitator", lambda api: {"x": MARKER}
    ),
}

# Not integers, or integers no field takes: raw JSON text (NaN and Infinity are what Python's
# json module reads and writes, though JSON has no such literals).
NOT_INTEGERS = ['"5"', "5.0", "1.0", "1e3", "true", "NaN", "Infinity", "-Infinity", str(2**300), str(-(2**300))]


def _send(api: Any, route: Route, content: bytes, content_type: str | None = "application/json") -> Any:
    path = route.path(api)
    headers = {"content-type": content_type} if content_type else {}
    if route.role is not None:
        roles = {
            "facilitator": api.ledger.roles.facilitator,
            "dso": api.ledger.roles.dso,
            "meter": api.ledger.roles.meter,
        }
        headers |= sign_request(roles[route.role], route.method, path, content)
    return api.client.http.request(route.method, path, content=content, headers=headers)


def _refused(response: Any, what: str) -> ErrorBody:
    assert response.status_code == 422, (what, response.status_code, response.text[:300])
    body = ErrorBody.model_validate(response.json(), strict=True)
    assert body.error == "InvalidRequest", (what, body)
    return body


def _with(api: Any, route: Route, value: str) -> bytes:
    return json.dumps(route.body(api)).replace(json.dumps(MARKER), value).encode()


@pytest.mark.parametrize("name", list(ROUTES))
def test_hostile_bodies_are_422_with_the_error_body(api, wallets, name: str) -> None:
    route = ROUTES[name]
    for value in NOT_INTEGERS:
        _refused(_send(api, route, _with(api, route, value)), f"{name}: {value}")
    deep = 100_000
    nested = _with(api, route, "[" * deep + "]" * deep)
    _refused(_send(api, route, nested), f"{name}: nested {deep} deep")
    _refused(_send(api, route, b'{"signature": "\xff\xfe\xfd"}'), f"{name}: invalid UTF-8")
    _refused(_send(api, route, b"{not json"), f"{name}: not JSON")
    _refused(_send(api, route, b"[]"), f"{name}: an array, not an object")
    _refused(_send(api, route, _with(api, route, "5"), "text/plain"), f"{name}: text/plain")
    long_array = "[" + ",".join(["1"] * 400_000) + "]"  # 800 kB: under the 1 MiB limit
    _refused(_send(api, route, _with(api, route, long_array)), f"{name}: an array of 400,000")
    if name not in ("clearing", "settlement", "award", "flex settlement"):  # these take an empty body
        _refused(_send(api, route, b""), f"{name}: empty body")


def test_meter_readings_beyond_the_list_limit_and_integers_beyond_the_index_are_422(api, wallets) -> None:
    readings = {"readings": [{"account": ADDRESS, "net_wh": 1}] * 1_001}
    route = ROUTES["meter readings"]
    body = _refused(_send(api, route, json.dumps(readings).encode()), "1,001 readings")
    assert body.fields[0].field == "readings"
    # uint64 on-chain, int64 in the facilitator's index: the upper half is refused, with the reason.
    registration = {"account": ADDRESS, "meter_id": 2**63, "bus": 3, "capacity_w": 10_000}
    body = _refused(_send(api, ROUTES["register"], json.dumps(registration).encode()), "meter_id 2**63")
    assert body.fields[0].field == "meter_id" and "signed 64-bit" in body.detail


def test_path_integers_have_the_chains_range(api) -> None:
    for path in ("/flex/requests/-1", f"/flex/requests/{2**64}", f"/flex/requests/{2**63}"):
        _refused(api.client.http.get(path), path)
    _refused(api.client.http.get(f"/slots/{2**40 + 900}/book"), "slot beyond uint40")
    # A slot the chain can hold but no calendar prints (year 36812): a 404 that still says when.
    far = (2**40 - 1) // 900 * 900
    response = api.client.http.get(f"/slots/{far}/book")
    assert response.status_code == 404, response.text
    assert str(far) in ErrorBody.model_validate(response.json(), strict=True).detail


def test_generated_requests_find_no_server_error_and_no_undocumented_answer(api, wallets) -> None:
    report = fuzz(api.client.http, prepare(api, wallets), cases_per_operation=8)
    failures = "\n".join(str(f) for f in report.failures[:10])
    assert report.server_errors == 0 and report.schema_violations == 0, f"{report.summary()}\n{failures}"
    assert report.cases >= 200, report.summary()

"""Fuzzing the facilitator's API from its live OpenAPI document (schemathesis), with signatures.

schemathesis generates requests for every operation the document declares: positive cases
(values the document allows) and negative ones (values it does not). Before each request is
sent, ``Signer`` makes it reach the service's logic rather than stop at a signature check:

- a body that carries an EIP-712 signature (an order, an offer, a cancellation) is re-signed over
  the fuzzed fields by a registered prosumer's key, the prosumer or provider field set to that
  prosumer (every fourth case keeps the generated address, so unknown signers are fuzzed too);
- an operation behind a security scheme (the facilitator's, the DSO's, the meter operator's) gets
  the role's signed-request headers over the exact bytes sent.

Each answer is checked with schemathesis's checks: not a server error, a documented status, a
documented content type, a body that conforms to the documented schema. ``fuzz`` sends the
requests over any HTTP client with httpx's interface (FastAPI's TestClient) and returns the
counts; it raises nothing, so a run reports every failure it finds.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from eth_account.signers.local import LocalAccount
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from tests.conftest import flex_request_body

from gridledger.flex.products import FlexOffer
from gridledger.market.orders import Order, Side
from gridledger.wallet.requests import sign_request
from gridledger.wallet.signing import sign_cancellation, sign_offer, sign_order

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
SCHEMES = {"FacilitatorSignature": "facilitator", "DsoSignature": "dso", "MeterOperatorSignature": "meter"}
NOT_SENT = object()


@dataclass
class Failure:
    operation: str
    mode: str
    status: int
    checks: list[str]
    request: str
    response: str


@dataclass
class FuzzReport:
    cases: int = 0
    server_errors: int = 0
    schema_violations: int = 0
    seconds: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[Failure] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.cases} cases, {self.server_errors} server errors, {self.schema_violations} schema violations, "
            f"{self.seconds:.1f} s; statuses {dict(sorted(self.statuses.items()))}"
        )


class Signer:
    """Signs generated requests as the parties the service expects (see the module docstring)."""

    def __init__(
        self,
        roles: dict[str, LocalAccount],
        prosumers: list[LocalAccount],
        version: dict[str, Any],
        known: dict[str, list[Any]] | None = None,
    ):
        self.roles = roles
        self.prosumers = prosumers
        self.market = version["eip712_domain"]
        self.flex = version["flex_eip712_domain"]
        # Path parameters that name something that exists (an order's hash, a flexibility request's
        # id): half the positive cases use one, so the routes behind them get past their 404.
        self.known = known or {}

    def aim(self, path_parameters: dict[str, Any]) -> None:
        for name, values in self.known.items():
            if name in path_parameters and values:
                digest = hashlib.sha256(repr(sorted(path_parameters.items())).encode()).digest()
                if digest[0] % 2 == 0:
                    path_parameters[name] = values[digest[1] % len(values)]

    def _prosumer(self, body: dict[str, Any], key: str) -> LocalAccount | None:
        """The registered prosumer who signs this body, or None to keep the generated address."""
        digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).digest()
        if digest[0] % 4 == 0:
            return None
        account = self.prosumers[digest[1] % len(self.prosumers)]
        body[key] = account.address
        return account

    def sign_body(self, template: str, path_parameters: dict[str, Any], body: Any) -> None:
        """Re-signs an order, offer or cancellation in place, when its fields have the shapes the
        schema gives them (a negative case with a wrong field type is sent as generated)."""
        if not isinstance(body, dict):
            return
        try:
            if template == "/orders":
                account = self._prosumer(body, "prosumer")
                if account is None:
                    return
                side = Side.BUY if body["side"] == "buy" else Side.SELL
                order = Order(
                    account.address,
                    side,
                    *(body[k] for k in ("delivery_start", "energy_wh", "price_per_kwh", "nonce", "expiry")),
                )
                signed = sign_order(
                    account,
                    order,
                    chain_id=self.market["chainId"],
                    market_address=self.market["verifyingContract"],
                )
                body["signature"] = "0x" + (signed.r + signed.vs).hex()
            elif template == "/flex/requests/{request_id}/offers":
                account = self._prosumer(body, "provider")
                if account is None:
                    return
                keys = ("window_start", "power_w", "availability_price_per_kwh", "utilisation_price_per_kwh", "bus")
                offer = FlexOffer(
                    account.address, path_parameters["request_id"], *(body[k] for k in keys), body["nonce"]
                )
                signed_offer = sign_offer(
                    account, offer, chain_id=self.flex["chainId"], flex_address=self.flex["verifyingContract"]
                )
                body["signature"] = "0x" + (signed_offer.r + signed_offer.vs).hex()
            elif template == "/orders/{order_hash}/cancellation":
                order_hash = bytes.fromhex(str(path_parameters["order_hash"])[2:])
                r, vs = sign_cancellation(
                    self.prosumers[0],
                    order_hash,
                    chain_id=self.market["chainId"],
                    market_address=self.market["verifyingContract"],
                )
                body["signature"] = "0x" + (r + vs).hex()
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
            return  # a field of the wrong shape: sent as generated (a 422 is expected)
        except Exception:  # the signing library refused a value out of its type's range
            return

    def headers(self, operation: dict[str, Any], method: str, path: str, content: bytes) -> dict[str, str]:
        headers: dict[str, str] = {}
        for requirement in operation.get("security", []):
            for scheme in requirement:
                headers |= sign_request(self.roles[SCHEMES[scheme]], method, path, content)
        return headers


def _content(body: Any) -> bytes | None:
    if body is NOT_SENT:
        return None
    if isinstance(body, bytes):
        return body  # a negative case may send bytes that are not JSON at all
    return json.dumps(body, allow_nan=True).encode()


def fuzz(
    http: Any,
    signer: Signer,
    *,
    cases_per_operation: int,
    modes: tuple[GenerationMode, ...] = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE),
    seed: int = 0,
) -> FuzzReport:
    """Sends generated requests for every operation of ``http``'s /openapi.json; counts failures."""
    document = http.get("/openapi.json").json()
    schema = schemathesis.openapi.from_dict(document)
    report = FuzzReport()
    started = time.monotonic()
    for result in schema.get_all_operations():
        operation = result.ok()
        described = document["paths"][operation.path][operation.method.lower()]
        if "text/event-stream" in described["responses"].get("200", {}).get("content", {}):
            continue  # an endless stream (GET /events): tests/backend/api/test_overview.py reads its frames
        for mode in modes:
            _fuzz_operation(http, signer, report, operation, described, mode, cases_per_operation)
    report.seconds = time.monotonic() - started
    return report


def _fuzz_operation(
    http: Any, signer: Signer, report: FuzzReport, operation: Any, described: dict[str, Any], mode: Any, n: int
) -> None:
    @settings(
        max_examples=n,
        database=None,
        deadline=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def one(case: Any) -> None:
        send(http, signer, report, case, described, mode)

    with contextlib.suppress(Unsatisfiable):  # nothing to make invalid: an operation without parameters or body
        one()


def send(http: Any, signer: Signer, report: FuzzReport, case: Any, described: dict[str, Any], mode: Any) -> None:
    body = NOT_SENT if case.body is schemathesis.core.NOT_SET else case.body
    if mode == GenerationMode.POSITIVE:
        signer.aim(case.path_parameters)
        signer.sign_body(case.path, case.path_parameters, body)
    path = case.formatted_path
    content = _content(body)
    headers = {str(k): str(v) for k, v in (case.headers or {}).items()}
    if content is not None:
        headers.setdefault("content-type", case.media_type or "application/json")
    # Signed whatever the mode: a generated signature header would stop every case at the 401.
    headers |= signer.headers(described, case.method, path, content or b"")
    response = http.request(case.method, path, params=case.query or None, content=content, headers=headers)
    report.cases += 1
    report.statuses[response.status_code] += 1
    try:
        case.validate_response(response, checks=CHECKS)
    except FailureGroup as group:
        names = sorted({type(f).__name__ for f in group.exceptions})
        if response.status_code >= 500:
            report.server_errors += 1
        else:
            report.schema_violations += 1
        report.failures.append(
            Failure(
                operation=f"{case.method} {case.path}",
                mode=mode.value,
                status=response.status_code,
                checks=names,
                request=f"{case.method} {path} params={case.query} body={content!r:.400}",
                response=response.text[:400],
            )
        )


def prepare(api: Any, prosumers: list[LocalAccount]) -> Signer:
    """A signer for ``api`` (the tests' ``Api``: a service over TestClient, its ledger) whose
    registered and funded ``prosumers`` sign orders and offers, with one order and one open
    flexibility request for the fuzzed paths to find."""
    ledger = api.ledger
    roles = {"facilitator": ledger.roles.facilitator, "dso": ledger.roles.dso, "meter": ledger.roles.meter}
    dso = ledger.roles.dso
    api.chain(lambda: (ledger.fund_gas(dso.address, 10**18), ledger.mint(dso.address, 10**12)))
    start = api.next_slot() + 4 * 3_600
    flex_request = flex_request_body(start)
    posted = api.client.request("POST", "/flex/requests", body=flex_request, signer=dso)
    alice = prosumers[0]
    slot = api.next_slot()
    order = api.client.order_body(alice, Order(alice.address, Side.SELL, slot, 1_000, 80_000, 10**6, slot))
    accepted = api.client.request("POST", "/orders", body=order)
    known = {"request_id": [posted["request_id"]], "order_hash": [accepted["order_hash"]]}
    return Signer(roles, prosumers, api.client.get("/version"), known)

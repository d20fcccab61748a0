"""A client of the facilitator's API, as a prosumer's wallet or an operating party uses it.

The wallet signs locally (the key never leaves it) with the EIP-712 domain the API publishes
at ``/version``, so an order signed here is exactly what the contract verifies.
"""

from __future__ import annotations

import json
import secrets
import time
from datetime import date
from typing import Any

import httpx
from eth_account.signers.local import LocalAccount

from gridledger.errors import ConfigurationError, GridLedgerError
from gridledger.flex.products import FlexOffer
from gridledger.market.orders import Order, Side
from gridledger.wallet.funds import sign_permit, sign_withdrawal
from gridledger.wallet.mandates import Mandate, sign_mandate
from gridledger.wallet.requests import sign_request
from gridledger.wallet.signing import sign_cancellation, sign_offer, sign_order


class ApiError(GridLedgerError):
    """The API refused a request; ``status`` is the HTTP status, ``body`` the JSON it sent."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"HTTP {status} {body.get('error', '')}: {body.get('detail', body)}")
        self.status = status
        self.body = body


class GridLedgerClient:
    def __init__(self, base_url: str | None = None, *, http: httpx.Client | None = None, timeout: float = 600) -> None:
        self.http = http or httpx.Client(base_url=base_url or "http://127.0.0.1:8000", timeout=timeout)
        self._version: dict[str, Any] | None = None

    def close(self) -> None:
        self.http.close()

    # ─────────────── plumbing ───────────────

    def request(self, method: str, path: str, *, body: Any = None, signer: LocalAccount | None = None) -> Any:
        content = b"" if body is None else json.dumps(body).encode()
        headers = {"content-type": "application/json"} if body is not None else {}
        if signer is not None:
            headers |= sign_request(signer, method, path, content)
        try:
            response = self.http.request(method, path, content=content, headers=headers)
        except httpx.TransportError as exc:
            raise ConfigurationError(
                f"cannot reach the GridLedger API at {self.http.base_url} ({exc}): start it with `gridledger serve` "
                "or point GRIDLEDGER_API_URL (or --api) at it"
            ) from None
        data = response.json() if response.content else {}
        if response.status_code >= 400:
            raise ApiError(response.status_code, data if isinstance(data, dict) else {"detail": data})
        return data

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    @property
    def version(self) -> dict[str, Any]:
        """The service's /version (EIP-712 domains included), fetched once."""
        if self._version is None:
            self._version = self.get("/version")
        return self._version

    @property
    def domain(self) -> dict[str, Any]:
        domain: dict[str, Any] = self.version["eip712_domain"]
        return domain

    # ─────────────── prosumer ───────────────

    def order_body(self, account: LocalAccount, order: Order) -> dict[str, Any]:
        signed = sign_order(
            account, order, chain_id=self.domain["chainId"], market_address=self.domain["verifyingContract"]
        )
        return {
            "prosumer": order.prosumer,
            "side": order.side.name.lower(),
            "delivery_start": order.delivery_start,
            "energy_wh": order.energy_wh,
            "price_per_kwh": order.price_per_kwh,
            "nonce": order.nonce,
            "expiry": order.expiry,
            "signature": "0x" + (signed.r + signed.vs).hex(),
        }

    def submit_order(self, account: LocalAccount, order: Order) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", "/orders", body=self.order_body(account, order))
        return result

    def place(
        self,
        account: LocalAccount,
        *,
        side: Side,
        delivery_start: int,
        energy_wh: int,
        price_per_kwh: int,
        nonce: int | None = None,
        expiry: int | None = None,
    ) -> dict[str, Any]:
        """Signs and submits an order; the nonce defaults to the API's next free one for the account."""
        if nonce is None:
            nonce = int(self.get(f"/participants/{account.address}")["next_nonce"])
        order = Order(
            account.address,
            side,
            delivery_start,
            energy_wh,
            price_per_kwh,
            nonce,
            delivery_start if expiry is None else expiry,
        )
        return self.submit_order(account, order)

    def offer_body(self, account: LocalAccount, offer: FlexOffer) -> dict[str, Any]:
        domain = self.version["flex_eip712_domain"]
        signed = sign_offer(account, offer, chain_id=domain["chainId"], flex_address=domain["verifyingContract"])
        return {
            "provider": offer.provider,
            "window_start": offer.window_start,
            "power_w": offer.power_w,
            "availability_price_per_kwh": offer.availability_price_per_kwh,
            "utilisation_price_per_kwh": offer.utilisation_price_per_kwh,
            "bus": offer.bus,
            "nonce": offer.nonce,
            "signature": "0x" + (signed.r + signed.vs).hex(),
        }

    def offer(
        self,
        account: LocalAccount,
        request_id: int,
        *,
        power_w: int,
        availability_price_per_kwh: int,
        utilisation_price_per_kwh: int,
        nonce: int | None = None,
    ) -> dict[str, Any]:
        """Signs and submits a flexibility offer for a request's window at the account's own bus."""
        request = self.get(f"/flex/requests/{request_id}")
        bus = int(self.get(f"/participants/{account.address}")["bus"])
        offer = FlexOffer(
            account.address,
            request_id,
            int(request["window_start"]),
            power_w,
            availability_price_per_kwh,
            utilisation_price_per_kwh,
            bus,
            secrets.randbits(63) if nonce is None else nonce,
        )
        result: dict[str, Any] = self.request(
            "POST", f"/flex/requests/{request_id}/offers", body=self.offer_body(account, offer)
        )
        return result

    def cancel(self, account: LocalAccount, order_hash: str) -> dict[str, Any]:
        r, vs = sign_cancellation(
            account,
            bytes.fromhex(order_hash.removeprefix("0x")),
            chain_id=self.domain["chainId"],
            market_address=self.domain["verifyingContract"],
        )
        result: dict[str, Any] = self.request(
            "POST", f"/orders/{order_hash}/cancellation", body={"signature": "0x" + (r + vs).hex()}
        )
        return result

    def mandate(
        self,
        account: LocalAccount,
        aggregator: str,
        *,
        valid_from: date,
        valid_until: date | None = None,
        nonce: int | None = None,
    ) -> dict[str, Any]:
        """Signs the participant's mandate to ``aggregator`` (its UFTP domain) for its meter and posts
        it to the CRO (``POST /cro/mandates``, a UFTP-enabled facilitator); ``nonce`` defaults to
        one above the mandate in force to that aggregator (0 for the first)."""
        meter_id = int(self.get(f"/participants/{account.address}")["meter_id"])
        if nonce is None:
            in_force = [m for m in self.get(f"/cro/mandates/{account.address}") if m["aggregator"] == aggregator]
            nonce = int(in_force[0]["nonce"]) + 1 if in_force else 0
        mandate = Mandate(aggregator, meter_id, valid_from, valid_until, nonce)
        registry = self.version["contracts"]["ParticipantRegistry"]
        signature = sign_mandate(account, mandate, chain_id=int(self.version["chain_id"]), registry_address=registry)
        body = {
            "aggregator": aggregator,
            "meter_id": meter_id,
            "valid_from": valid_from.isoformat(),
            "valid_until": valid_until.isoformat() if valid_until else None,
            "nonce": nonce,
            "signature": signature,
        }
        result: dict[str, Any] = self.request("POST", "/cro/mandates", body=body)
        return result

    # ─────────────── money in and out, signed here and relayed by the facilitator ───────────────

    def deposit(self, account: LocalAccount, amount: int, *, valid_s: int = 86_400) -> dict[str, Any]:
        """Signs a permit of ``amount`` token base units for the market; the facilitator relays it."""
        wallet = self.get(f"/wallet/{account.address}")
        deadline = max(int(time.time()), int(self.get("/health")["chain_time"])) + valid_s
        signature = sign_permit(
            account,
            domain=wallet["token_eip712_domain"],
            spender=wallet["market"],
            amount=amount,
            nonce=wallet["permit_nonce"],
            deadline=deadline,
        )
        body = {"owner": account.address, "amount": amount, "deadline": deadline, "signature": "0x" + signature.hex()}
        result: dict[str, Any] = self.request("POST", "/wallet/deposits", body=body)
        return result

    def withdraw(self, account: LocalAccount, amount: int, *, valid_s: int = 86_400) -> dict[str, Any]:
        """Signs a withdrawal of ``amount`` base units to the wallet itself; the facilitator relays it."""
        nonce = int(self.get(f"/wallet/{account.address}")["withdrawal_nonce"])
        deadline = max(int(time.time()), int(self.get("/health")["chain_time"])) + valid_s
        signature = sign_withdrawal(
            account,
            chain_id=self.domain["chainId"],
            market_address=self.domain["verifyingContract"],
            amount=amount,
            nonce=nonce,
            deadline=deadline,
        )
        body = {
            "owner": account.address,
            "amount": amount,
            "nonce": nonce,
            "deadline": deadline,
            "signature": "0x" + signature.hex(),
        }
        result: dict[str, Any] = self.request("POST", "/wallet/withdrawals", body=body)
        return result

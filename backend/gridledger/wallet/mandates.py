"""A participant's mandate to an aggregator: the consent the CRO asks for before it lets an
aggregator represent a connection (AGRPortfolioUpdate).

UFTP leaves the tie between a connection and its aggregator to the market's own contracts; here
it is an EIP-712 message the participant signs with the key registered with its meter, so that
anyone can check it from the chain's participant register:

    Mandate(string aggregator, uint64 meterId, string validFrom, string validUntil, uint64 nonce)

``aggregator`` is the aggregator's UFTP domain, the dates are ISO days in the grid's time zone
(``validUntil`` "" for an open end). A participant's newest mandate to an aggregator (the highest
nonce) is the one in force, so a mandate that ends earlier withdraws consent from then on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_keys.exceptions import BadSignature

MANDATE_TYPES = {
    "Mandate": [
        {"name": "aggregator", "type": "string"},
        {"name": "meterId", "type": "uint64"},
        {"name": "validFrom", "type": "string"},
        {"name": "validUntil", "type": "string"},
        {"name": "nonce", "type": "uint64"},
    ]
}
UINT64_MAX = 2**64 - 1


def mandate_domain(chain_id: int, registry_address: str) -> dict[str, Any]:
    return {"name": "GridLedger CRO", "version": "1", "chainId": chain_id, "verifyingContract": registry_address}


@dataclass(frozen=True)
class Mandate:
    aggregator: str  # UFTP domain
    meter_id: int
    valid_from: date
    valid_until: date | None  # last day; None: open end
    nonce: int

    def __post_init__(self) -> None:
        if not self.aggregator:
            raise ValueError("a mandate names its aggregator's UFTP domain")
        if not 1 <= self.meter_id <= UINT64_MAX:
            raise ValueError(f"meter id {self.meter_id} is not a uint64 above 0")
        if not 0 <= self.nonce <= UINT64_MAX:
            raise ValueError(f"nonce {self.nonce} is not a uint64")
        if self.valid_until is not None and self.valid_until < self.valid_from:
            raise ValueError(f"the mandate ends ({self.valid_until}) before it starts ({self.valid_from})")

    def as_message(self) -> dict[str, Any]:
        return {
            "aggregator": self.aggregator,
            "meterId": self.meter_id,
            "validFrom": self.valid_from.isoformat(),
            "validUntil": self.valid_until.isoformat() if self.valid_until else "",
            "nonce": self.nonce,
        }

    def covers(self, start: date, end: date | None) -> bool:
        """Whether the days from ``start`` to ``end`` (None: open end) all lie in the mandate."""
        if start < self.valid_from:
            return False
        if self.valid_until is None:
            return True
        return end is not None and end <= self.valid_until

    def valid_on(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_until is None or day <= self.valid_until)


def sign_mandate(account: LocalAccount, mandate: Mandate, *, chain_id: int, registry_address: str) -> str:
    """The participant's signature (0x, 65 bytes) of ``mandate``."""
    signed = Account.sign_typed_data(
        account.key, mandate_domain(chain_id, registry_address), MANDATE_TYPES, mandate.as_message()
    )
    return "0x" + bytes(signed.signature).hex()


def mandate_signer(mandate: Mandate, signature: str, *, chain_id: int, registry_address: str) -> str | None:
    """The address that signed ``mandate``, None for a signature that recovers to none."""
    message = encode_typed_data(mandate_domain(chain_id, registry_address), MANDATE_TYPES, mandate.as_message())
    try:
        return str(Account.recover_message(message, signature=signature))
    except (BadSignature, ValueError, TypeError):  # malformed r/s/v
        return None

"""Signed API requests, the caller's half: the message a privileged request signs and the
headers that carry it.

The facilitator, the DSO and the meter operator authorise their writes by signing (EIP-191
``personal_sign``) a message that binds the method, the path, a timestamp, a random nonce and the
SHA-256 of the body. The client signs here; the service verifies with the same
``request_message`` (``service/auth.py``), so both sides build the message in one place.
"""

from __future__ import annotations

import hashlib
import secrets
import time

from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

__all__ = [
    "HEADER_ADDRESS",
    "HEADER_NONCE",
    "HEADER_SIGNATURE",
    "HEADER_TIMESTAMP",
    "request_message",
    "sign_request",
]

HEADER_ADDRESS = "X-GridLedger-Address"
HEADER_TIMESTAMP = "X-GridLedger-Timestamp"
HEADER_SIGNATURE = "X-GridLedger-Signature"
HEADER_NONCE = "X-GridLedger-Nonce"


def request_message(method: str, path: str, timestamp: int, nonce: str, body: bytes) -> bytes:
    """The text a signed request signs: method, path, unix timestamp, nonce and SHA-256 of the body."""
    digest = hashlib.sha256(body).hexdigest()
    return f"GridLedger API request\n{method.upper()} {path}\n{timestamp}\n{nonce}\n{digest}".encode()


def sign_request(
    account: LocalAccount, method: str, path: str, body: bytes, *, timestamp: int | None = None
) -> dict[str, str]:
    """The headers that authorise ``method path`` with ``body`` as ``account``."""
    ts = int(time.time()) if timestamp is None else timestamp
    # A fresh nonce makes two identical requests in the same second two different signatures.
    nonce = secrets.token_hex(16)
    signed = account.sign_message(encode_defunct(request_message(method, path, ts, nonce, body)))
    return {
        HEADER_ADDRESS: account.address,
        HEADER_TIMESTAMP: str(ts),
        HEADER_NONCE: nonce,
        HEADER_SIGNATURE: "0x" + bytes(signed.signature).hex(),
    }

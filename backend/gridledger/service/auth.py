"""Signed requests, the service's half: verifying how the facilitator, the DSO and the meter
operator authorise privileged writes.

No passwords. The caller signs (EIP-191 ``personal_sign``, see ``wallet/requests.py``) a message
binding the method, the path, a timestamp, a random nonce and the SHA-256 of the body, and sends
them in four headers. The service accepts it within ``WINDOW_S`` of its own clock and only once: every accepted
request is kept in ``signed_requests`` until it would be too old anyway, so a captured request
cannot be replayed.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping

import sqlite_utils
from eth_account.messages import defunct_hash_message
from eth_utils.address import is_address, to_checksum_address

from gridledger.errors import ConflictError, ForbiddenError, SignatureError
from gridledger.store.database import write_transaction
from gridledger.wallet.requests import (
    HEADER_ADDRESS,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    request_message,
)
from gridledger.wallet.signing import recover_signer, split_signature

WINDOW_S = 300


def verify_request(
    db: sqlite_utils.Database,
    headers: Mapping[str, str],
    method: str,
    path: str,
    body: bytes,
    *,
    role: str,
    expected: str,
    now: float | None = None,
) -> str:
    """Checks that ``expected`` (the ``role``'s address) signed this request, recently and for the
    first time; returns the signer. Raises SignatureError (401), ForbiddenError (403) or
    ConflictError (409, a replay)."""
    need = f"this request needs the {role}'s signature ({expected})"
    values = {h: headers.get(h) for h in (HEADER_ADDRESS, HEADER_TIMESTAMP, HEADER_NONCE, HEADER_SIGNATURE)}
    missing = [h for h, v in values.items() if not v]
    if missing:
        raise SignatureError(f"{need}: missing header{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    claimed, ts_text, nonce, signature = (
        values[HEADER_ADDRESS],
        values[HEADER_TIMESTAMP],
        values[HEADER_NONCE],
        values[HEADER_SIGNATURE],
    )
    assert claimed and ts_text and nonce and signature
    if len(nonce) > 64:
        raise SignatureError(f"{HEADER_NONCE} has {len(nonce)} characters; at most 64 are allowed")
    if not is_address(claimed):
        raise SignatureError(f"{HEADER_ADDRESS} {claimed!r} is not an Ethereum address")
    try:
        timestamp = int(ts_text)
        raw = bytes.fromhex(signature.removeprefix("0x"))
    except ValueError:
        raise SignatureError(
            f"{HEADER_TIMESTAMP} must be unix seconds and {HEADER_SIGNATURE} 65 bytes of hex"
        ) from None
    message = request_message(method, path, timestamp, nonce, body)
    now = time.time() if now is None else now
    if abs(now - timestamp) > WINDOW_S:
        raise SignatureError(
            f"request timestamp {timestamp} is {abs(now - timestamp):.0f} s from the service's clock ({now:.0f}); "
            f"allowed are {WINDOW_S} s either way"
        )
    r, vs = split_signature(raw)  # 401 for a length or v no signature has
    signer = recover_signer(defunct_hash_message(message), r, vs)
    if signer is None:
        raise SignatureError(f"{need}: the signature is malformed")
    if signer != to_checksum_address(claimed):
        raise SignatureError(f"{need}: the signature recovers to {signer}, not to {claimed} (altered request?)")
    if signer != expected:
        raise ForbiddenError(f"{need}; {signer} is not the {role}")
    # The replay key is the signed message, not the signature's bytes: every encoding of a
    # signature that recovers to this signer (v as 0/1 or 27/28, the other s of the pair, other
    # hex spellings) is the same request and counts once.
    key = hashlib.sha256(to_checksum_address(signer).encode() + message).hexdigest()
    with write_transaction(db):
        db.execute("delete from signed_requests where at < ?", [now - 2 * WINDOW_S])
        if db.execute("select 1 from signed_requests where request_hash = ?", [key]).fetchone():
            raise ConflictError("this signed request was already used: sign each request anew (replay refused)")
        db.execute("insert into signed_requests (request_hash, signer, at) values (?, ?, ?)", [key, signer, now])
    return signer

"""Signed transactions as the embedded chain receives them: decoded, checked and priced.

Legacy (with or without EIP-155), EIP-2930 and EIP-1559 transactions are accepted; blob
(EIP-4844) and set-code (EIP-7702) transactions are refused, since nothing in GridLedger sends
them. Gas follows Prague, the fork of the py-evm chain this one replaced: intrinsic gas with
EIP-3860's initcode words and EIP-7623's calldata floor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import rlp
from eth_account import Account
from eth_utils.crypto import keccak

from gridledger.chain.embedded.errors import TransactionRejected

TX_GAS = 21_000
CREATE_GAS = 32_000
ZERO_BYTE_GAS = 4
NONZERO_BYTE_GAS = 16
ACCESS_LIST_ADDRESS_GAS = 2_400
ACCESS_LIST_KEY_GAS = 1_900
INITCODE_WORD_GAS = 2
MAX_INITCODE_BYTES = 49_152  # EIP-3860
FLOOR_GAS_PER_TOKEN = 10  # EIP-7623
SUPPORTED_TYPES = {0: "legacy", 1: "EIP-2930", 2: "EIP-1559"}

AccessList = tuple[tuple[bytes, tuple[int, ...]], ...]


@dataclass(frozen=True)
class SignedTx:
    """A decoded, signature-checked transaction (addresses as 20 bytes; ``to`` is b"" for a create)."""

    raw: bytes
    hash: bytes
    type: int
    sender: bytes
    nonce: int
    to: bytes
    value: int
    gas: int
    data: bytes
    chain_id: int | None
    access_list: AccessList
    v: int
    r: int
    s: int
    gas_price: int | None = None  # legacy and EIP-2930
    max_fee_per_gas: int | None = None  # EIP-1559
    max_priority_fee_per_gas: int | None = None

    @property
    def is_create(self) -> bool:
        return self.to == b""

    @property
    def max_fee(self) -> int:
        """The most the sender pays per gas: what its balance must cover."""
        return self.max_fee_per_gas if self.max_fee_per_gas is not None else int(self.gas_price or 0)

    def effective_gas_price(self, base_fee: int) -> int:
        if self.max_fee_per_gas is None:
            return int(self.gas_price or 0)
        return min(self.max_fee_per_gas, base_fee + int(self.max_priority_fee_per_gas or 0))


def decode(raw: bytes) -> SignedTx:
    """Decodes a signed raw transaction and recovers its sender; refuses what it cannot accept."""
    if not raw:
        raise TransactionRejected("empty raw transaction: send an RLP-encoded signed transaction")
    kind = raw[0] if raw[0] <= 0x7F else 0
    if kind not in SUPPORTED_TYPES:
        raise TransactionRejected(
            f"transaction type {kind} is not accepted by the embedded chain: "
            "send a legacy (0), EIP-2930 (1) or EIP-1559 (2) transaction"
        )
    try:
        fields = rlp.decode(raw[1:] if kind else raw)
        sender = bytes.fromhex(Account.recover_transaction(raw)[2:])
    except Exception as exc:  # rlp, eth-keys and eth-account each raise their own kinds
        raise TransactionRejected(f"malformed or badly signed transaction: {exc}") from None
    try:
        gas_price = max_fee = tip = None
        access: AccessList = ()
        if kind == 0:
            nonce, gas_price, gas, to, value, data, v, r, s = fields
            chain_id = (_int(v) - 35) // 2 if _int(v) >= 35 else None
        elif kind == 1:
            chain_id_b, nonce, gas_price, gas, to, value, data, access_items, v, r, s = fields
            chain_id, access = _int(chain_id_b), _access_list(access_items)
        else:
            chain_id_b, nonce, tip, max_fee, gas, to, value, data, access_items, v, r, s = fields
            chain_id, access = _int(chain_id_b), _access_list(access_items)
        return SignedTx(
            raw=raw,
            hash=keccak(raw),
            type=kind,
            sender=sender,
            nonce=_int(nonce),
            to=bytes(to),
            value=_int(value),
            gas=_int(gas),
            data=bytes(data),
            chain_id=chain_id,
            access_list=access,
            v=_int(v),
            r=_int(r),
            s=_int(s),
            gas_price=None if gas_price is None else _int(gas_price),
            max_fee_per_gas=None if max_fee is None else _int(max_fee),
            max_priority_fee_per_gas=None if tip is None else _int(tip),
        )
    except (ValueError, TypeError) as exc:
        raise TransactionRejected(f"malformed {SUPPORTED_TYPES[kind]} transaction: {exc}") from None


def intrinsic_gas(data: bytes, *, is_create: bool, access_list: AccessList = ()) -> int:
    """Gas charged before the first opcode runs (the sender must offer at least this)."""
    zeros = data.count(0)
    gas = TX_GAS + zeros * ZERO_BYTE_GAS + (len(data) - zeros) * NONZERO_BYTE_GAS
    if is_create:
        gas += CREATE_GAS + INITCODE_WORD_GAS * ((len(data) + 31) // 32)
    gas += sum(ACCESS_LIST_ADDRESS_GAS + ACCESS_LIST_KEY_GAS * len(keys) for _, keys in access_list)
    return gas


def floor_gas(data: bytes) -> int:
    """EIP-7623's least gas a transaction with this calldata is charged (Prague)."""
    zeros = data.count(0)
    return TX_GAS + FLOOR_GAS_PER_TOKEN * (zeros + 4 * (len(data) - zeros))


def _int(value: bytes) -> int:
    if not isinstance(value, bytes):
        raise TypeError(f"expected an RLP string, got a list {value!r}")
    return int.from_bytes(value, "big")


def _access_list(items: list[Any]) -> AccessList:
    out = []
    for item in items:
        address, keys = item
        if len(address) != 20:
            raise ValueError(f"access list address {bytes(address).hex()} is not 20 bytes")
        out.append((bytes(address), tuple(_int(k) for k in keys)))
    return tuple(out)

"""Decoding and pricing of the signed transactions the embedded chain receives."""

from __future__ import annotations

import pytest
from eth_account import Account

from gridledger.chain.embedded import CHAIN_ID, TransactionRejected
from gridledger.chain.embedded.signed_tx import decode, floor_gas, intrinsic_gas

KEY = "0x" + "11" * 32
SENDER = Account.from_key(KEY).address
TO = "0x" + "22" * 20


def test_an_eip_1559_transaction_decodes_to_what_was_signed() -> None:
    fields = {
        "to": TO,
        "value": 5,
        "gas": 50_000,
        "maxFeePerGas": 3 * 10**9,
        "maxPriorityFeePerGas": 10**9,
        "nonce": 7,
        "chainId": CHAIN_ID,
        "data": b"\x00\x01\x02",
        "accessList": [{"address": TO, "storageKeys": ["0x" + "00" * 31 + "05"]}],
    }
    signed = Account.sign_transaction(fields, KEY)
    tx = decode(bytes(signed.raw_transaction))
    assert (tx.type, tx.sender.hex(), tx.nonce, tx.to.hex(), tx.value, tx.gas) == (
        2,
        SENDER[2:].lower(),
        7,
        "22" * 20,
        5,
        50_000,
    )
    assert (tx.data, tx.chain_id, tx.max_fee_per_gas, tx.max_priority_fee_per_gas) == (
        b"\x00\x01\x02",
        CHAIN_ID,
        3 * 10**9,
        10**9,
    )
    assert tx.access_list == ((bytes.fromhex("22" * 20), (5,)),)
    assert tx.hash == bytes(signed.hash)
    assert tx.effective_gas_price(base_fee=1_500_000_000) == 2_500_000_000
    assert tx.effective_gas_price(base_fee=2_500_000_000) == 3 * 10**9  # capped by the max fee


def test_legacy_transactions_with_and_without_a_chain_id() -> None:
    base = {"to": TO, "value": 0, "gas": 21_000, "gasPrice": 10**9, "nonce": 0}
    with_id = decode(bytes(Account.sign_transaction(base | {"chainId": CHAIN_ID}, KEY).raw_transaction))
    without = decode(bytes(Account.sign_transaction(base, KEY).raw_transaction))
    assert (with_id.type, with_id.chain_id, with_id.gas_price) == (0, CHAIN_ID, 10**9)
    assert (without.chain_id, without.v in (27, 28), without.sender.hex()) == (None, True, SENDER[2:].lower())


def test_unsupported_or_malformed_transactions_are_refused() -> None:
    with pytest.raises(TransactionRejected, match="type 3 is not accepted by the embedded chain"):
        decode(b"\x03\xc0")
    with pytest.raises(TransactionRejected, match="malformed or badly signed"):
        decode(b"\x02\xc3\x01\x02\x03")
    with pytest.raises(TransactionRejected, match="empty raw transaction"):
        decode(b"")


def test_intrinsic_gas_and_the_calldata_floor() -> None:
    assert intrinsic_gas(b"", is_create=False) == 21_000
    assert intrinsic_gas(b"\x00\x01", is_create=False) == 21_000 + 4 + 16
    # a create pays 32,000 more and 2 gas per 32-byte word of initcode (EIP-3860)
    assert intrinsic_gas(b"\x01" * 33, is_create=True) == 21_000 + 32_000 + 33 * 16 + 2 * 2
    assert intrinsic_gas(b"", is_create=False, access_list=((b"\x22" * 20, (1, 2)),)) == 21_000 + 2_400 + 2 * 1_900
    # EIP-7623: 10 gas per token, a zero byte one token and any other four
    assert floor_gas(b"\x7f" * 4_000) == 21_000 + 10 * 4 * 4_000
    assert floor_gas(b"\x00" * 100) == 21_000 + 10 * 100

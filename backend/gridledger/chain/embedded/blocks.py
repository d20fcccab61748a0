"""Blocks, receipts and logs of the embedded chain, and their eth-tester serialisation.

A block is sealed with a hash over its header. Its transactions, receipts and state roots are
keccak digests of its content (each block's state root chains its parent's), not Merkle-Patricia
trie roots: nothing in GridLedger reads them, and computing tries would cost more than the EVM.
Field names and shapes are those eth-tester's py-evm backend produces (eth_tester's
``backends/pyevm/serializers.py``), so eth-tester and web3 see the same dictionaries.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import rlp
from eth_hash.auto import keccak as keccak256
from eth_utils.crypto import keccak

from gridledger.chain.embedded.signed_tx import SignedTx
from gridledger.chain.embedded.state import Changes

ZERO_HASH = bytes(32)
EMPTY_LIST_HASH = keccak(rlp.encode([]))
BLANK_ROOT = keccak(rlp.encode(b""))
EMPTY_REQUESTS_HASH = hashlib.sha256(b"").digest()  # EIP-7685: no requests
ELASTICITY = 2  # EIP-1559
BASE_FEE_CHANGE_DENOMINATOR = 8

Log = tuple[bytes, list[bytes], bytes]  # address, topics, data


@dataclass
class Receipt:
    tx: SignedTx
    index: int
    status: int
    gas_used: int
    cumulative_gas_used: int
    effective_gas_price: int
    logs: list[Log]
    first_log_index: int
    contract_address: bytes | None


@dataclass
class Block:
    number: int
    parent_hash: bytes
    timestamp: int
    base_fee: int
    gas_limit: int
    mix_hash: bytes
    coinbase: bytes
    parent_state_root: bytes = ZERO_HASH
    receipts: list[Receipt] = field(default_factory=list)
    changes: Changes = field(default_factory=Changes)
    gas_used: int = 0
    log_count: int = 0
    # set when the block is sealed
    hash: bytes | None = None
    tx_root: bytes = BLANK_ROOT
    receipts_root: bytes = BLANK_ROOT
    state_root: bytes = ZERO_HASH
    bloom: int = 0
    size: int = 0
    _serialised: dict[bool, dict[str, Any]] = field(default_factory=dict, repr=False)

    @property
    def sealed(self) -> bool:
        return self.hash is not None

    def seal(self) -> None:
        if self.receipts:
            self.tx_root = keccak(b"".join(r.tx.hash for r in self.receipts))
            self.receipts_root = keccak(
                b"".join(r.tx.hash + bytes([r.status]) + r.gas_used.to_bytes(8, "big") for r in self.receipts)
            )
        self.state_root = keccak(self.parent_state_root + self.receipts_root)
        self.bloom = logs_bloom(log for r in self.receipts for log in r.logs)
        header = rlp.encode(
            [
                self.parent_hash,
                EMPTY_LIST_HASH,
                self.coinbase,
                self.state_root,
                self.tx_root,
                self.receipts_root,
                self.bloom.to_bytes(256, "big"),
                0,
                self.number,
                self.gas_limit,
                self.gas_used,
                self.timestamp,
                b"",
                self.mix_hash,
                bytes(8),
                self.base_fee,
                BLANK_ROOT,
                0,
                0,
                ZERO_HASH,
                EMPTY_REQUESTS_HASH,
            ]
        )
        self.hash = keccak(header)
        self.size = len(header) + sum(len(r.tx.raw) for r in self.receipts)

    def next_base_fee(self) -> int:
        """EIP-1559: the base fee of this block's child."""
        target = self.gas_limit // ELASTICITY
        if self.gas_used == target:
            return self.base_fee
        if self.gas_used > target:
            return self.base_fee + max(
                self.base_fee * (self.gas_used - target) // target // BASE_FEE_CHANGE_DENOMINATOR, 1
            )
        return self.base_fee - self.base_fee * (target - self.gas_used) // target // BASE_FEE_CHANGE_DENOMINATOR

    # ─────────────── eth-tester's shapes ───────────────

    def serialise(self, full_transactions: bool) -> dict[str, Any]:
        if self.sealed and full_transactions in self._serialised:
            return self._serialised[full_transactions]
        transactions: list[Any] = [
            serialise_transaction(self, r) if full_transactions else r.tx.hash for r in self.receipts
        ]
        block = {
            "number": self.number,
            "hash": self.hash or ZERO_HASH,
            "parent_hash": self.parent_hash,
            "nonce": bytes(8),
            "sha3_uncles": EMPTY_LIST_HASH,
            "logs_bloom": self.bloom,
            "transactions_root": self.tx_root,
            "receipts_root": self.receipts_root,
            "state_root": self.state_root if self.sealed else self.parent_state_root,
            "coinbase": self.coinbase,
            "difficulty": 0,
            "total_difficulty": 0,
            "mix_hash": self.mix_hash,
            "size": self.size,
            "extra_data": ZERO_HASH,
            "gas_limit": self.gas_limit,
            "gas_used": self.gas_used,
            "timestamp": self.timestamp,
            "transactions": transactions,
            "uncles": [],
            "base_fee_per_gas": self.base_fee,
            "withdrawals": [],
            "withdrawals_root": BLANK_ROOT,
            "parent_beacon_block_root": ZERO_HASH,
            "blob_gas_used": 0,
            "excess_blob_gas": 0,
            "requests_hash": EMPTY_REQUESTS_HASH,
        }
        if self.sealed:
            self._serialised[full_transactions] = block
        return block


def serialise_transaction(block: Block, receipt: Receipt) -> dict[str, Any]:
    tx, pending = receipt.tx, not block.sealed
    out: dict[str, Any] = {
        "type": tx.type,
        "hash": tx.hash,
        "nonce": tx.nonce,
        "block_hash": None if pending else block.hash,
        "block_number": None if pending else block.number,
        "transaction_index": None if pending else receipt.index,
        "from": tx.sender,
        "to": tx.to,
        "value": tx.value,
        "gas": tx.gas,
        "data": tx.data,
    }
    if tx.type > 0:
        out["chain_id"] = tx.chain_id
        out["access_list"] = tx.access_list
    if tx.max_fee_per_gas is not None:
        out["max_fee_per_gas"] = tx.max_fee_per_gas
        out["max_priority_fee_per_gas"] = tx.max_priority_fee_per_gas
        out["gas_price"] = tx.max_fee_per_gas if pending else receipt.effective_gas_price
    else:
        out["gas_price"] = tx.gas_price
    out |= {"v": tx.v, "s": tx.s, "r": tx.r}
    if tx.type > 0:
        out["y_parity"] = tx.v
    return out


def serialise_receipt(block: Block, receipt: Receipt) -> dict[str, Any]:
    tx, pending = receipt.tx, not block.sealed
    return {
        "block_hash": None if pending else block.hash,
        "block_number": None if pending else block.number,
        "contract_address": receipt.contract_address,
        "cumulative_gas_used": receipt.cumulative_gas_used,
        "effective_gas_price": receipt.effective_gas_price,
        "from": tx.sender,
        "gas_used": receipt.gas_used,
        "logs": [serialise_log(block, receipt, k) for k in range(len(receipt.logs))],
        "state_root": b"\x01" if receipt.status else b"",
        "status": receipt.status,
        "to": tx.to,
        "transaction_hash": tx.hash,
        "transaction_index": None if pending else receipt.index,
        "type": tx.type,
    }


def serialise_log(block: Block, receipt: Receipt, k: int) -> dict[str, Any]:
    address, topics, data = receipt.logs[k]
    pending = not block.sealed
    return {
        "type": "pending" if pending else "mined",
        "log_index": receipt.first_log_index + k,
        "transaction_index": None if pending else receipt.index,
        "transaction_hash": receipt.tx.hash,
        "block_hash": None if pending else block.hash,
        "block_number": None if pending else block.number,
        "address": address,
        "data": data,
        "topics": topics,
    }


def logs_bloom(logs: Any) -> int:
    """The 2048-bit bloom filter of the logs' addresses and topics (yellow paper, section 4.3.1).
    A relay batch's 100 logs repeat their address and event topic: each item is hashed once."""
    bloom = 0
    for item in {item for address, topics, _ in logs for item in (address, *topics)}:
        digest = keccak256(item)
        for i in (0, 2, 4):
            bloom |= 1 << (((digest[i] << 8) | digest[i + 1]) & 2047)
    return bloom

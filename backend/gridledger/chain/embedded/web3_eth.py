"""web3's ``eth`` module for the embedded chain: receipts and logs built straight from revm's blocks.

Through the provider, web3 formats every receipt and log field by field (hex to int, hex to
HexBytes, every address re-checksummed, then a recursive AttributeDict copy): for a relay
batch's receipt of 100 logs that cost more than revm's execution of the batch, and the same
again per log in each ``eth_getLogs``. Here ``get_transaction_receipt``,
``wait_for_transaction_receipt`` and ``get_logs`` return the same AttributeDicts without that
detour (tests/backend/chain/test_embedded_chain.py checks them against web3's own path).
Everything else is web3's ``Eth``.
"""

from __future__ import annotations

from typing import Any, cast

from eth_tester.exceptions import TransactionNotFound as TesterTransactionNotFound
from hexbytes import HexBytes
from web3.datastructures import AttributeDict
from web3.eth import Eth
from web3.exceptions import TransactionNotFound
from web3.types import FilterParams, LogReceipt, TxReceipt

from gridledger.chain.embedded.blocks import Block, Receipt
from gridledger.chain.embedded.tester import RevmTester, checksum

_FILTER_KEYS = {"fromBlock", "toBlock", "address", "topics"}


class EmbeddedEth(Eth):
    """``w3.eth`` of the embedded chain."""

    def _tester(self) -> RevmTester | None:
        tester = getattr(self.w3.provider, "ethereum_tester", None)
        if isinstance(tester, RevmTester) and not tester._pending_transactions:
            return tester
        return None  # not auto-mining: eth-tester's own bookkeeping applies

    def _transaction_receipt(self, transaction_hash: Any) -> TxReceipt:
        tester = self._tester()
        if tester is None:
            return cast(TxReceipt, Eth.__dict__["_transaction_receipt"].__get__(self, Eth)(transaction_hash))
        tx_hash = HexBytes(transaction_hash)
        try:
            block, receipt = tester.backend.find_receipt(bytes(tx_hash))
        except TesterTransactionNotFound:
            raise TransactionNotFound(f"Transaction with hash: {tx_hash.to_0x_hex()!r} not found.") from None
        return _receipt(block, receipt)

    def _get_logs(self, filter_params: FilterParams) -> list[LogReceipt]:
        tester = self._tester()
        if tester is None or not set(filter_params) <= _FILTER_KEYS:  # e.g. blockHash: web3's path
            return cast(list[LogReceipt], Eth.__dict__["_get_logs"].__get__(self, Eth)(filter_params))
        found = tester.matching_logs(
            from_block=_block_id(filter_params.get("fromBlock")),
            to_block=_block_id(filter_params.get("toBlock")),
            address=filter_params.get("address"),
            topics=filter_params.get("topics"),
        )
        return [_log(block, receipt, k) for block, receipt, k in found]


def _block_id(value: Any) -> Any:
    """A block identifier as eth-tester takes it (web3 passes hex strings on as they are)."""
    if isinstance(value, str) and value.startswith("0x"):
        return int(value, 16)
    return value


def _receipt(block: Block, receipt: Receipt) -> TxReceipt:
    tx, pending, status = receipt.tx, not block.sealed, receipt.status
    return cast(
        TxReceipt,
        AttributeDict(
            {
                "blockHash": None if pending else HexBytes(block.hash or b""),
                "blockNumber": None if pending else block.number,
                "contractAddress": checksum(receipt.contract_address) if receipt.contract_address and status else None,
                "cumulativeGasUsed": receipt.cumulative_gas_used,
                "effectiveGasPrice": receipt.effective_gas_price,
                "from": checksum(tx.sender),
                "gasUsed": receipt.gas_used,
                "logs": [_log(block, receipt, k) for k in range(len(receipt.logs))],
                "state_root": b"\x01" if status else b"",
                "status": status,
                "to": checksum(tx.to) if tx.to else "",
                "transactionHash": HexBytes(tx.hash),
                "transactionIndex": None if pending else receipt.index,
                "type": tx.type,
            }
        ),
    )


def _log(block: Block, receipt: Receipt, k: int) -> LogReceipt:
    address, topics, data = receipt.logs[k]
    pending = not block.sealed
    return cast(
        LogReceipt,
        AttributeDict(
            {
                "type": "pending" if pending else "mined",
                "logIndex": receipt.first_log_index + k,
                "transactionIndex": None if pending else receipt.index,
                "transactionHash": HexBytes(receipt.tx.hash),
                "blockHash": None if pending else HexBytes(block.hash or b""),
                "blockNumber": None if pending else block.number,
                "address": checksum(address),
                "data": HexBytes(data),
                "topics": [HexBytes(t) for t in topics],
            }
        ),
    )

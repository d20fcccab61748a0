"""eth-tester over the revm backend, with receipts and log queries served without its normalisers.

eth-tester validates and normalises every value it returns, field by field, through chains of
curried functions: for a relay batch's receipt of 100 logs that took longer than revm took to
run the batch, and its ``eth_getLogs`` normalised every receipt of every block in the range
(three times per log) before filtering. This subclass builds the same dictionaries eth-tester
would return (snake_case keys, hex strings, checksummed addresses) straight from the backend's
blocks, and filters logs before building them. Everything else is eth-tester's.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from eth_tester import EthereumTester
from eth_tester.exceptions import ValidationError
from eth_tester.utils.filters import check_if_topics_match
from eth_utils.address import to_checksum_address

from gridledger.chain.embedded.backend import RevmBackend
from gridledger.chain.embedded.blocks import Block, Receipt


@lru_cache(maxsize=65_536)
def checksum(address: bytes) -> str:
    """EIP-55 text of a 20-byte address (cached: a chain's logs name few addresses, many times)."""
    return to_checksum_address(address)


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


class RevmTester(EthereumTester):  # type: ignore[misc]  # eth-tester ships no type hints
    """``EthereumTester`` whose receipts and ``get_logs`` come straight from a ``RevmBackend``."""

    backend: RevmBackend

    def __init__(self, backend: RevmBackend) -> None:
        super().__init__(backend=backend)

    def get_transaction_receipt(self, transaction_hash: str) -> dict[str, Any]:
        if self._pending_transactions:  # not auto-mining: eth-tester's own bookkeeping applies
            return super().get_transaction_receipt(transaction_hash)  # type: ignore[no-any-return]
        block, receipt = self.backend.find_receipt(_hash_bytes(transaction_hash, "Transaction hash"))
        tx, pending = receipt.tx, not block.sealed
        status = receipt.status
        return {
            "transaction_hash": _hex(tx.hash),
            "transaction_index": None if pending else receipt.index,
            "block_number": None if pending else block.number,
            "block_hash": None if pending else _hex(block.hash or b""),
            "cumulative_gas_used": receipt.cumulative_gas_used,
            "effective_gas_price": receipt.effective_gas_price,
            "from": checksum(tx.sender),
            "gas_used": receipt.gas_used,
            "contract_address": checksum(receipt.contract_address) if receipt.contract_address and status else None,
            "logs": [_log_entry(block, receipt, k) for k in range(len(receipt.logs))],
            "state_root": b"\x01" if status else b"",
            "status": status,
            "to": checksum(tx.to) if tx.to else "",
            "type": hex(tx.type),
        }

    def get_logs(
        self,
        from_block: Any = None,
        to_block: Any = None,
        address: Any = None,
        topics: Any = None,
    ) -> tuple[dict[str, Any], ...]:
        found = self.matching_logs(from_block=from_block, to_block=to_block, address=address, topics=topics)
        return tuple(_log_entry(block, receipt, k) for block, receipt, k in found)

    def matching_logs(
        self, *, from_block: Any, to_block: Any, address: Any, topics: Any
    ) -> list[tuple[Block, Receipt, int]]:
        """The logs of blocks ``from_block`` to ``to_block`` (default: the latest) that match the
        address(es) and topics, as (block, receipt, index in the receipt); eth-tester's rules."""
        self.validator.validate_inbound_filter_params(
            from_block=from_block, to_block=to_block, address=address, topics=topics
        )
        raw_from, raw_to, raw_address, raw_topics = self.normalizer.normalize_inbound_filter_params(
            from_block=from_block, to_block=to_block, address=address, topics=topics
        )
        first = self.backend.block_number("latest" if raw_from is None else raw_from)
        last = self.backend.block_number("latest" if raw_to is None else raw_to)
        if raw_address is None:
            addresses = None
        elif isinstance(raw_address, tuple):
            addresses = {bytes(a) for a in raw_address}
        else:
            addresses = {bytes(raw_address)}
        found = []
        for block in self.backend.blocks_between(first, last):
            for receipt in block.receipts:
                for k, (log_address, log_topics, _) in enumerate(receipt.logs):
                    if addresses is not None and log_address not in addresses:
                        continue
                    if raw_topics is not None and not check_if_topics_match(log_topics, raw_topics):
                        continue
                    found.append((block, receipt, k))
        return found


def _log_entry(block: Block, receipt: Receipt, k: int) -> dict[str, Any]:
    """A log as eth-tester's normaliser returns it."""
    address, topics, data = receipt.logs[k]
    pending = not block.sealed
    return {
        "type": "pending" if pending else "mined",
        "log_index": receipt.first_log_index + k,
        "transaction_index": None if pending else receipt.index,
        "transaction_hash": _hex(receipt.tx.hash),
        "block_hash": None if pending else _hex(block.hash or b""),
        "block_number": None if pending else block.number,
        "address": checksum(address),
        "data": _hex(data),
        "topics": [_hex(t) for t in topics],
    }


def _hash_bytes(value: Any, what: str) -> bytes:
    """A 32-byte hash from the 0x-prefixed hex string web3 sends (eth-tester's inbound rule)."""
    if isinstance(value, str) and value.startswith("0x") and len(value) == 66:
        try:
            return bytes.fromhex(value[2:])
        except ValueError:
            pass
    raise ValidationError(f"{what} must be a hexadecimal encoded 32 byte string.  Got: {value!r}")

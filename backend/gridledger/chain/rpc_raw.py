"""JSON-RPC answers read raw, without web3's detour: a request whose error is raised as web3
raises it, and receipts formatted as web3 formats them.

web3 formats a receipt field by field through its generic formatters (every log's address
re-checksummed, then a recursive AttributeDict copy): about 0.5 ms a log, so a clearing chunk's
receipt of 1,000 ``OrderFilled`` logs took 0.3–0.5 s to read from Hardhat and a relay batch's
100 logs ~50 ms. The same fields are converted here directly (checksums cached: a receipt's logs
come from a few contracts). tests/integration/test_hardhat_feeder.py checks the result equals
web3's own ``get_transaction_receipt`` of the same transactions.
"""

from __future__ import annotations

import time
from typing import Any, cast

from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from web3 import Web3
from web3.datastructures import AttributeDict
from web3.exceptions import BadResponseFormat, TimeExhausted, TransactionIndexingInProgress, Web3RPCError
from web3.types import RPCEndpoint, TxReceipt

# web3's RECEIPT_FORMATTERS and LOG_ENTRY_FORMATTERS, by kind of value.
_INTEGERS = {
    "blockNumber",
    "transactionIndex",
    "cumulativeGasUsed",
    "status",
    "gasUsed",
    "effectiveGasPrice",
    "type",
    "blobGasPrice",
    "blobGasUsed",
    "logIndex",
}
_BYTES = {"blockHash", "transactionHash", "logsBloom", "data"}
_ADDRESSES = {"contractAddress", "from", "to", "address"}
_CHECKSUMS: dict[str, str] = {}


def request(w3: Web3, method: str, params: list[Any]) -> Any:
    """The ``result`` of one JSON-RPC call (``None`` included); an error answer raises
    ``Web3RPCError`` as web3 does (or ``TransactionIndexingInProgress``, which web3 waits out), an
    answer with neither raises ``BadResponseFormat``. Connection failures propagate as the
    provider raises them (the service's node checks rely on that)."""
    response = w3.provider.make_request(RPCEndpoint(method), params)
    if "error" in response:
        error = response["error"]
        message = str(error.get("message", error) if isinstance(error, dict) else error)
        if "index" in message.lower() and "progress" in message.lower():  # geth's receipts still indexing
            raise TransactionIndexingInProgress(message, rpc_response=response)
        raise Web3RPCError(str(error), rpc_response=response)
    if "result" not in response:
        raise BadResponseFormat(f"the node's answer to {method} has neither a result nor an error: {response}")
    return response["result"]


def wait_for_receipt(w3: Web3, tx_hash: bytes, *, timeout: float, poll_latency: float) -> TxReceipt:
    """The receipt of ``tx_hash`` once mined, read with raw ``eth_getTransactionReceipt`` calls;
    web3's ``TimeExhausted`` if none comes within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    params = ["0x" + bytes(tx_hash).hex()]
    while True:
        try:
            raw = request(w3, "eth_getTransactionReceipt", params)
        except TransactionIndexingInProgress:
            raw = None  # as web3 does: wait
        if raw:
            return format_receipt(raw)
        if time.monotonic() > deadline:
            raise TimeExhausted(f"Transaction {params[0]} is not in the chain after {timeout} seconds")
        time.sleep(poll_latency)


def format_receipt(raw: dict[str, Any]) -> TxReceipt:
    """A raw JSON-RPC receipt as web3's ``get_transaction_receipt`` returns it."""
    receipt = _format(raw)
    receipt["logs"] = [AttributeDict(_format(log)) for log in raw.get("logs", [])]
    return cast(TxReceipt, AttributeDict(receipt))


def _format(fields: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if value is None or key == "logs":
            out[key] = value
        elif key in _INTEGERS and isinstance(value, str):
            out[key] = int(value, 16)
        elif key in _BYTES:
            out[key] = HexBytes(value)
        elif key == "topics":
            out[key] = [HexBytes(t) for t in value]
        elif key in _ADDRESSES and isinstance(value, str) and len(value) == 42:
            out[key] = _checksum(value)
        else:
            out[key] = value
    return out


def _checksum(address: str) -> str:
    checksummed = _CHECKSUMS.get(address)
    if checksummed is None:
        if len(_CHECKSUMS) > 10_000:
            _CHECKSUMS.clear()
        checksummed = _CHECKSUMS[address] = to_checksum_address(address)
    return checksummed

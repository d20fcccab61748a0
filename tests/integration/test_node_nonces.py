"""A stale transaction nonce (the node restarted, lost its pool, or another sender used the
account) is read again from the node and the transaction sent once more: refused as too low,
or stuck behind a gap (too high: no receipt in time)."""

from __future__ import annotations

import pytest
from tests.conftest import free_port
from web3.exceptions import TimeExhausted, Web3RPCError

from gridledger.chain import devnet, rpc_raw
from gridledger.chain.connection import Roles, connect
from gridledger.chain.reverts import RevertDecoder
from gridledger.chain.transactions import Transactor
from gridledger.config import Settings

pytestmark = pytest.mark.devnet


def test_a_stale_nonce_is_read_again_and_the_transaction_sent_once(tmp_path) -> None:
    port = free_port()
    with devnet.running("anvil", port):
        settings = Settings(chain="anvil", devnet_port=port)
        chain = connect(settings)
        tx = Transactor(chain, RevertDecoder([]))
        tx.receipt_timeout_s = 3
        admin, to = Roles.from_settings(settings).admin, Roles.from_settings(settings).balancing.address
        balance = chain.w3.eth.get_balance(to)
        tx.send_value(admin, to, 1)
        node_nonce = chain.w3.eth.get_transaction_count(admin.address)

        tx._nonces[admin.address] = node_nonce - 1  # too low: the node refuses it
        receipt = tx.send_value(admin, to, 10)
        assert receipt["status"] == 1
        assert chain.w3.eth.get_transaction(receipt["transactionHash"])["nonce"] == node_nonce

        tx._nonces[admin.address] = node_nonce + 5  # too high: queued behind a gap, no receipt
        receipt = tx.send_value(admin, to, 100)
        assert receipt["status"] == 1
        assert chain.w3.eth.get_transaction(receipt["transactionHash"])["nonce"] == node_nonce + 1
        assert chain.w3.eth.get_balance(to) == balance + 111  # each transfer once


def test_raw_answers_of_a_node_raise_and_wait_as_web3_does() -> None:
    """What the ledger reads raw (logs, receipts, the base fee): an error answer is web3's
    ``Web3RPCError`` (callers treat it as a node problem, not as a refusal of the ledger), a
    receipt not yet mined is ``None`` and waited for until web3's ``TimeExhausted``."""
    port = free_port()
    with devnet.running("anvil", port):
        chain = connect(Settings(chain="anvil", devnet_port=port))
        with pytest.raises(Web3RPCError, match=r"eth_noSuchMethod|not found|not supported") as refused:
            rpc_raw.request(chain.w3, "eth_noSuchMethod", [])
        assert refused.value.rpc_response is not None and "error" in refused.value.rpc_response
        with pytest.raises(Web3RPCError):
            rpc_raw.request(chain.w3, "eth_getLogs", [{"fromBlock": "not a block"}])
        unknown = b"\1" * 32
        assert rpc_raw.request(chain.w3, "eth_getTransactionReceipt", ["0x" + unknown.hex()]) is None
        with pytest.raises(TimeExhausted, match=r"is not in the chain after 0\.05 seconds"):
            rpc_raw.wait_for_receipt(chain.w3, unknown, timeout=0.05, poll_latency=0.01)
        block = rpc_raw.request(chain.w3, "eth_getBlockByNumber", ["latest", False])
        assert int(block["baseFeePerGas"], 16) == chain.w3.eth.get_block("latest")["baseFeePerGas"]

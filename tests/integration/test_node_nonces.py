"""A stale transaction nonce (the node restarted, lost its pool, or another sender used the
account) is read again from the node and the transaction sent once more: refused as too low,
or stuck behind a gap (too high: no receipt in time)."""

from __future__ import annotations

import pytest
from tests.integration.test_devnet import free_port

from gridledger.chain import devnet
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

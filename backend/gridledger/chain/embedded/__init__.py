"""The embedded chain: revm in this process, behind eth-tester and web3's EthereumTesterProvider.

``EmbeddedEth`` (web3_eth.py) is web3's ``eth`` module with receipts and logs built directly;
``RevmTester`` (tester.py) is eth-tester with faster receipts and log queries;
``RevmBackend`` (backend.py) keeps blocks, receipts and snapshots and checks transactions;
``WorldState`` (state.py) runs revm and commits each transaction's effects; signed_tx.py decodes
and prices transactions; blocks.py seals and serialises blocks; journal.py reads pyrevm's journal.
"""

from gridledger.chain.embedded.backend import CHAIN_ID, RevmBackend
from gridledger.chain.embedded.errors import TransactionRejected
from gridledger.chain.embedded.tester import RevmTester
from gridledger.chain.embedded.web3_eth import EmbeddedEth

__all__ = ["CHAIN_ID", "EmbeddedEth", "RevmBackend", "RevmTester", "TransactionRejected"]

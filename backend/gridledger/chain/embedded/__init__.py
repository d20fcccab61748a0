"""The embedded chain: revm in this process, behind eth-tester and web3's EthereumTesterProvider.

``RevmBackend`` (backend.py) keeps blocks, receipts and snapshots and checks transactions;
``WorldState`` (state.py) runs revm and commits each transaction's effects; signed_tx.py decodes
and prices transactions; blocks.py seals and serialises blocks; journal.py reads pyrevm's journal.
"""

from gridledger.chain.embedded.backend import CHAIN_ID, RevmBackend
from gridledger.chain.embedded.errors import TransactionRejected

__all__ = ["CHAIN_ID", "RevmBackend", "TransactionRejected"]

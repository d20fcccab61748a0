"""What the embedded chain raises, beside eth-tester's own exceptions.

eth_tester.exceptions.ValidationError
└── TransactionRejected    a transaction refused before it runs: nothing is mined or charged
eth_tester.exceptions.TransactionFailed
                           an eth_call or gas estimate that reverts or runs out of gas
                           (web3 turns it into ``execution reverted: <data>``)
"""

from __future__ import annotations

from eth_tester.exceptions import ValidationError


class TransactionRejected(ValidationError):  # type: ignore[misc]  # eth-tester ships no type hints
    """Raised when a transaction cannot be included: a used or future nonce, another chain's id,
    too little gas or balance, a fee under the base fee, more gas than the block has left, a bad
    signature or an unsupported type. The chain is left as it was."""

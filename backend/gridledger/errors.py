"""GridLedger's exceptions. Every failure a user can cause has a class here whose message
says what was wrong and what is allowed.

    GridLedgerError
    ├── ConfigurationError        settings or environment that cannot work
    │   ├── NodeUnreachable       the chain node does not answer (the API says 503)
    │   │   └── TransactionStuck  a sent transaction got no receipt in time (sent again later)
    │   └── ChainReset            the chain's history is gone: the deployment's code or the
    │                             indexed blocks (the API says 503 until `gridledger migrate`)
    ├── ToolchainError            the compiler or a devnet node is missing or failed
    │   └── CompilationError      solc rejected the contracts
    ├── DeploymentError           a deployment is missing, stale or would be duplicated
    ├── WalletError               a keystore cannot be created, read or unlocked
    ├── OrderError                an order is invalid before it reaches the chain
    ├── NetworkError              the network model, its limits or a power flow cannot be used
    ├── RequestError              an API request the facilitator refuses before the chain sees it
    │   ├── SignatureError        a signature is missing, malformed or not the expected party's
    │   ├── ForbiddenError        the signer is known but may not do this
    │   ├── NotFoundError         no such order, slot, participant or report
    │   ├── ConflictError         a duplicate or a replay
    │   └── BodyTooLargeError     a request body above the API's size limit
    └── LedgerError               the contract rejected a transaction (a custom error)
        ├── SignatureRejected     a signature does not recover to the order's prosumer
        ├── NotRegisteredError    the account is not a registered participant
        ├── ReplayRejected        the nonce was used before (replay or cancelled)
        ├── OrderExpiredError     the order expired before it reached the chain
        ├── GateClosedError       the slot's gate closed before the order arrived
        ├── InsufficientFunds     the market account cannot cover an escrow or withdrawal
        ├── ClearingRejected      the contract refused a clearing result
        ├── SettlementRejected    the contract refused metering or settlement
        └── FlexRejected          the flexibility market refused a request, offer, award,
                                  activation, measurement or settlement
"""

from __future__ import annotations


class GridLedgerError(Exception):
    """Root of all GridLedger errors."""


class ConfigurationError(GridLedgerError):
    """Raised when settings or the environment cannot work (an unknown chain name, a bad URL)."""


class NodeUnreachable(ConfigurationError):
    """Raised when the chain node does not answer: nothing is accepted until it does again."""


class ChainReset(ConfigurationError):
    """Raised when the chain no longer holds the deployment's history (the node was reset):
    the service refuses work until an operator moves it to a fresh deployment (``gridledger migrate``)."""


class TransactionStuck(NodeUnreachable):
    """Raised when a sent transaction got no receipt in time (dropped, or stuck behind a nonce gap).
    Not a LedgerError: the chain did not refuse anything, so the work stays queued and is sent again."""


class ToolchainError(GridLedgerError):
    """Raised when the compiler or a devnet node is missing or fails to start."""


class CompilationError(ToolchainError):
    """Raised when solc reports errors for the contracts."""


class DeploymentError(GridLedgerError):
    """Raised when a deployment is missing, does not match the chain, or would be duplicated."""


class WalletError(GridLedgerError):
    """Raised when a keystore cannot be created, found, read or unlocked."""


class OrderError(GridLedgerError):
    """Raised when an order is invalid before it is signed or sent."""


class NetworkError(GridLedgerError):
    """Raised when a network model, its limits, a bus or a power flow cannot be used."""


class RequestError(GridLedgerError):
    """Raised when the facilitator's API refuses a request before anything reaches the chain."""


class SignatureError(RequestError):
    """Raised when a signature is missing, malformed, or recovers to someone other than expected."""


class ForbiddenError(RequestError):
    """Raised when a correctly signed request comes from a party that may not make it."""


class NotFoundError(RequestError):
    """Raised when an order, slot, participant or report is unknown."""


class ConflictError(RequestError):
    """Raised for a duplicate (an order or nonce seen before) or a replayed request."""


class BodyTooLargeError(RequestError):
    """Raised when a request body is larger than the API accepts (``GRIDLEDGER_MAX_BODY_BYTES``)."""


class LedgerError(GridLedgerError):
    """Raised when a contract rejects a transaction. ``error`` names the custom error and
    ``args_`` holds its decoded arguments."""

    def __init__(self, message: str, *, error: str = "", args_: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.error = error
        self.args_ = args_ or {}


class SignatureRejected(LedgerError):
    """Raised when an order's signature does not recover to its prosumer."""


class NotRegisteredError(LedgerError):
    """Raised when an account that is not a registered participant trades or is metered."""


class ReplayRejected(LedgerError):
    """Raised when an order's nonce was already used or burnt by a cancellation."""


class OrderExpiredError(LedgerError):
    """Raised when an order reaches the chain after its expiry."""


class GateClosedError(LedgerError):
    """Raised when an order or cancellation arrives after its slot's gate closure."""


class InsufficientFunds(LedgerError):
    """Raised when a market account cannot cover an escrow, a withdrawal or a payment."""


class ClearingRejected(LedgerError):
    """Raised when the contract refuses a clearing result."""


class SettlementRejected(LedgerError):
    """Raised when the contract refuses meter readings or a settlement."""


class FlexRejected(LedgerError):
    """Raised when the flexibility market refuses a request, an offer, an award, an activation,
    a measurement or a settlement."""

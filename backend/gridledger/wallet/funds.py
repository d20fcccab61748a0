"""Signed money movements a facilitator relays for a wallet that sends no transaction of its own
(on the embedded chain a wallet has no node to send to; elsewhere it may have no gas):

- a deposit is an EIP-2612 permit of the settlement token for the market
  (``EnergyMarket.depositWithPermit``);
- a withdrawal is an EIP-712 ``Withdrawal(owner, amount, nonce, deadline)`` in the market's own
  domain (``EnergyMarket.withdrawBySig``); its nonce makes each one count once.
"""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address

from gridledger.market.orders import market_domain

PERMIT_TYPES: dict[str, list[dict[str, str]]] = {
    "Permit": [
        {"name": "owner", "type": "address"},
        {"name": "spender", "type": "address"},
        {"name": "value", "type": "uint256"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ]
}
WITHDRAWAL_TYPES: dict[str, list[dict[str, str]]] = {
    "Withdrawal": [
        {"name": "owner", "type": "address"},
        {"name": "amount", "type": "uint256"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ]
}
TOKEN_DOMAIN_NAME = "GridLedger Euro"  # SettlementToken's ERC20Permit name
TOKEN_DOMAIN_VERSION = "1"


def token_domain(chain_id: int, token_address: str) -> dict[str, Any]:
    """The EIP-712 domain of the settlement token's permits."""
    return {
        "name": TOKEN_DOMAIN_NAME,
        "version": TOKEN_DOMAIN_VERSION,
        "chainId": chain_id,
        "verifyingContract": to_checksum_address(token_address),
    }


def sign_permit(
    account: LocalAccount,
    *,
    domain: dict[str, Any],
    spender: str,
    amount: int,
    nonce: int,
    deadline: int,
) -> bytes:
    """The 65-byte (r ‖ s ‖ v) EIP-2612 permit letting ``spender`` (the market) take ``amount``."""
    message = {
        "owner": account.address,
        "spender": to_checksum_address(spender),
        "value": amount,
        "nonce": nonce,
        "deadline": deadline,
    }
    return bytes(Account.sign_typed_data(account.key, domain, PERMIT_TYPES, message).signature)


def withdrawal_message(owner: str, *, amount: int, nonce: int, deadline: int) -> dict[str, Any]:
    return {"owner": to_checksum_address(owner), "amount": amount, "nonce": nonce, "deadline": deadline}


def sign_withdrawal(
    account: LocalAccount, *, chain_id: int, market_address: str, amount: int, nonce: int, deadline: int
) -> bytes:
    """The 65-byte (r ‖ s ‖ v) signature of a withdrawal of ``amount`` to the account's own wallet."""
    message = withdrawal_message(account.address, amount=amount, nonce=nonce, deadline=deadline)
    domain = market_domain(chain_id, market_address)
    return bytes(Account.sign_typed_data(account.key, domain, WITHDRAWAL_TYPES, message).signature)

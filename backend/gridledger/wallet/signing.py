"""EIP-712 signing and hashing of orders with eth-account."""

from __future__ import annotations

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak

from gridledger.errors import OrderError
from gridledger.market.orders import ORDER_TYPES, Order, SignedOrder, market_domain


def order_hash(order: Order, *, chain_id: int, market_address: str) -> bytes:
    """The order's EIP-712 digest, as the contract's ``orderHash`` computes it."""
    message = encode_typed_data(market_domain(chain_id, market_address), ORDER_TYPES, order.as_message())
    return keccak(b"\x19" + message.version + message.header + message.body)


def sign_order(account: LocalAccount, order: Order, *, chain_id: int, market_address: str) -> SignedOrder:
    """Signs ``order`` as EIP-712 typed data; the account must be the order's prosumer."""
    if account.address != order.prosumer:
        raise OrderError(f"key of {account.address} cannot sign an order of prosumer {order.prosumer}")
    signed = Account.sign_typed_data(
        account.key, market_domain(chain_id, market_address), ORDER_TYPES, order.as_message()
    )
    # EIP-2098 compact form: the y-parity goes into the top bit of s.
    vs = ((signed.v - 27) << 255) | signed.s
    return SignedOrder(
        order=order,
        order_hash=bytes(signed.message_hash),
        r=signed.r.to_bytes(32, "big"),
        vs=vs.to_bytes(32, "big"),
    )

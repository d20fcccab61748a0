"""The fast EIP-712 path (direct encoding, coincurve) gives eth-account's hashes and signatures."""

from __future__ import annotations

import random

from eth_account import Account

from gridledger.flex.products import FlexOffer
from gridledger.market.orders import ORDER_TYPES, Order, Side, market_domain
from gridledger.wallet.signing import _compact, offer_digest, order_hash, recover_signer, sign_offer, sign_order

MARKET = "0x" + "5a" * 20
CHAIN_ID = 31337


def test_orders_hash_and_sign_as_eth_account_does() -> None:
    rng = random.Random(11)
    for k in range(40):
        account = Account.from_key(rng.randbytes(32))
        order = Order(
            prosumer=account.address,
            side=Side(k % 2),
            delivery_start=900 * rng.randint(1, 2**30),
            energy_wh=rng.randint(1, 2**32 - 1),
            price_per_kwh=rng.randint(0, 2**64 - 1),
            nonce=rng.randint(0, 2**64 - 1),
            expiry=rng.randint(0, 2**40 - 1),
        )
        domain = market_domain(CHAIN_ID, MARKET)
        reference = Account.sign_typed_data(account.key, domain, ORDER_TYPES, order.as_message())
        signed = sign_order(account, order, chain_id=CHAIN_ID, market_address=MARKET)
        assert signed.order_hash == bytes(reference.message_hash)
        assert order_hash(order, chain_id=CHAIN_ID, market_address=MARKET) == signed.order_hash
        assert (signed.r, signed.vs) == _compact(reference.r, reference.s, reference.v)
        assert recover_signer(signed.order_hash, signed.r, signed.vs) == account.address


def test_offer_ids_match_the_signed_typed_data() -> None:
    account = Account.from_key(b"\x07" * 32)
    offer = FlexOffer(account.address, 3, 900 * 2_000_000, 2_000, 12_345, 150_000, 21, 4)
    signed = sign_offer(account, offer, chain_id=CHAIN_ID, flex_address=MARKET)
    assert offer_digest(offer, chain_id=CHAIN_ID, flex_address=MARKET) == signed.offer_id

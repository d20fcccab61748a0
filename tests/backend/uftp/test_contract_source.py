"""FlexibilityMarket's UFTP path: a provider binds its aggregator's key, the facilitator submits
offers with the signed message's hash, and every refusal by its custom error."""

from __future__ import annotations

import pytest
from web3.logs import DISCARD

from gridledger.errors import LedgerError
from gridledger.flex.products import BaselineMethod, Direction, FlexOffer, FlexRequest, ServiceType
from gridledger.sim.participants import make_prosumers

KEY = bytes(range(32))
SOURCE = b"\x5a" * 32


@pytest.fixture
def market(ledger):
    (provider,) = make_prosumers(ledger, count=1, deposit=1_000_000)
    dso = ledger.roles.dso
    ledger.fund_gas(dso.address, 10**18)
    ledger.mint(dso.address, 100_000_000)
    start = (ledger.chain.now() // 900 + 8) * 900
    request = FlexRequest(
        ServiceType.SECURE, Direction.UP, BaselineMethod.HISTORICAL, 2, 8_000, start, 4, start - 3_600, 0, 1_000_000
    )
    rid = ledger.post_flex_request(request)
    bus = int(ledger.registry.functions.participant(provider.address).call()[1])
    offer = FlexOffer(provider.address, rid, start, 8_000, 0, 750_000, bus, 7)
    return ledger, provider, offer


def submit(ledger, offer, source=SOURCE, account=None):
    call = ledger.flex.functions.submitUftpOffer(offer.as_abi(), source)
    return ledger.tx.send(account or ledger.roles.facilitator, call, action="UFTP offer")


def test_a_bound_key_lets_the_facilitator_record_an_offer_with_its_source(market) -> None:
    ledger, provider, offer = market
    receipt = ledger.tx.send(provider, ledger.flex.functions.bindUftpKey(KEY), action="bind")
    (bound,) = ledger.flex.events.UftpKeyBound().process_receipt(receipt, errors=DISCARD)
    assert (bound["args"]["provider"], bytes(bound["args"]["publicKey"])) == (provider.address, KEY)
    assert bytes(ledger.flex.functions.uftpKey(provider.address).call()) == KEY

    receipt = submit(ledger, offer)
    (submitted,) = ledger.flex.events.OfferSubmitted().process_receipt(receipt, errors=DISCARD)
    (sourced,) = ledger.flex.events.OfferSourced().process_receipt(receipt, errors=DISCARD)
    offer_id = bytes(ledger.flex.functions.offerHash(offer.as_abi()).call())
    assert bytes(submitted["args"]["offerId"]) == bytes(sourced["args"]["offerId"]) == offer_id
    assert (
        sourced["args"]["provider"],
        bytes(sourced["args"]["publicKey"]),
        bytes(sourced["args"]["sourceMessage"]),
    ) == (
        provider.address,
        KEY,
        SOURCE,
    )
    assert bytes(ledger.flex.functions.offerSource(offer_id).call()) == SOURCE
    state = ledger.flex.functions.offer(offer_id).call()
    assert (state[0], state[2], state[6]) == (provider.address, 8_000, 750_000)

    # The same offer again (same nonce) is refused like any replayed offer.
    with pytest.raises(LedgerError) as replay:
        submit(ledger, offer)
    assert replay.value.error == "OfferNonceUsed"


def test_without_a_bound_key_or_the_facilitator_role_nothing_is_recorded(market) -> None:
    ledger, provider, offer = market
    with pytest.raises(LedgerError) as unbound:
        submit(ledger, offer)
    assert unbound.value.error == "UftpKeyNotBound" and unbound.value.args_["provider"] == provider.address

    ledger.tx.send(provider, ledger.flex.functions.bindUftpKey(KEY), action="bind")
    with pytest.raises(LedgerError) as not_facilitator:
        submit(ledger, offer, account=provider)
    assert not_facilitator.value.error == "AccessControlUnauthorizedAccount"

    # The usual offer checks apply: above the request's cap.
    dear = FlexOffer(offer.provider, offer.request_id, offer.window_start, 8_000, 0, 1_000_001, offer.bus, 8)
    with pytest.raises(LedgerError) as cap:
        submit(ledger, dear)
    assert cap.value.error == "PriceAboveCap"

    # Unbinding (zero) withdraws the authorisation.
    ledger.tx.send(provider, ledger.flex.functions.bindUftpKey(b"\0" * 32), action="unbind")
    with pytest.raises(LedgerError) as unbound_again:
        submit(ledger, offer)
    assert unbound_again.value.error == "UftpKeyNotBound"
    assert len(ledger.flex.events.OfferSubmitted().get_logs(from_block=0)) == 0

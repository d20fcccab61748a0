"""Withdrawing an unawarded flexibility offer before the bid deadline: by its provider
(`withdrawOffer`), or by the facilitator on an aggregator's signed UFTP revocation
(`withdrawUftpOffer`); every refusal, and no token moves."""

from __future__ import annotations

import pytest
from tests.contracts import test_flexibility
from tests.contracts.test_flexibility import offer
from web3.logs import DISCARD

from gridledger.encoding import to_hex
from gridledger.errors import FlexRejected, LedgerError
from gridledger.service.indexer import Indexer
from gridledger.store.database import open_database

setup = test_flexibility.setup  # three registered providers at buses 0, 1, 2 and an open request
REVOCATION = bytes.fromhex("ab" * 32)  # the keccak-256 of a sealed FlexOfferRevocation


def balances(ledger, accounts) -> list[int]:
    return [ledger.token_balance(a) for a in (ledger.flex.address, ledger.roles.dso.address, *accounts)]


def withdraw(ledger, account, offer_id: bytes):
    return ledger.tx.send(account, ledger.flex.functions.withdrawOffer(offer_id), action="withdraw offer")


def test_a_provider_withdraws_its_offer_which_then_cannot_be_awarded(setup, tmp_path) -> None:
    ledger, (a, b, _), request, rid = setup
    kept = ledger.sign_offer(a, offer(a, rid, request, power_w=6_000, availability=1, utilisation=1, bus=0))
    gone = ledger.sign_offer(b, offer(b, rid, request, power_w=5_000, availability=1, utilisation=1, bus=1))
    ledger.submit_offer(kept)
    ledger.submit_offer(gone)
    before = balances(ledger, [a.address, b.address])

    receipt = withdraw(ledger, b, gone.offer_id)
    (event,) = ledger.flex.events.OfferWithdrawn().process_receipt(receipt, errors=DISCARD)
    assert dict(event["args"]) == {
        "offerId": gone.offer_id,
        "requestId": rid,
        "provider": b.address,
        "sourceMessage": b"\0" * 32,
    }
    assert ledger.flex.functions.offerWithdrawn(gone.offer_id).call() is True
    assert ledger.flex.functions.offerWithdrawn(kept.offer_id).call() is False
    assert balances(ledger, [a.address, b.address]) == before  # offers escrow nothing
    # The facilitator's index drops it from the offers its award rule chooses from.
    index = open_database(tmp_path / "index.sqlite")
    Indexer(ledger, index).sync()
    assert [r["offer_id"] for r in index.execute_returning_dicts("select offer_id from flex_offers")] == [
        to_hex(kept.offer_id)
    ]

    with pytest.raises(FlexRejected, match="was withdrawn: it can be neither awarded nor withdrawn again") as again:
        withdraw(ledger, b, gone.offer_id)
    assert again.value.error == "OfferIsWithdrawn"
    ledger.chain.move_time_to(request.bid_deadline + 1)
    with pytest.raises(FlexRejected) as award:
        ledger.award_flex(rid, [kept.offer_id, gone.offer_id], b"\1" * 32)
    assert award.value.error == "OfferIsWithdrawn"
    ledger.award_flex(rid, [kept.offer_id], b"\1" * 32)
    assert ledger.flex.functions.offer(kept.offer_id).call()[4] is True
    assert ledger.flex.functions.offer(gone.offer_id).call()[4] is False


def test_withdrawals_outside_the_rules_are_refused_and_change_nothing(setup) -> None:
    ledger, (a, b, _), request, rid = setup
    signed = ledger.sign_offer(a, offer(a, rid, request, power_w=6_000, availability=1, utilisation=1, bus=0))
    late = ledger.sign_offer(b, offer(b, rid, request, power_w=5_000, availability=1, utilisation=1, bus=1))
    ledger.submit_offer(signed)
    ledger.submit_offer(late)
    before = balances(ledger, [a.address, b.address])

    with pytest.raises(FlexRejected, match=f"provider {a.address} may withdraw it, not {b.address}") as other:
        withdraw(ledger, b, signed.offer_id)
    assert other.value.error == "NotOfferProvider"
    with pytest.raises(FlexRejected) as unknown:
        withdraw(ledger, a, b"\7" * 32)
    assert unknown.value.error == "UnknownOffer"
    # The facilitator withdraws only offers that came through UFTP.
    call = ledger.flex.functions.withdrawUftpOffer(signed.offer_id, REVOCATION)
    with pytest.raises(FlexRejected) as not_uftp:
        ledger.tx.send(ledger.roles.facilitator, call, action="withdraw UFTP offer")
    assert not_uftp.value.error == "NotUftpOffer"

    ledger.chain.move_time_to(request.bid_deadline + 1)
    with pytest.raises(FlexRejected, match="offers can be withdrawn until then, not after") as after:
        withdraw(ledger, b, late.offer_id)
    assert after.value.error == "WithdrawalAfterDeadline"
    ledger.award_flex(rid, [signed.offer_id], b"\1" * 32)
    with pytest.raises(FlexRejected, match="is awarded and binds its provider") as awarded:
        withdraw(ledger, a, signed.offer_id)
    assert awarded.value.error == "OfferAlreadyAwarded"

    assert balances(ledger, [a.address, b.address]) == before
    assert not any(ledger.flex.functions.offerWithdrawn(o).call() for o in (signed.offer_id, late.offer_id))
    assert ledger.flex.events.OfferWithdrawn.get_logs(from_block=ledger.deployment.block) == []


def test_the_facilitator_withdraws_a_uftp_offer_with_the_revocation_hash(setup) -> None:
    ledger, (a, *_), request, rid = setup
    ledger.tx.send(a, ledger.flex.functions.bindUftpKey(b"\5" * 32), action="bind")
    o = offer(a, rid, request, power_w=6_000, availability=1, utilisation=1, bus=0)
    ledger.tx.send(ledger.roles.facilitator, ledger.flex.functions.submitUftpOffer(o.as_abi(), b"\6" * 32), action="o")
    offer_id = bytes(ledger.flex.functions.offerHash(o.as_abi()).call())
    before = balances(ledger, [a.address])

    # Zero is a provider's own withdrawal: the facilitator needs the revocation behind it.
    unsourced = ledger.flex.functions.withdrawUftpOffer(offer_id, b"\0" * 32)
    with pytest.raises(FlexRejected, match="only on the hash of the aggregator's signed FlexOfferRevocation") as zero:
        ledger.tx.send(ledger.roles.facilitator, unsourced, action="withdraw UFTP offer")
    assert zero.value.error == "RevocationMissing"
    assert ledger.flex.functions.offerWithdrawn(offer_id).call() is False

    call = ledger.flex.functions.withdrawUftpOffer(offer_id, REVOCATION)
    with pytest.raises(LedgerError) as stranger:
        ledger.tx.send(a, call, action="withdraw UFTP offer")  # the provider is no facilitator
    assert stranger.value.error == "AccessControlUnauthorizedAccount"
    receipt = ledger.tx.send(ledger.roles.facilitator, call, action="withdraw UFTP offer")
    (event,) = ledger.flex.events.OfferWithdrawn().process_receipt(receipt, errors=DISCARD)
    assert (event["args"]["offerId"], event["args"]["provider"], event["args"]["sourceMessage"]) == (
        offer_id,
        a.address,
        REVOCATION,
    )
    assert ledger.flex.functions.offerWithdrawn(offer_id).call() is True
    assert balances(ledger, [a.address]) == before

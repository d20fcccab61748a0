"""Flexibility payments are pulled: a recipient the token refuses blocks only its own claim, and
a token that calls back into the market is stopped by the reentrancy lock.

These tests deploy a second FlexibilityMarket whose settlement token is ``HostileToken``
(``contracts/test/``, never deployed outside tests) and drive it through the ledger's own methods.
"""

from __future__ import annotations

import copy

import pytest
from web3.logs import DISCARD

from gridledger.chain.ledger import Ledger
from gridledger.errors import LedgerError
from gridledger.flex.products import BaselineMethod, Direction, FlexOffer, FlexRequest, ServiceType
from gridledger.sim.participants import make_prosumers

DSO_FUNDS = 100_000_000


def _hostile_ledger(ledger: Ledger) -> Ledger:
    """The same chain, registry and roles, with a FlexibilityMarket settling in HostileToken."""
    w3, admin = ledger.chain.w3, ledger.roles.admin

    def deploy(name: str, *args: object) -> str:
        factory = w3.eth.contract(abi=ledger.build[name].abi, bytecode=ledger.build[name].bytecode)
        return str(ledger.tx.send(admin, factory.constructor(*args), action=f"deploy {name}")["contractAddress"])

    token_address = deploy("HostileToken")
    flex_address = deploy("FlexibilityMarket", token_address, ledger.registry.address, admin.address)
    hostile = copy.copy(ledger)
    hostile.token = w3.eth.contract(address=token_address, abi=ledger.build["HostileToken"].abi)  # type: ignore[call-overload]
    hostile.flex = w3.eth.contract(address=flex_address, abi=ledger.build["FlexibilityMarket"].abi)  # type: ignore[call-overload]
    for role, account in (
        ("DSO_ROLE", ledger.roles.dso),
        ("FACILITATOR_ROLE", ledger.roles.facilitator),
        ("METER_ROLE", ledger.roles.meter),
    ):
        role_id = hostile.flex.functions[role]().call()
        ledger.tx.send(admin, hostile.flex.functions.grantRole(role_id, account.address), action=f"grant {role}")
    return hostile


@pytest.fixture
def settled(ledger):
    """Providers A and B awarded, activated and fully delivering in every slot of a 4-slot window;
    the window has ended, nothing settled yet. Returns the hostile ledger, A, B, request id and escrow."""
    a, b = make_prosumers(ledger, count=2, deposit=1)
    hostile = _hostile_ledger(ledger)
    dso = ledger.roles.dso
    ledger.fund_gas(dso.address, 10**18)
    hostile.mint(dso.address, DSO_FUNDS)
    start = (ledger.chain.now() // 900 + 8) * 900
    request = FlexRequest(
        service=ServiceType.SECURE,
        direction=Direction.UP,
        baseline=BaselineMethod.HISTORICAL,
        congestion_bus=1,
        power_w=20_000,
        window_start=start,
        window_slots=4,
        bid_deadline=start - 3_600,
        max_availability_price_per_kwh=100_000,
        max_utilisation_price_per_kwh=300_000,
    )
    rid = hostile.post_flex_request(request)
    offers = [
        hostile.sign_offer(p, FlexOffer(p.address, rid, start, 8_000, 50_000, 200_000, bus, 0))
        for p, bus in ((a, 0), (b, 1))
    ]
    for signed in offers:
        hostile.submit_offer(signed)
    ledger.chain.move_time_to(request.bid_deadline + 1)
    hostile.award_flex(rid, [s.offer_id for s in offers], b"\x01" * 32)
    for signed in offers:
        for slot in request.slots:
            hostile.activate_flex(signed.offer_id, slot, 8_000)
    ledger.chain.move_time_to(request.window_end)
    for signed in offers:
        for slot in request.slots:
            hostile.record_flex_measurement(signed.offer_id, slot, baseline_wh=3_000, actual_wh=1_000)
    return hostile, a, b, rid, request.max_spend


# Each provider: availability 8 kW × 1 h × 0.05 = 0.40; utilisation 4 × 2,000 Wh × 0.20 = 1.60.
PAYMENT = 2_000_000


def _held(hostile: Ledger, accounts: list[str]) -> tuple[int, int]:
    """The market's token balance, and the sum of the claimable balances of ``accounts``."""
    return hostile.token_balance(hostile.flex.address), sum(hostile.flex_claimable(x) for x in accounts)


def test_a_provider_the_token_refuses_blocks_neither_settlement_nor_the_others(settled) -> None:
    hostile, a, b, rid, escrow = settled
    dso = hostile.roles.dso
    parties = [a.address, b.address, dso.address]
    hostile.tx.send(hostile.roles.admin, hostile.token.functions.setBlocked(b.address, True), action="block B")

    receipt = hostile.settle_flex(rid)  # with push payments, B's refused transfer reverted this
    (total,) = hostile.flex.events.RequestSettled().process_receipt(receipt, errors=DISCARD)
    assert (total["args"]["paid"], total["args"]["refunded"]) == (2 * PAYMENT, escrow - 2 * PAYMENT)
    assert _held(hostile, parties) == (escrow, escrow)  # conserved: every unit held is owed to someone

    hostile.claim_flex(a)
    hostile.claim_flex(dso)
    assert hostile.token_balance(a.address) == PAYMENT
    assert hostile.token_balance(dso.address) == DSO_FUNDS - 2 * PAYMENT
    with pytest.raises(LedgerError) as info:
        hostile.claim_flex(b)
    assert info.value.error == "RecipientBlocked"
    assert hostile.flex_claimable(b.address) == PAYMENT  # still owed, nothing lost
    assert _held(hostile, parties) == (PAYMENT, PAYMENT)

    hostile.tx.send(hostile.roles.admin, hostile.token.functions.setBlocked(b.address, False), action="unblock B")
    hostile.claim_flex(b)
    assert hostile.token_balance(b.address) == PAYMENT
    assert _held(hostile, parties) == (0, 0)


@pytest.mark.parametrize("reentry", ["claim", "settle"])
def test_a_token_that_calls_back_into_the_market_is_stopped_by_the_lock(settled, reentry) -> None:
    hostile, a, _, rid, escrow = settled
    hostile.settle_flex(rid)
    data = bytes.fromhex(hostile.flex.encode_abi(reentry, args=[] if reentry == "claim" else [rid])[2:])
    hook = hostile.token.functions.setHook(hostile.flex.address, data)
    hostile.tx.send(hostile.roles.admin, hook, action="arm the hook")

    with pytest.raises(LedgerError) as info:
        hostile.claim_flex(a)
    assert info.value.error == "ReentrancyGuardReentrantCall"
    assert hostile.flex_claimable(a.address) == PAYMENT
    assert hostile.token_balance(a.address) == 0
    assert hostile.token_balance(hostile.flex.address) == escrow

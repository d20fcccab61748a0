"""The market day beyond one LV grid: offers priced from the request, large customers with the
capacity and deposit their own day needs, the phase clock's figures, and keys for thousands."""

from __future__ import annotations

from eth_account import Account

from gridledger.chain.connection import FIRST_PROSUMER_INDEX, derive_account
from gridledger.config import DEV_MNEMONIC
from gridledger.flex.products import BaselineMethod, Direction, FlexRequest, ServiceType
from gridledger.network.profiles import capacity_w, day_profiles
from gridledger.sim.flex_day import LADDER_FLOOR_PERCENT, OFFER_W, offers_for
from gridledger.sim.market_day import DayConfig, run_market_day
from gridledger.sim.participants import DEFAULT_CAPACITY_W, Participant, derive_accounts

REQUEST = FlexRequest(
    ServiceType.SECURE,
    Direction.UP,
    BaselineMethod.METER_BEFORE_AFTER,
    congestion_bus=21,
    power_w=6_000,
    window_start=900 * 2_000_000,
    window_slots=4,
    bid_deadline=900 * 2_000_000 - 7_200,
    max_availability_price_per_kwh=50_000,
    max_utilisation_price_per_kwh=250_000,
)


def providers(count: int) -> list[Participant]:
    profile = day_profiles(count=1, day=173)[0]
    account = Account.from_key(b"\x01" * 32)  # the prices do not depend on who offers
    return [Participant(account, profile) for _ in range(count)]


def test_offers_stay_within_the_requests_caps_however_many_households_offer() -> None:
    """`gridledger demo --prosumers 104` stopped at onboarding: its offers' prices rose by a fixed
    step per offer (10,000 + 2,000·n for availability) whatever the DSO's caps, so the 21st of 35
    offers was above the 50,000 cap. The ladder now runs from 40 % of each cap up to the cap."""
    for count in (1, 2, 21, 35, 1_791):
        offers = offers_for(REQUEST, 7, providers(count))
        availability = [o.availability_price_per_kwh for o in offers]
        utilisation = [o.utilisation_price_per_kwh for o in offers]
        assert len(offers) == count and all(o.power_w == OFFER_W and o.request_id == 7 for o in offers)
        assert availability[0] == 50_000 * LADDER_FLOOR_PERCENT // 100 and utilisation[0] == 100_000
        assert max(availability) <= 50_000 and max(utilisation) <= 250_000
        assert availability == sorted(availability) and utilisation == sorted(utilisation)
        if count > 1:
            assert availability[-1] == 50_000 and utilisation[-1] == 250_000


def test_keys_for_thousands_are_the_mnemonics_accounts() -> None:
    fast = derive_accounts(DEV_MNEMONIC, FIRST_PROSUMER_INDEX, 3)
    assert [a.address for a in fast] == [
        derive_account(DEV_MNEMONIC, FIRST_PROSUMER_INDEX + i).address for i in range(3)
    ]


def test_mv_customers_trade_with_the_capacity_and_deposit_their_day_needs(ledger) -> None:
    # SimBench's MV grid: its loads are whole LV grids and businesses, up to megawatts each.
    config = DayConfig(prosumers=3, grid="1-MV-rural--0-sw", slots=2, first_slot=48)
    result = run_market_day(ledger, config)
    assert len(result.slots) == 2 and all(ledger.slot_state(s.delivery_start).status == "settled" for s in result.slots)
    for p in result.participants:
        registered = ledger.registry.functions.capacityOf(p.address).call()
        assert registered == capacity_w(p.profile, floor_w=DEFAULT_CAPACITY_W) >= p.profile.peak_w > DEFAULT_CAPACITY_W
        assert p.deposit > config.deposit  # a day's imports at retail, twice, is more than 50 tokens
    largest = max(o.energy_wh for s in result.slots for o, _ in s.fills)
    assert largest > 30_000 // 4  # an order a household's 30 kW connection could not carry
    parties = [p.address for p in result.participants] + [ledger.roles.balancing.address]
    assert ledger.token_balance(ledger.market.address) == sum(sum(ledger.account_of(a)) for a in parties)


def test_the_phase_clock_counts_each_phases_transactions_gas_and_orders(ledger) -> None:
    result = run_market_day(ledger, DayConfig(prosumers=5, slots=3, first_slot=48))
    phases = result.phases
    # Onboarding in batches whatever the count: registration, admission, the admin's tokens, its
    # approval and the deposits (no gas money: the facilitator relays the prosumers' orders).
    assert phases["onboarding"].transactions == 5
    assert phases["onboarding"].gas > result.gas["registerMany"] + result.gas["depositFor"] > 0
    orders = sum(s.orders for s in result.slots)
    assert phases["orders: sign"].orders == phases["orders: relay"].orders == orders > 0
    assert phases["orders: relay"].transactions == 3  # one batch a slot
    assert phases["clearing: commit"].transactions == 3 and phases["settlement"].transactions == 3
    assert phases["meter readings"].transactions == 3
    assert phases["clearing: network check"].transactions == 0 and len(phases["clearing: network check"].stretches) == 3
    gas = result.gas  # the transactor's own books, by call
    assert phases["orders: relay"].gas == gas["relayOrders"] and phases["clearing: commit"].gas == gas["commitClearing"]
    assert phases["meter readings"].gas == gas["postMeterReadings"] and phases["settlement"].gas == gas["settle"]
    assert all(f.seconds > 0 for f in phases.values())

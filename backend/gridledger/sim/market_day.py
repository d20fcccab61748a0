"""One market day on the ledger: 96 slots of orders, clearing, metering and settlement.

Each prosumer's orders follow its day-ahead net position from the SimBench profiles: a net
consumer bids to buy, a net producer offers to sell, at limit prices between the feed-in
tariff and the retail tariff. Slots run as a pipeline on the chain's clock:

    ds − gate − 540 s  the facilitator relays the slot's signed orders (right after the slot
                       before starts: a devnet's clock runs on while thousands of orders go in)
    ds − gate          the gate closes; the facilitator clears the slot from the recorded orders
    ds + 900 s         delivery ends; the meter operator posts readings and the slot settles

Meter readings are the profile with a random deviation (load and PV each off by a normally
distributed error), so sellers sometimes fall short and buyers sometimes take less.

The prosumers are the grid's loads (any SimBench grid ``network.profiles`` supports, up to its
number of loads); each is connected with a capacity and a deposit its own day needs, so an MV
load of a feeder trades as a household does. A ``PhaseClock`` times each phase of the day.
"""

from __future__ import annotations

import gc
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from gridledger.chain.ledger import Ledger
from gridledger.errors import ConfigurationError
from gridledger.facilitation import FacilitatedSlot, commit, facilitate
from gridledger.market.clearing import ClearingResult
from gridledger.market.orders import Order, Side, SignedOrder
from gridledger.network.curtailment import NetworkClearing
from gridledger.network.model import Limits
from gridledger.network.profiles import ProsumerProfile, capacity_w, day_profiles
from gridledger.network.validation import NetworkReport
from gridledger.settlement.rules import SlotSettlement, settle_slot
from gridledger.sim.flex_day import FlexCycle, FlexOutcome, covers_window
from gridledger.sim.grid_day import GridDay
from gridledger.sim.participants import DEFAULT_CAPACITY_W, Participant, make_prosumers
from gridledger.sim.phases import PhaseClock, PhaseFigures
from gridledger.store.reports import ReportStore
from gridledger.units import DEFAULT_GRID, SLOT_HOURS, SLOT_SECONDS, SLOTS_PER_DAY

# How long before its gate a slot's orders are relayed: 60 s was too short on a Hardhat or anvil
# node, whose clock runs in real time (a 5,000-prosumer slot's relay took 85 s on a loaded machine
# and the gate closed on it). 540 s starts right after the slot before (ds − 900 s) has begun.
RELAY_LEAD_SECONDS = 540


@dataclass(frozen=True)
class DayConfig:
    prosumers: int = 24
    day: int = 173  # 21 June 2016, a clear midsummer day in SimBench's profile year
    grid: str = DEFAULT_GRID
    slots: int = SLOTS_PER_DAY
    first_slot: int = 0  # index of the first slot of the day to run (44 = 11:00)
    seed: int = 7
    feed_in_per_kwh: int = 80_000  # 0.08 per kWh
    retail_per_kwh: int = 300_000  # 0.30 per kWh
    meter_deviation: float = 0.10  # standard deviation of the metered error, per unit
    deposit: int = 50_000_000  # 50 tokens per prosumer, or what its day needs if that is more
    balancing_float: int = 1_000_000_000  # 1,000 tokens for the balancing account
    min_order_wh: int = 10
    limits: Limits = field(default_factory=Limits)
    database: str | None = None  # SQLite file for the network reports (None: in memory)
    flex: bool = True  # the DSO's evening flexibility request (when the run covers its window)
    network_tariff_per_kwh: int = 0  # the DSO's flat use-of-system tariff on traded energy, set before the day


@dataclass
class SlotOutcome:
    index: int
    delivery_start: int
    orders: int
    fills: list[tuple[Order, int]]
    clearing: ClearingResult
    readings_wh: dict[str, int]
    settlement: SlotSettlement
    network: NetworkClearing
    report: NetworkReport


@dataclass
class DayResult:
    config: DayConfig
    participants: list[Participant]
    slots: list[SlotOutcome] = field(default_factory=list)
    final_available: dict[str, int] = field(default_factory=dict)
    gas: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    flex: FlexOutcome | None = None
    phases: dict[str, PhaseFigures] = field(default_factory=dict)


def run_market_day(
    ledger: Ledger,
    config: DayConfig = DayConfig(),
    *,
    on_slot: Callable[[SlotOutcome], None] | None = None,
    clock: PhaseClock | None = None,
) -> DayResult:
    """Runs a market day on ``ledger`` (a chain whose clock can be moved); ``clock`` (made on
    ``ledger``) collects each phase's time, transactions and gas."""
    started = time.perf_counter()
    clock = clock or PhaseClock(ledger)
    if not 0 <= config.first_slot < config.first_slot + config.slots <= SLOTS_PER_DAY:
        raise ConfigurationError(
            f"slots {config.first_slot} to {config.first_slot + config.slots - 1} are outside the day's 0 to "
            f"{SLOTS_PER_DAY - 1}"
        )
    rng = random.Random(config.seed)
    with clock.phase("network model"):
        profiles = day_profiles(count=config.prosumers, day=config.day, grid=config.grid)
        grid = GridDay(config.grid, config.day, config.limits, profiles)
    deposits = [_deposit_for(p, config) for p in profiles]
    with clock.phase("onboarding"):
        accounts = make_prosumers(
            ledger,
            count=len(profiles),
            deposit=config.deposit,
            buses=[p.bus for p in profiles],
            capacities_w=[capacity_w(p, floor_w=DEFAULT_CAPACITY_W) for p in profiles],
            deposits=deposits,
            gas_money=False,  # the facilitator relays their orders: they send no transaction of their own
        )
    participants = [Participant(a, p, d) for a, p, d in zip(accounts, profiles, deposits, strict=True)]
    grid.bus_of = {p.address: p.profile.bus for p in participants}
    store = ReportStore(config.database or ":memory:")
    balancing = ledger.roles.balancing
    ledger.fund_gas(balancing.address, 10**18)
    ledger.mint(balancing.address, config.balancing_float)
    ledger.deposit(balancing, config.balancing_float)

    gate = int(ledger.market.functions.GATE_CLOSURE_SECONDS().call())
    shortfall_price, surplus_price = ledger.market.functions.imbalancePrices().call()
    day_start = first_day_start(ledger.chain.now(), config.day)
    result = DayResult(config=config, participants=participants)
    if config.network_tariff_per_kwh:
        with clock.phase("network tariff"):
            first = day_start + config.first_slot * SLOT_SECONDS
            ledger.set_network_tariff(first, [config.network_tariff_per_kwh] * config.slots)
    cycle = None
    if config.flex and covers_window(config.first_slot, config.slots):
        with clock.phase("flexibility"):
            cycle = FlexCycle(ledger, grid, participants, day_start, random.Random(config.seed + 1))

    def clear(k: int) -> tuple[int, FacilitatedSlot, int]:
        """Slot ``k`` up to its commit: orders relayed nine minutes before its gate, cleared at the gate."""
        ds = day_start + k * SLOT_SECONDS
        ledger.chain.move_time_to(ds - gate - RELAY_LEAD_SECONDS)
        if cycle:
            with clock.phase("flexibility"):
                cycle.before_slot(ds)
        with clock.phase("orders: sign") as signing:
            signed = [s for p in participants if (s := _order_for(ledger, p, k, ds, config, rng)) is not None]
            signing.orders += len(signed)
        first_block = ledger.chain.w3.eth.block_number
        with clock.phase("orders: relay", orders=len(signed)):
            if signed:
                ledger.relay_orders(signed)
        ledger.chain.move_time_to(ds - gate)
        with clock.phase("clearing: read orders"):
            recorded = ledger.recorded_orders(ds, from_block=first_block)  # what the chain recorded, not what was sent
        with clock.phase("clearing: network check", orders=len(recorded)):
            inputs = grid.inputs(
                ds, recorded, cycle.dispatched(ds) if cycle else [], network_charge_per_kwh=ledger.network_tariff(ds)
            )
            slot = facilitate(grid.model, grid.engine, inputs)
        with clock.phase("clearing: commit", orders=len(recorded)):
            commit(ledger, store, grid.model, slot)
        return k, slot, len(signed)

    def settle(k: int, slot: FacilitatedSlot, orders: int) -> None:
        """Slot ``k`` after delivery: meter readings, settlement, and the day's record of it."""
        ds, fills = slot.delivery_start, slot.order_fills
        ledger.chain.move_time_to(ds + SLOT_SECONDS)
        with clock.phase("meter readings"):
            readings = {p.address: _metered_wh(p.profile, k, config, rng) for p in participants}
            if cycle:
                readings = cycle.adjust_readings(ds, readings)
            ledger.post_meter_readings(ds, readings)
        with clock.phase("settlement", orders=len(fills)):
            ledger.settle(ds, fills)
        if cycle:
            with clock.phase("flexibility"):
                cycle.after_metering(ds)
        settlement = settle_slot(
            fills,
            readings,
            price_per_kwh=slot.clearing.ledger_price,
            shortfall_price_per_kwh=shortfall_price,
            surplus_price_per_kwh=surplus_price,
            network_charge_per_kwh=slot.inputs.network_charge_per_kwh,
        )
        outcome = SlotOutcome(k, ds, orders, fills, slot.clearing, readings, settlement, slot.network, slot.report)
        result.slots.append(outcome)
        if on_slot:
            on_slot(outcome)

    # A pipeline on the chain's clock: slot k clears at its gate, before slot k − 1 ends and settles.
    pending = None
    with _long_lived_heap():
        for k in range(config.first_slot, config.first_slot + config.slots):
            cleared = clear(k)
            if pending:
                settle(*pending)
            pending = cleared
        if pending:
            settle(*pending)

    result.flex = cycle.outcome if cycle else None
    with clock.phase("balances"):
        result.final_available = _available(ledger, [p.address for p in participants])
    result.gas = dict(ledger.tx.gas_used)
    result.seconds = time.perf_counter() - started
    result.phases = clock.figures
    return result


def _available(ledger: Ledger, addresses: list[str], *, batch: int = 500) -> dict[str, int]:
    """Each account's available balance in the market, read ``batch`` accounts a call
    (``accountsOf``) rather than one call each: a thousand calls took 13 s on the embedded chain."""
    available: dict[str, int] = {}
    for start in range(0, len(addresses), batch):
        chunk = addresses[start : start + batch]
        call = ledger.market.functions.accountsOf(chunk)  # decoded with eth-abi: web3's .call() took seconds
        (accounts,) = ledger.tx.view(call, ("(uint128,uint128)[]",), action="the day's final balances")
        available.update((a, int(account[0])) for a, account in zip(chunk, accounts, strict=True))
    return available


@contextmanager
def _long_lived_heap() -> Iterator[None]:
    """Keeps what exists now (the grid, its model, the SimBench tables, the accounts) out of the
    garbage collector's full collections while the slots run. A full collection walks every
    tracked object: about half a second with an MV/LV grid loaded, which the thousands of
    objects each slot of a feeder allocates would trigger about once a slot."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _deposit_for(profile: ProsumerProfile, config: DayConfig) -> int:
    """``config.deposit``, or twice the day's imports at the retail tariff if that is more: what
    a large load (an MV customer of a feeder) must hold for its escrow and settlement."""
    imports_wh = float(profile.load_w.sum()) * SLOT_HOURS
    return max(config.deposit, 2 * round(imports_wh * config.retail_per_kwh / 1_000))


def first_day_start(now: int, day: int) -> int:
    """The first midnight (UTC) after ``now`` that starts day ``day`` of its year: the run's
    delivery times then imply the profile day it simulates, as the audit checks."""
    year = datetime.fromtimestamp(now, tz=UTC).year
    for y in range(year, year + 9):  # day 366 needs a leap year
        start = datetime(y, 1, 1, tzinfo=UTC) + timedelta(days=day - 1)
        if start.year == y and start.timestamp() > now:
            return int(start.timestamp())
    raise ConfigurationError(f"no day {day} of a year within eight years of the chain's clock")


def _order_for(
    ledger: Ledger, participant: Participant, k: int, ds: int, config: DayConfig, rng: random.Random
) -> SignedOrder | None:
    """The prosumer's signed order for slot ``k``: its forecast net position at a limit price."""
    net_wh = round(float(participant.profile.net_w[k]) * SLOT_HOURS)
    spread = (config.retail_per_kwh - config.feed_in_per_kwh) / 2
    u = rng.random()
    if abs(net_wh) < config.min_order_wh:
        return None
    if net_wh > 0:
        side, price = Side.BUY, round(config.retail_per_kwh - u * spread)
    else:
        side, price = Side.SELL, round(config.feed_in_per_kwh + u * spread)
    order = Order(
        prosumer=participant.address,
        side=side,
        delivery_start=ds,
        energy_wh=abs(net_wh),
        price_per_kwh=price,
        nonce=participant.next_nonce,
        expiry=ds,
    )
    participant.next_nonce += 1
    return ledger.sign(participant.account, order)


def _metered_wh(profile: ProsumerProfile, k: int, config: DayConfig, rng: random.Random) -> int:
    """What the meter measures: the profile with a normally distributed error on load and PV."""
    load = max(0.0, float(profile.load_w[k]) * (1 + rng.gauss(0, config.meter_deviation)))
    pv = max(0.0, float(profile.pv_w[k]) * (1 + rng.gauss(0, config.meter_deviation)))
    return round((load - pv) * SLOT_HOURS)

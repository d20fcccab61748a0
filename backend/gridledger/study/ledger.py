"""Whole days of the study on the ledger (the embedded chain by default): the same participants,
orders, ``facilitate`` and ``commit`` as the market-day path, the DSO's network tariff set on the
market, the flexibility the design offers standing on the FlexibilityMarket (requested by the
DSO, offered and signed by the participants, awarded, activated by the facilitator's joint
clearing, measured and settled), then meter readings and settlement, recorded slot by slot so
that the study's fast path can be compared with it to the Wh and the token base unit.

Design (c) offers PV curtailment; (d) also the batteries' room to charge or discharge more (each
day's reservation for the DSO shapes their orders, as in the fast path). Chain slots are an hour
apart (each settles, and the batteries' state of charge is known, before the next one's gate
closes), so a request's window of 96 quarter-hours covers 24 of the study's slots.

What the chain settles differently from the study's accounts (``study.accounts``): energy an
activation takes off a fill is settled at the market's imbalance prices, where the study values
activated energy at the slot's price; energy beyond a fill is the supplier's on both. The
availability the study pays for reserved room has no counterpart here (the offers ask none).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from web3.logs import DISCARD

from gridledger.chain.connection import FIRST_PROSUMER_INDEX, derive_account
from gridledger.chain.ledger import Ledger
from gridledger.config import Settings
from gridledger.errors import ConfigurationError
from gridledger.facilitation import FacilitatedSlot, SlotInputs, commit, facilitate, register_participant
from gridledger.flex.coordination import FlexUnit
from gridledger.flex.products import BaselineMethod, Direction, FlexOffer, FlexRequest, ServiceType
from gridledger.market.book import clear_recorded
from gridledger.market.orders import Order, RecordedOrder, Side
from gridledger.settlement.rules import cost, revenue
from gridledger.store.reports import ReportStore
from gridledger.study.devices import Batteries
from gridledger.study.market import BATTERY_DOWN, BATTERY_UP, PV_CURTAILMENT, MarketStudy
from gridledger.study.records import Design, DesignRun, SlotRecord
from gridledger.units import SLOT_SECONDS, SLOTS_PER_DAY, SLOTS_PER_HOUR

GAS_MONEY_WEI = 10**18
DEPOSIT = 1_000_000_000  # 1,000 tokens per participant: any slot's escrow fits
CHAIN_STRIDE = 4  # chain slots an hour apart
WINDOW = SLOTS_PER_DAY // CHAIN_STRIDE  # study slots per flexibility request (its window: 96 quarter-hours)
LEDGER_DESIGNS = (Design.P2P_THEN_CURTAILMENT, Design.JOINT)


@dataclass
class LedgerSlots:
    """What the ledger recorded for each slot, and each participant's balances' changes."""

    records: list[SlotRecord] = field(default_factory=list)
    metered_wh: list[dict[int, int]] = field(default_factory=list)  # per slot: participant → meter reading
    balance_change: dict[int, int] = field(default_factory=dict)  # participant → base units, energy market
    flex_paid: dict[int, int] = field(default_factory=dict)  # participant → base units, flexibility market
    dso_network_charges: int = 0  # the DSO's account in the energy market
    gas_per_slot: list[int] = field(default_factory=list)
    seconds: float = 0.0


def run_on_ledger(
    ledger: Ledger,
    study: MarketStudy,
    *,
    design: Design,
    first_slot: int,
    days: int,
    soc_wh: np.ndarray,
    tariff: np.ndarray,
    flexibility: bool = True,
    on_slot: Callable[[SlotRecord], None] | None = None,
) -> LedgerSlots:
    """Runs ``days`` whole days of ``design`` from ``first_slot`` (the start of a day) on
    ``ledger``, the batteries starting at ``soc_wh``, with the network tariff ``tariff`` per slot."""
    _require_span(design, first_slot, days, tariff)
    started = time.perf_counter()
    slots = days * SLOTS_PER_DAY
    grid = study.grid
    accounts = _onboard(ledger, study, first_slot, slots)
    address: dict[int, str] = {i: str(a.address) for i, a in enumerate(accounts)}
    participant_of = {a: i for i, a in address.items()}
    bus_of = {a: grid.participants[i].bus for i, a in address.items()}
    before = {i: ledger.account_of(a)[0] for i, a in address.items()}
    dso_account = str(ledger.market.functions.DSO_ACCOUNT().call())
    dso_before = ledger.account_of(dso_account)[0]
    ledger.fund_gas(ledger.roles.dso.address, GAS_MONEY_WEI)
    store = ReportStore(":memory:")
    gate = int(ledger.market.functions.GATE_CLOSURE_SECONDS().call())
    start = (ledger.chain.now() // SLOT_SECONDS + 8) * SLOT_SECONDS  # the first slot: two hours ahead

    def ds_of(n: int) -> int:
        return start + n * CHAIN_STRIDE * SLOT_SECONDS

    standing = (
        StandingOffers(ledger, study, accounts, design, first_slot, slots, ds_of, bid_deadline=start - gate - 900)
        if flexibility
        else None
    )
    scratch = DesignRun(design, first_slot, slots, len(grid.participants), len(study.bats))  # for the reservation
    reserve: np.ndarray | None = None
    batteries = Batteries(grid.batteries, soc_wh)
    out = LedgerSlots()
    for n in range(slots):
        slot, ds = first_slot + n, ds_of(n)
        if design is Design.JOINT and n % SLOTS_PER_DAY == 0:
            reserve = study.reserve(scratch, n // SLOTS_PER_DAY)
        gas_before = sum(ledger.tx.gas_used.values())
        ledger.chain.move_time_to(ds - gate - 120)
        if tariff[n]:
            ledger.set_network_tariff(ds, [int(tariff[n])])
        order_wh = study.orders_wh(slot, batteries, reserve[n % SLOTS_PER_DAY] if reserve is not None else None)
        signed = []
        for j in (int(x) for x in np.flatnonzero(order_wh)):
            side = Side.BUY if order_wh[j] > 0 else Side.SELL
            order = Order(address[j], side, ds, int(abs(order_wh[j])), study.limit_price(j, side), slot, ds)
            signed.append(ledger.sign(accounts[j], order))
        first_block = ledger.chain.w3.eth.block_number
        ledger.relay_orders(signed)  # in participant order: the arrival order the study uses
        ledger.chain.move_time_to(ds - gate)
        recorded = ledger.recorded_orders(ds, from_block=first_block)
        charge = ledger.network_tariff(ds)  # the facilitator reads the DSO's tariff from the market
        units: list[FlexUnit] = []
        if standing:
            _, market = clear_recorded(recorded, network_charge_per_kwh=charge)
            fill = np.zeros(len(address), dtype=np.int64)
            for r in recorded:
                fill[participant_of[r.order.prosumer]] = market.fills[r.order_hash] * (
                    1 if r.order.side is Side.BUY else -1
                )
            units = standing.units(n, order_wh, fill, batteries)
        inputs = SlotInputs(ds, grid.baseline(slot), recorded, bus_of, flex=units, network_charge_per_kwh=charge)
        result = facilitate(grid.model, grid.engine, inputs)
        commit(ledger, store, grid.model, result)  # activates what the joint clearing chose
        ledger.chain.move_time_to(ds + SLOT_SECONDS)
        fills, curtailed, flex, metered = _outcome(result, order_wh, participant_of, standing)
        readings = {address[int(j)]: int(metered[j]) for j in np.flatnonzero(order_wh | metered)}
        ledger.post_meter_readings(ds, readings)
        ledger.settle(ds, result.order_fills)
        for oid in result.activations:
            assert standing is not None  # activations come only from offered units
            i, _ = standing.provider[oid]
            actual = int(metered[i])
            ledger.record_flex_measurement(oid, ds, baseline_wh=actual - flex[i], actual_wh=actual)
        batteries.apply(metered[study.bats])
        state = ledger.slot_state(ds)
        record = SlotRecord(
            slot=slot,
            price_per_kwh=int(state.clearing_price_per_kwh),
            network_charge_per_kwh=int(state.network_tariff_per_kwh),
            fills_wh=fills,
            network_charges=_network_charges(ledger, ds, first_block, participant_of, recorded),
            curtailed_wh=curtailed,
            flex_wh=flex,
            soc_wh=tuple(round(float(v)) for v in batteries.soc_wh),
        )
        out.records.append(record)
        out.metered_wh.append({i: int(v) for i, v in enumerate(metered) if v})
        if standing and (n % WINDOW == WINDOW - 1 or n == slots - 1):
            for i, paid in standing.settle(n // WINDOW).items():
                out.flex_paid[i] = out.flex_paid.get(i, 0) + paid
        out.gas_per_slot.append(sum(ledger.tx.gas_used.values()) - gas_before)
        if on_slot:
            on_slot(record)
    out.balance_change = {i: ledger.account_of(a)[0] - before[i] for i, a in address.items()}
    out.dso_network_charges = ledger.account_of(dso_account)[0] - dso_before
    out.seconds = time.perf_counter() - started
    return out


def _outcome(
    result: FacilitatedSlot, order_wh: np.ndarray, participant_of: dict[str, int], standing: StandingOffers | None
) -> tuple[dict[int, int], dict[int, int], dict[int, int], np.ndarray]:
    """A facilitated slot per participant: fills after the network check (signed), Wh curtailed,
    flexibility activated (signed: + Down) and what each meter reads (perfect forecasts: the
    order, less what was curtailed, plus what was activated)."""
    fills: dict[int, int] = {}
    curtailed: dict[int, int] = {}
    flex: dict[int, int] = {}
    metered = order_wh.copy()
    for r, kept in result.fills:
        i = participant_of[r.order.prosumer]
        sign = 1 if r.order.side is Side.BUY else -1
        cut = result.clearing.fills[r.order_hash] - kept
        if kept:
            fills[i] = sign * kept
        if cut:
            curtailed[i] = cut
            metered[i] -= sign * cut
    for oid, wh in result.activations.items():
        assert standing is not None  # activations come only from offered units
        i, direction = standing.provider[oid]
        flex[i] = flex.get(i, 0) + (-wh if direction is Direction.UP else wh)
    for i, wh in flex.items():
        metered[i] += wh
    return fills, curtailed, flex, metered


class StandingOffers:
    """The flexibility the design offers, standing on the FlexibilityMarket for every window of
    the run: the DSO requests Down (and, in (d), Up) flexibility at the transformer; each PV
    offers to generate less and, in (d), each battery to charge more (Down) or discharge more
    (Up), at the study's utilisation prices and no availability price; the facilitator awards
    every offer. Each slot, the study's own offers (``MarketStudy.flex_offers``) become units
    named by the awarded offers' ids, so ``facilitate`` sees what the fast path gives it."""

    def __init__(
        self,
        ledger: Ledger,
        study: MarketStudy,
        accounts: list[LocalAccount],
        design: Design,
        first_slot: int,
        slots: int,
        ds_of: Callable[[int], int],
        *,
        bid_deadline: int,
    ) -> None:
        self.ledger, self.study, self.design = ledger, study, design
        c = study.config
        self.offer: dict[tuple[int, int, int], bytes] = {}  # (window, kind, participant) → offer id
        self.provider: dict[bytes, tuple[int, Direction]] = {}
        self.requests: dict[int, list[int]] = {}  # window → request ids
        awarded: dict[int, list[bytes]] = {}  # request id → its offers
        trafo_bus = int(study.grid.model.net.trafo.lv_bus.iloc[0])
        battery_w = [round(s.power_w) * 2 for s in study.grid.batteries]  # up to full power the other way
        for w in range((slots + WINDOW - 1) // WINDOW):
            n0, n1 = w * WINDOW, min(slots, (w + 1) * WINDOW)
            span = slice(first_slot + n0, first_slot + n1)
            down = [
                (PV_CURTAILMENT, int(i), int(study.pv_wh[span, k].max()) * SLOTS_PER_HOUR, c.pv_curtailment_per_kwh)
                for k, i in enumerate(study.pvs)
                if study.pv_wh[span, k].max() > 0
            ]
            up: list[tuple[int, int, int, int]] = []
            if design is Design.JOINT:
                price = c.battery_utilisation_per_kwh
                down += [(BATTERY_DOWN, int(i), battery_w[b], price) for b, i in enumerate(study.bats)]
                up += [(BATTERY_UP, int(i), battery_w[b], price) for b, i in enumerate(study.bats)]
            self.requests[w] = []
            for offers, direction in ((down, Direction.DOWN), (up, Direction.UP)):
                if not offers:
                    continue
                request = FlexRequest(
                    ServiceType.SECURE,
                    direction,
                    BaselineMethod.NOMINATED,
                    congestion_bus=trafo_bus,
                    power_w=max(p for _, _, p, _ in offers),
                    window_start=ds_of(n0),
                    window_slots=(n1 - n0 - 1) * CHAIN_STRIDE + 1,
                    bid_deadline=bid_deadline,
                    max_availability_price_per_kwh=0,
                    max_utilisation_price_per_kwh=max(price for _, _, _, price in offers),
                )
                ledger.mint(ledger.roles.dso.address, request.max_spend)
                request_id = ledger.post_flex_request(request)
                self.requests[w].append(request_id)
                awarded[request_id] = []
                for kind, i, power_w, price in offers:
                    offer = FlexOffer(
                        accounts[i].address, request_id, request.window_start, power_w, 0, price,
                        study.grid.participants[i].bus, len(self.offer),
                    )  # fmt: skip
                    signed = ledger.sign_offer(accounts[i], offer)
                    ledger.submit_offer(signed)
                    self.offer[(w, kind, i)] = signed.offer_id
                    awarded[request_id].append(signed.offer_id)
                    self.provider[signed.offer_id] = (i, direction)
        ledger.chain.move_time_to(bid_deadline + 1)
        for request_id, offer_ids in awarded.items():
            ledger.award_flex(request_id, offer_ids, keccak(b"study: every standing offer awarded"))

    def units(self, n: int, order: np.ndarray, fill: np.ndarray, batteries: Batteries) -> list[FlexUnit]:
        """Slot ``n``'s units: the study's offers under the awarded offers' ids."""
        units = []
        grid = self.study.grid
        for kind, i, direction, max_wh, price in self.study.flex_offers(self.design, order, fill, batteries):
            oid = self.offer.get((n // WINDOW, kind, i))
            if oid is None:
                raise ConfigurationError(f"participant {i} offers flexibility (kind {kind}) with no standing offer")
            units.append(FlexUnit(oid, grid.participants[i].bus, direction, max_wh, price))
        return units

    def settle(self, window: int) -> dict[int, int]:
        """Settles the window's requests; returns each provider's utilisation payment."""
        paid: dict[int, int] = {}
        for request_id in self.requests.get(window, []):
            receipt = self.ledger.settle_flex(request_id)
            for event in self.ledger.flex.events.OfferSettled().process_receipt(receipt, errors=DISCARD):
                i, _ = self.provider[bytes(event["args"]["offerId"])]
                amount = int(event["args"]["availabilityPayment"]) + int(event["args"]["utilisationPayment"])
                if amount:
                    paid[i] = paid.get(i, 0) + amount
        return paid


def _network_charges(
    ledger: Ledger, ds: int, from_block: int, participant_of: dict[str, int], recorded: list[RecordedOrder]
) -> dict[int, int]:
    """Each buyer's network charge for the slot as the market's ``OrderFilled`` events state it."""
    owner = {r.order_hash: participant_of[r.order.prosumer] for r in recorded}
    charges: dict[int, int] = {}
    logs = ledger.market.events.OrderFilled.get_logs(from_block=from_block, argument_filters={"deliveryStart": ds})
    for log in logs:
        amount = int(log["args"]["networkCharge"])
        if amount:
            i = owner[bytes(log["args"]["orderHash"])]
            charges[i] = charges.get(i, 0) + amount
    return charges


def _require_span(design: Design, first_slot: int, days: int, tariff: np.ndarray) -> None:
    if design not in LEDGER_DESIGNS:
        allowed = ", ".join(d.value for d in LEDGER_DESIGNS)
        raise ConfigurationError(f"design ({design.value}) does not run on the ledger; allowed: {allowed}")
    if first_slot % SLOTS_PER_DAY or days < 1:
        raise ConfigurationError(f"the ledger runs whole days: first slot {first_slot} must start a day, days ≥ 1")
    if len(tariff) != days * SLOTS_PER_DAY:
        raise ConfigurationError(f"the tariff has {len(tariff)} slots, the run {days * SLOTS_PER_DAY}")


def reference_run(
    study: MarketStudy,
    *,
    design: Design,
    first_slot: int,
    days: int,
    soc_wh: np.ndarray,
    tariff: np.ndarray,
    flexibility: bool = True,
) -> DesignRun:
    """The fast path of what ``run_on_ledger`` runs: ``design`` over ``days`` whole days from
    ``first_slot``, the batteries at ``soc_wh``, the network tariff ``tariff`` per slot."""
    _require_span(design, first_slot, days, tariff)
    run = DesignRun(design, first_slot, days * SLOTS_PER_DAY, len(study.grid.participants), len(study.bats))
    run.flexibility = flexibility
    run.soc_wh[0] = soc_wh
    run.tariff[:] = tariff
    for day in range(days):
        study.relieve_day(run, day)
    return run


def compare(study: MarketStudy, reference: DesignRun, on_chain: LedgerSlots) -> list[int]:
    """The slots (of the year) whose ledger record or meter readings differ from the fast path's."""
    battery_of = [int(i) for i in study.bats]
    metered = reference.metered_wh
    return [
        r.slot
        for k, r in enumerate(on_chain.records)
        if r != reference.record(k, battery_of)
        or on_chain.metered_wh[k] != {i: int(v) for i, v in enumerate(metered[k]) if v}
    ]


def market_money(record: SlotRecord, metered: dict[int, int], *, shortfall: int, surplus: int) -> dict[int, int]:
    """What the energy market's settlement rule pays (+) and charges (−) each participant for a
    slot: its fill at the price (a buyer also the network charge), and the part of its fill its
    meter did not match, bought back (surplus) or charged (shortfall) at the imbalance prices."""
    money: dict[int, int] = {}
    for i, wh in record.fills_wh.items():
        if wh > 0:
            missing = wh - min(wh, max(metered.get(i, 0), 0))
            money[i] = -cost(wh, record.price_per_kwh + record.network_charge_per_kwh) + revenue(missing, surplus)
        else:
            missing = -wh - min(-wh, max(-metered.get(i, 0), 0))
            money[i] = revenue(-wh, record.price_per_kwh) - revenue(missing, shortfall)
    return money


def flex_money(study: MarketStudy, run: DesignRun) -> dict[int, int]:
    """What the fast path pays each provider for the flexibility it activated (utilisation and
    PV curtailment, rounded down per slot as the FlexibilityMarket does)."""
    c = study.config
    price = np.full(len(study.grid.participants), c.battery_utilisation_per_kwh, dtype=np.int64)
    price[study.pvs] = c.pv_curtailment_per_kwh
    paid = (np.abs(run.flex_wh) * price[None, :] // 1000).sum(axis=0)
    return {i: int(v) for i, v in enumerate(paid) if v}


def _onboard(ledger: Ledger, study: MarketStudy, first_slot: int, slots: int) -> list[LocalAccount]:
    """A key per participant (from the development mnemonic, after the role accounts), registered
    at its bus with the capacity its largest order or offer needs, gas money and a deposit."""
    seed = Settings().mnemonic
    span = slice(first_slot, first_slot + slots)
    largest = np.zeros(len(study.grid.participants))
    largest[study.loads] = study.load_wh[span].max(axis=0)
    largest[study.pvs] = study.pv_wh[span].max(axis=0)
    largest[study.bats] = 2 * Batteries(study.grid.batteries).power_wh  # an offer reverses a full-power order
    accounts = []
    for p in study.grid.participants:
        account = derive_account(seed, FIRST_PROSUMER_INDEX + p.index)
        ledger.fund_gas(account.address, GAS_MONEY_WEI)
        capacity_w = int(max(4, np.ceil(largest[p.index] + 1) * SLOTS_PER_HOUR))
        register_participant(
            ledger, study.grid.model, account.address, meter_id=5000 + p.index, bus=p.bus, capacity_w=capacity_w
        )
        ledger.mint(account.address, DEPOSIT)
        ledger.deposit(account, DEPOSIT)
        accounts.append(account)
    return accounts

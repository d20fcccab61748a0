"""Slots of the study on the ledger (the embedded chain by default): the same participants,
orders, ``facilitate`` and ``commit`` as the market-day path, then meter readings and
settlement, recorded slot by slot so that the study's fast path can be compared with it to the
Wh and the token base unit.

What runs here is design (c) without flexibility (the facilitator curtails trades, as the ledger
path does today when nobody offers flexibility) with no network charge: today's contracts have
neither the network charge nor standing flexibility offers for every slot (``README``: what is
not here yet). Each battery's orders come from its own state of charge as this run carries it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from eth_account.signers.local import LocalAccount

from gridledger.chain.connection import FIRST_PROSUMER_INDEX, derive_account
from gridledger.chain.ledger import Ledger
from gridledger.config import Settings
from gridledger.facilitation import SlotInputs, commit, facilitate, register_participant
from gridledger.market.orders import Order, Side
from gridledger.settlement.rules import cost, revenue
from gridledger.store.reports import ReportStore
from gridledger.study.devices import Batteries
from gridledger.study.market import MarketStudy
from gridledger.study.records import Design, DesignRun, SlotRecord
from gridledger.units import SLOT_SECONDS, SLOTS_PER_DAY, SLOTS_PER_HOUR

GAS_MONEY_WEI = 10**18
DEPOSIT = 1_000_000_000  # 1,000 tokens per participant: any slot's escrow fits


@dataclass
class LedgerSlots:
    """What the ledger recorded for each slot, and each participant's market balance change."""

    records: list[SlotRecord] = field(default_factory=list)
    balance_change: dict[int, int] = field(default_factory=dict)  # participant → base units
    gas_per_slot: list[int] = field(default_factory=list)
    seconds: float = 0.0


def run_on_ledger(
    ledger: Ledger,
    study: MarketStudy,
    *,
    first_slot: int,
    slots: int,
    soc_wh: np.ndarray,
    on_slot: Callable[[SlotRecord], None] | None = None,
) -> LedgerSlots:
    """Runs ``slots`` slots of the year from ``first_slot`` on ``ledger``, the batteries starting
    at ``soc_wh``."""
    started = time.perf_counter()
    grid = study.grid
    accounts = _onboard(ledger, study, first_slot, slots)
    address: dict[int, str] = {i: str(a.address) for i, a in enumerate(accounts)}
    participant_of = {a: i for i, a in address.items()}
    bus_of = {a: grid.participants[i].bus for i, a in address.items()}
    before = {i: ledger.account_of(a)[0] for i, a in address.items()}
    store = ReportStore(":memory:")
    gate = int(ledger.market.functions.GATE_CLOSURE_SECONDS().call())
    start = (ledger.chain.now() // SLOT_SECONDS + 8) * SLOT_SECONDS  # the first slot: two hours ahead
    batteries = Batteries(grid.batteries, soc_wh)
    out = LedgerSlots()
    for n in range(slots):
        slot = first_slot + n
        ds = start + n * 4 * SLOT_SECONDS  # an hour apart: each slot settles before the next one's gate
        gas_before = sum(ledger.tx.gas_used.values())
        ledger.chain.move_time_to(ds - gate - 60)
        order_wh = study.orders_wh(slot, batteries)
        signed = []
        for j in (int(x) for x in np.flatnonzero(order_wh)):
            side = Side.BUY if order_wh[j] > 0 else Side.SELL
            order = Order(address[j], side, ds, int(abs(order_wh[j])), study.limit_price(j, side), slot, ds)
            signed.append(ledger.sign(accounts[j], order))
        first_block = ledger.chain.w3.eth.block_number
        ledger.relay_orders(signed)  # in participant order: the arrival order the study uses
        ledger.chain.move_time_to(ds - gate)
        recorded = ledger.recorded_orders(ds, from_block=first_block)
        result = facilitate(grid.model, grid.engine, SlotInputs(ds, grid.baseline(slot), recorded, bus_of))
        commit(ledger, store, grid.model, result)
        ledger.chain.move_time_to(ds + SLOT_SECONDS)
        fills: dict[int, int] = {}
        curtailed: dict[int, int] = {}
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
        ledger.post_meter_readings(ds, {address[int(j)]: int(metered[j]) for j in np.flatnonzero(order_wh)})
        ledger.settle(ds, result.order_fills)
        batteries.apply(metered[study.bats])
        record = SlotRecord(
            slot=slot,
            price_per_kwh=result.clearing.ledger_price,
            network_charge_per_kwh=0,
            fills_wh=fills,
            network_charges={},
            curtailed_wh=curtailed,
            flex_wh={},
            soc_wh=tuple(round(float(v)) for v in batteries.soc_wh),
        )
        out.records.append(record)
        out.gas_per_slot.append(sum(ledger.tx.gas_used.values()) - gas_before)
        if on_slot:
            on_slot(record)
    out.balance_change = {i: ledger.account_of(a)[0] - before[i] for i, a in address.items()}
    out.seconds = time.perf_counter() - started
    return out


def reference_run(study: MarketStudy, *, first_slot: int, slots: int, soc_wh: np.ndarray) -> DesignRun:
    """The fast path of what ``run_on_ledger`` runs: design (c) without flexibility and without a
    network charge, from ``first_slot`` of the year with the batteries at ``soc_wh``."""
    run = DesignRun(Design.P2P_THEN_CURTAILMENT, first_slot, slots, len(study.grid.participants), len(study.bats))
    run.flexibility = False
    run.soc_wh[0] = soc_wh
    k = 0
    while k < slots:  # day by day: relieve() stays within one day
        end = min(slots, k + SLOTS_PER_DAY - (first_slot + k) % SLOTS_PER_DAY)
        study.relieve(run, k, end)
        k = end
    return run


def compare(study: MarketStudy, reference: DesignRun, on_chain: LedgerSlots) -> list[int]:
    """The slots (of the year) whose ledger record differs from the fast path's."""
    return [r.slot for k, r in enumerate(on_chain.records) if r != reference.record(k, [int(i) for i in study.bats])]


def market_money(record: SlotRecord) -> dict[int, int]:
    """What the settlement rule pays (+) and charges (−) each participant for a slot's fills."""
    money: dict[int, int] = {}
    for i, wh in record.fills_wh.items():
        if wh > 0:
            money[i] = -cost(wh, record.price_per_kwh + record.network_charge_per_kwh)
        else:
            money[i] = revenue(-wh, record.price_per_kwh)
    return money


def _onboard(ledger: Ledger, study: MarketStudy, first_slot: int, slots: int) -> list[LocalAccount]:
    """A key per participant (from the development mnemonic, after the role accounts), registered
    at its bus with the capacity its largest order needs, gas money and a deposit."""
    seed = Settings().mnemonic
    span = slice(first_slot, first_slot + slots)
    largest = np.zeros(len(study.grid.participants))
    largest[study.loads] = study.load_wh[span].max(axis=0)
    largest[study.pvs] = study.pv_wh[span].max(axis=0)
    largest[study.bats] = Batteries(study.grid.batteries).power_wh
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

"""The audit re-runs clearing and network validation from public records and names differences."""

from __future__ import annotations

import json

import pytest

from gridledger.audit import audit_slot
from gridledger.facilitation import BaselineRef
from gridledger.market.orders import Side
from gridledger.network.model import UK_LIMITS, NetworkModel
from gridledger.network.validation import BatchEngine
from gridledger.sim.market_day import DayConfig, run_market_day
from gridledger.store.reports import ReportStore


@pytest.fixture
def day(ledger, tmp_path):
    """Two sunny slots of the market day, with their reports in a real SQLite file."""
    database = tmp_path / "facilitator.sqlite"
    result = run_market_day(ledger, DayConfig(prosumers=6, slots=2, first_slot=48, database=str(database)))
    model = NetworkModel.load(result.config.grid)
    return ledger, result, model, BatchEngine(model), ReportStore(database)


def test_the_audit_confirms_every_slot_of_an_honest_day(day) -> None:
    ledger, result, model, engine, store = day
    for slot in result.slots:
        audit = audit_slot(ledger, model, engine, store, slot.delivery_start)
        assert audit.confirmed, audit.differences
        assert ledger.slot_state(slot.delivery_start).network_report_hash == slot.report.hash
        row = store.get(ledger.market.address, slot.delivery_start)
        assert row is not None and row["report_hash"] == "0x" + slot.report.hash.hex()


def test_an_altered_report_is_named(day) -> None:
    ledger, result, model, engine, store = day
    slot = result.slots[0].delivery_start
    row = store.get(ledger.market.address, slot)
    row["report"]["check"]["max_line_loading_percent"] = 12.5
    store.table.update(
        (ledger.market.address, slot), {"report": json.dumps(row["report"], sort_keys=True, separators=(",", ":"))}
    )
    audit = audit_slot(ledger, model, engine, store, slot)
    assert not audit.confirmed
    assert any(d.startswith("stored report hashes to") for d in audit.differences)
    assert any("check.max_line_loading_percent (12.5 →" in d for d in audit.differences)


def test_another_network_model_is_named(day) -> None:
    ledger, result, _, _, store = day
    uk = NetworkModel.load(result.config.grid, UK_LIMITS)
    audit = audit_slot(ledger, uk, BatchEngine(uk), store, result.slots[1].delivery_start)
    assert any(d.startswith("network model version: the commit names") for d in audit.differences)


def test_a_committed_result_that_differs_from_the_rerun_is_named(ledger, tmp_path) -> None:
    """The facilitator checks a slot honestly but commits other fills: the audit names them."""
    from gridledger.facilitation import SlotInputs, facilitate
    from gridledger.market.orders import Order, Side
    from gridledger.network.profiles import day_profiles
    from gridledger.sim.participants import make_prosumers

    profiles = day_profiles(count=3, day=173)
    alice, bob, carol = make_prosumers(ledger, count=3, deposit=100_000_000, buses=[p.bus for p in profiles])
    slot = (ledger.chain.now() // 900 + 4) * 900
    orders = [
        Order(alice.address, Side.SELL, slot, 1_000, 100_000, 0, slot),
        Order(bob.address, Side.BUY, slot, 600, 300_000, 0, slot),
        Order(carol.address, Side.BUY, slot, 600, 250_000, 0, slot),
    ]
    ledger.relay_orders([ledger.sign(a, o) for a, o in zip((alice, bob, carol), orders, strict=True)])
    recorded = ledger.recorded_orders(slot)
    model = NetworkModel.load("1-LV-semiurb5--0-sw")
    engine = BatchEngine(model)
    bus_of = {a.address: p.bus for a, p in zip((alice, bob, carol), profiles, strict=True)}
    ref = BaselineRef.for_delivery(model, "1-LV-semiurb5--0-sw", slot, bus_of.values())
    honest_slot = facilitate(model, engine, SlotInputs(slot, ref, recorded, bus_of))
    clearing, network, report = honest_slot.clearing, honest_slot.network, honest_slot.report
    store = ReportStore(tmp_path / "facilitator.sqlite")
    store.save(ledger.market.address, report)
    honest = [network.fills[r.order_hash] for r in recorded]
    assert honest == [1_000, 600, 400]  # Bob bids higher and is served first
    # The facilitator favours Carol: 400 Wh to Bob, 600 Wh to Carol. Every order-level check
    # on-chain passes (limits, quantities, bought = sold); only the re-run shows the difference.
    ledger.chain.move_time_to(slot - 300)
    ledger.commit_clearing(
        slot,
        clearing.ledger_price,
        [(recorded[0].order, 1_000), (recorded[1].order, 400), (recorded[2].order, 600)],
        network_report_hash=report.hash,
        network_model_version=model.version,
    )
    audit = audit_slot(ledger, model, engine, store, slot)
    assert not audit.confirmed
    [fills] = [d for d in audit.differences if d.startswith("fills differ")]
    assert f"0x{recorded[1].order_hash.hex()[:12]}… chain 400 Wh, re-run 600 Wh" in fills
    assert f"0x{recorded[2].order_hash.hex()[:12]}… chain 600 Wh, re-run 400 Wh" in fills


def test_a_consistent_report_for_another_time_is_refuted(ledger, tmp_path) -> None:
    """A report computed honestly but on the grid state of another time of day (twelve hours off)
    hashes, re-runs and commits consistently; only the binding of its baseline to the slot's
    delivery time refutes it."""
    from dataclasses import replace

    from gridledger.facilitation import SlotInputs, commit, facilitate
    from gridledger.market.orders import Order, Side
    from gridledger.network.profiles import day_profiles
    from gridledger.sim.participants import make_prosumers

    profiles = day_profiles(count=2, day=173)
    alice, bob = make_prosumers(ledger, count=2, deposit=100_000_000, buses=[p.bus for p in profiles])
    slot = (ledger.chain.now() // 900 + 4) * 900
    orders = [
        Order(alice.address, Side.SELL, slot, 800, 100_000, 0, slot),
        Order(bob.address, Side.BUY, slot, 800, 300_000, 0, slot),
    ]
    ledger.relay_orders([ledger.sign(a, o) for a, o in zip((alice, bob), orders, strict=True)])
    model = NetworkModel.load("1-LV-semiurb5--0-sw")
    engine = BatchEngine(model)
    bus_of = {a.address: p.bus for a, p in zip((alice, bob), profiles, strict=True)}
    implied = BaselineRef.for_delivery(model, model.source, slot, bus_of.values())
    other_time = replace(implied, slot=(implied.slot + 48) % 96)
    forged = facilitate(model, engine, SlotInputs(slot, other_time, ledger.recorded_orders(slot), bus_of))
    store = ReportStore(tmp_path / "facilitator.sqlite")
    ledger.chain.move_time_to(slot - 300)
    commit(ledger, store, model, forged)
    audit = audit_slot(ledger, model, engine, store, slot)
    assert not audit.confirmed
    [baseline] = [d for d in audit.differences if d.startswith("baseline:")]
    assert f"'slot': {other_time.slot}" in baseline and f"imply {implied.as_dict()}" in baseline


def test_a_day_with_a_network_tariff_clears_net_of_it_pays_the_dso_and_is_confirmed(ledger, tmp_path) -> None:
    """The DSO's tariff on-chain reaches the clearing (buyers' limits are all-in), settlement pays
    each buy fill's charge into the DSO's account, and the audit re-runs the slot with it."""
    database = tmp_path / "facilitator.sqlite"
    tariff = 30_000  # 0.03 per kWh traded
    dso = ledger.market.functions.DSO_ACCOUNT().call()
    before = ledger.account_of(dso)[0]
    result = run_market_day(
        ledger,
        DayConfig(prosumers=6, slots=2, first_slot=48, database=str(database), network_tariff_per_kwh=tariff),
    )
    model = NetworkModel.load(result.config.grid)
    engine, store = BatchEngine(model), ReportStore(database)
    charged = 0
    for slot in result.slots:
        assert ledger.network_tariff(slot.delivery_start) == tariff
        assert slot.clearing.fills, "the sunny slot trades"
        for order, filled in slot.fills:
            if filled and order.side is Side.BUY:
                assert slot.clearing.ledger_price + tariff <= order.price_per_kwh
        charged += slot.settlement.to_dso
        audit = audit_slot(ledger, model, engine, store, slot.delivery_start)
        assert audit.confirmed, audit.differences
    assert charged > 0
    assert ledger.account_of(dso)[0] - before == charged

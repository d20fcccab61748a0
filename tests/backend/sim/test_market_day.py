"""The market-day simulation on SimBench profiles, shortened to a few midday slots."""

from __future__ import annotations

from gridledger.network.profiles import day_profiles
from gridledger.reports.day_summary import summarise
from gridledger.sim.market_day import DayConfig, run_market_day


def test_profiles_come_from_the_simbench_grid() -> None:
    profiles = day_profiles(count=20, day=173)
    assert len(profiles) == 20
    assert len({p.bus for p in profiles}) == 20
    with_pv = [p for p in profiles if p.pv_kwp > 0]
    assert len(with_pv) == 10
    midday = 48  # 12:00
    assert all(p.pv_w[midday] > 0 for p in with_pv)
    assert all(p.pv_w[8] == 0 for p in profiles)  # 02:00, no sun
    assert all(p.load_w.min() >= 0 for p in profiles)


def test_a_short_market_day_clears_settles_and_conserves_tokens(ledger) -> None:
    config = DayConfig(prosumers=8, day=173, slots=4, first_slot=48)  # 12:00 to 13:00, sunny
    result = run_market_day(ledger, config)
    summary = summarise(result)
    assert summary.slots == 4
    assert summary.trades > 0 and summary.traded_wh > 0
    assert summary.average_price_per_kwh is not None
    assert config.feed_in_per_kwh <= summary.average_price_per_kwh <= config.retail_per_kwh
    assert summary.orders == sum(s.orders for s in result.slots)
    for slot in result.slots:
        state = ledger.slot_state(slot.delivery_start)
        assert state.status == "settled"
        assert state.clearing_price_per_kwh == slot.clearing.ledger_price
    # Every token is accounted for: the market holds exactly what its accounts own.
    parties = [p.address for p in result.participants] + [ledger.roles.balancing.address]
    held = sum(sum(ledger.account_of(a)) for a in parties)
    assert ledger.token_balance(ledger.market.address) == held
    assert held == sum(p.deposit for p in result.participants) + config.balancing_float
    assert all(p.deposit >= config.deposit for p in result.participants)


def test_slots_outside_the_day_are_refused(ledger) -> None:
    import pytest

    from gridledger.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="outside the day's 0 to 95"):
        run_market_day(ledger, DayConfig(prosumers=2, slots=10, first_slot=90))


def test_the_evening_flexibility_request_runs_from_escrow_to_settlement(ledger) -> None:
    # 16:30 to 19:30: the two baseline slots, the 18:00–19:00 window, and the slots around it.
    config = DayConfig(prosumers=12, day=20, slots=12, first_slot=66)
    result = run_market_day(ledger, config)
    flex = result.flex
    assert flex is not None and flex.request_id == 1
    assert ledger.flex_request_status(flex.request_id) == "settled"
    assert flex.offers == 4 and flex.awarded >= 1 and flex.awarded_power_w >= 2_000
    assert flex.ordered_wh == flex.awarded_power_w // 4 * 4  # every awarded offer, every window slot
    assert 0 < flex.delivered_wh <= flex.ordered_wh
    paid = flex.availability_paid + flex.utilisation_paid
    assert paid > 0 and paid + flex.refunded == flex.escrow
    assert ledger.token_balance(ledger.flex.address) == 0
    assert ledger.token_balance(ledger.roles.dso.address) == 100_000_000 - paid
    summary = summarise(result)
    assert summary.flex is flex


def test_a_run_without_the_window_has_no_flexibility_request(ledger) -> None:
    result = run_market_day(ledger, DayConfig(prosumers=4, slots=2, first_slot=48))
    assert result.flex is None

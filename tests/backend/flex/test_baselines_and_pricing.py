"""Baselines and availability pricing schedules, each with a worked example."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gridledger.flex import baselines, pricing
from gridledger.flex.products import Direction

DAY = 86_400


def ts(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def test_historical_x_of_y_averages_the_most_event_like_comparable_days() -> None:
    # Event: Thursday 2026-11-26 18:00. Weekday readings at 18:00 on the ten weekdays before it
    # (weekends are skipped even though they have readings).
    slot = ts("2026-11-26T18:00:00")
    weekday_wh = [900, 1_100, 1_000, 1_400, 800, 1_200, 950, 1_300, 1_050, 700]
    readings: dict[int, int] = {}
    day, k = slot - DAY, 0
    while k < len(weekday_wh):
        if datetime.fromtimestamp(day, tz=UTC).weekday() < 5:
            readings[day] = weekday_wh[k]
            k += 1
        else:
            readings[day] = 5_000  # a weekend reading: not comparable
        day -= DAY
    # High 4 of 10 for Up: 1,400, 1,300, 1,200, 1,100 → 1,250 Wh.
    assert baselines.historical(readings, slot, x=4, y=10, direction=Direction.UP) == 1_250
    # Low 4 of 10 for Down: 700, 800, 900, 950 → 837.5 → 838 Wh.
    assert baselines.historical(readings, slot, x=4, y=10, direction=Direction.DOWN) == 838
    # Y limits the look-back to the 3 most recent weekdays (900, 1,100, 1,000): high 2 → 1,050.
    assert baselines.historical(readings, slot, x=2, y=3) == 1_050
    with pytest.raises(baselines.BaselineError, match="needs at least X=4"):
        baselines.historical({slot - DAY: 1}, slot, x=4, y=10)
    with pytest.raises(baselines.BaselineError, match="1 ≤ X ≤ Y"):
        baselines.historical(readings, slot, x=5, y=4)


def test_nominated_baseline_counts_only_if_declared_before_the_window() -> None:
    window = ts("2026-11-26T17:00:00")
    nominations = {window: 2_000, window + 900: 1_800}
    assert baselines.nominated(nominations, window + 900, nominated_at=window - 60, window_start=window) == 1_800
    with pytest.raises(baselines.BaselineError, match="not before the window"):
        baselines.nominated(nominations, window, nominated_at=window, window_start=window)
    with pytest.raises(baselines.BaselineError, match="no baseline was nominated"):
        baselines.nominated(nominations, window + 1_800, nominated_at=0, window_start=window)


def test_meter_before_after_averages_the_neighbouring_slots() -> None:
    window = ts("2026-11-26T17:00:00")
    readings = {window - 1_800: 1_000, window - 900: 1_300, window + 3_600: 900}
    # Two slots before: (1,000 + 1,300) / 2 = 1,150.
    assert baselines.meter_before_after(readings, window, 4, before=2) == 1_150
    # Plus one slot after the 4-slot window (17:00–18:00): (1,000 + 1,300 + 900) / 3 = 1,066.7 → 1,067.
    assert baselines.meter_before_after(readings, window, 4, before=2, after=1) == 1_067
    with pytest.raises(baselines.BaselineError, match="missing"):
        baselines.meter_before_after(readings, window, 4, before=3)


def test_metered_history_comes_from_the_index(tmp_path) -> None:
    from gridledger.store.database import open_database

    db = open_database(tmp_path / "f.sqlite")
    db.execute("insert into meter_readings values (900, '0xA', 120, 1), (1800, '0xA', -40, 2), (900, '0xB', 7, 1)")
    db.conn.commit()
    assert baselines.metered_history(db, "0xA") == {900: 120, 1800: -40}


def test_time_of_use_and_critical_peak_set_the_windows_availability_price() -> None:
    tou = pricing.TimeOfUse()
    # 15:00–17:00 (8 slots): four at the day rate (100 %) and four in the evening peak (150 %).
    start = ts("2026-11-26T15:00:00")
    assert [pricing.slot_price(tou, 100_000, start + k * 900) for k in (0, 4)] == [100_000, 150_000]
    assert pricing.window_price(tou, 100_000, start, 8) == 125_000
    assert pricing.slot_price(tou, 100_000, ts("2026-11-26T03:00:00")) == 50_000
    # Critical peak on two of four slots at 300 %: (3 + 3 + 1 + 1) / 4 = 200 %.
    cpp = pricing.CriticalPeak(peak_slots=frozenset({start, start + 900}))
    assert pricing.window_price(cpp, 80_000, start, 4) == 160_000

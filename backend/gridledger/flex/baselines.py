"""Baselines: what a provider's meter would have read in a slot had it not been activated.

Delivered flexibility is measured against the baseline (``delivered = baseline − actual`` for
Up, ``actual − baseline`` for Down; readings are net Wh taken from the grid). Three methods,
as the request names:

- **historical** ("X of Y"): of the last Y comparable days before the slot's day (same kind of
  day: weekday or weekend) that have a reading at the same time of day, take the X that look
  most like an event day (the highest net load for Up, the lowest for Down) and average their
  readings of that time of day. Readings come from the metered history (the index's
  ``meter_readings``).
- **nominated**: the provider declares its baseline per slot before the window starts.
- **meter before / meter after**: the mean of the provider's readings in the slots just before
  the window (and, if asked, just after it).

All results are whole Wh, rounded half away from zero.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

import sqlite_utils

from gridledger.errors import NetworkError
from gridledger.flex.products import Direction
from gridledger.units import DAY_SECONDS, SLOT_SECONDS


class BaselineError(NetworkError):
    """Raised when a baseline cannot be computed from what was metered or nominated."""


def _round(value: float) -> int:
    return int(value + 0.5) if value >= 0 else -int(-value + 0.5)


def _is_weekend(ts: int) -> bool:
    return datetime.fromtimestamp(ts, tz=UTC).weekday() >= 5


def historical(
    readings: Mapping[int, int], slot: int, *, x: int = 4, y: int = 10, direction: Direction = Direction.UP
) -> int:
    """The X-of-Y baseline of ``slot`` from ``readings`` (slot start → net Wh)."""
    if not 1 <= x <= y:
        raise BaselineError(f"an X-of-Y baseline needs 1 ≤ X ≤ Y, got X={x}, Y={y}")
    weekend = _is_weekend(slot)
    candidates: list[int] = []
    day = slot - DAY_SECONDS
    # Look back up to four weeks for Y comparable days.
    while len(candidates) < y and day >= slot - 28 * DAY_SECONDS:
        if _is_weekend(day) == weekend and day in readings:
            candidates.append(readings[day])
        day -= DAY_SECONDS
    if len(candidates) < x:
        raise BaselineError(
            f"slot {slot}: only {len(candidates)} comparable days with a reading at that time in the last four "
            f"weeks; the X-of-Y baseline needs at least X={x}"
        )
    chosen = sorted(candidates, reverse=direction is Direction.UP)[:x]
    return _round(sum(chosen) / x)


def nominated(nominations: Mapping[int, int], slot: int, *, nominated_at: int, window_start: int) -> int:
    """The provider's own baseline for ``slot``, valid only if declared before the window."""
    if nominated_at >= window_start:
        raise BaselineError(
            f"the baseline was nominated at {nominated_at}, not before the window started at {window_start}"
        )
    if slot not in nominations:
        raise BaselineError(f"no baseline was nominated for slot {slot}")
    return int(nominations[slot])


def meter_before_after(
    readings: Mapping[int, int], window_start: int, window_slots: int, *, before: int = 2, after: int = 0
) -> int:
    """Mean of the readings of the ``before`` slots before the window and the ``after`` slots after it."""
    wanted = [window_start - k * SLOT_SECONDS for k in range(1, before + 1)]
    end = window_start + window_slots * SLOT_SECONDS
    wanted += [end + k * SLOT_SECONDS for k in range(after)]
    if not wanted:
        raise BaselineError("meter before/after needs at least one slot before or after the window")
    missing = [s for s in wanted if s not in readings]
    if missing:
        raise BaselineError(f"meter before/after needs readings of slots {missing}, which are missing")
    return _round(sum(readings[s] for s in wanted) / len(wanted))


def metered_history(db: sqlite_utils.Database, account: str) -> dict[int, int]:
    """An account's metered history from the facilitator's index (slot start → net Wh)."""
    rows: Iterable[tuple[int, int]] = db.execute(
        "select delivery_start, net_wh from meter_readings where account = ?", [account]
    ).fetchall()
    return {int(ds): int(wh) for ds, wh in rows}

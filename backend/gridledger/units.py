"""Units and calendar constants, defined once.

On-chain quantities are integers end to end: energy in Wh, power in W, prices in token base
units per kWh, times in unix seconds. Floats appear only inside the network model (W, pu, %),
converted from Wh at one place (``wh_to_w``).
"""

from __future__ import annotations

SLOT_SECONDS = 900  # one market slot: 15 minutes
SLOTS_PER_HOUR = 4
SLOT_HOURS = 1 / SLOTS_PER_HOUR
SLOTS_PER_DAY = 96
DAY_SECONDS = 86_400
DAYS_IN_PROFILE_YEAR = 366  # SimBench's profile year is 2016, a leap year

WH_PER_KWH = 1_000
W_PER_MW = 1e6

TOKEN_DECIMALS = 6  # SettlementToken (GLEUR)
TOKEN_UNIT: int = 10**TOKEN_DECIMALS  # base units per token

UINT32_MAX = 2**32 - 1
UINT40_MAX = 2**40 - 1
UINT64_MAX = 2**64 - 1

DEFAULT_GRID = "1-LV-semiurb5--0-sw"  # SimBench's semi-urban LV grid, today's scenario


def wh_to_w(energy_wh: float) -> float:
    """Average power over one slot of ``energy_wh``."""
    return energy_wh * SLOTS_PER_HOUR


def slot_energy_wh(power_w: int) -> int:
    """Energy of ``power_w`` held for one slot, in whole Wh (rounded down, as the contracts do)."""
    return power_w // SLOTS_PER_HOUR


def tokens(base_units: float) -> float:
    """Token base units as tokens (for reports only; ledgers keep base units)."""
    return base_units / TOKEN_UNIT

"""The study's assumptions, stated once: tariffs, bidding rules' prices, flexibility and
curtailment rates, the reinforcement it is compared with, and the facilitator's gas.

Money is in token base units (six decimals: 300_000 = 0.30 per kWh), energy in Wh.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gridledger.errors import ConfigurationError
from gridledger.study.tariffs import Tariff
from gridledger.units import DAYS_IN_PROFILE_YEAR


@dataclass(frozen=True)
class Reinforcement:
    """Replacing the transformer (160 → 250 kVA): an assumed installed cost, annuitised."""

    from_kva: int = 160
    to_kva: int = 250
    capital_cost: int = 30_000_000_000  # 30,000 tokens (≈ EUR): transformer, installation, civil works
    lifetime_years: int = 40
    interest: float = 0.05

    @property
    def annuity(self) -> int:
        """The yearly cost of the capital: cost · r / (1 − (1 + r)^−n)."""
        r, n = self.interest, self.lifetime_years
        return round(self.capital_cost * r / (1 - (1 + r) ** -n))


@dataclass(frozen=True)
class StudyConfig:
    first_day: int = 1
    days: int = DAYS_IN_PROFILE_YEAR
    seed: int = 12
    # The no-market tariffs: every participant's outside option.
    retail_per_kwh: int = 300_000
    feed_in_per_kwh: int = 80_000
    # Loads bid between the retail tariff and the tariffs' midpoint, PV asks between the feed-in
    # tariff and the midpoint; each participant keeps one eagerness, drawn once from ``seed``.
    # Batteries take the local price within the tariffs: they buy at up to the retail tariff and
    # sell at no less than the feed-in tariff (never worse than their supplier), which puts their
    # bids above every PV ask and their asks below every load's bid, network charge included, so
    # that their orders (capped by the community's forecast surplus or shortage) fill.
    battery_buy_per_kwh: int = 300_000
    battery_sell_per_kwh: int = 80_000
    # Flexibility the DSO buys: batteries' availability (per kWh of room reserved for a day's
    # congested slots) and utilisation (per kWh activated); PV curtailment, the last resort, is
    # paid at this rate per kWh curtailed.
    battery_availability_per_kwh: int = 10_000
    battery_utilisation_per_kwh: int = 10_000
    pv_curtailment_per_kwh: int = 120_000
    reservation_margin: float = 1.2  # the DSO reserves this much more than the forecast excess
    tariff: Tariff = field(default_factory=Tariff)
    reinforcement: Reinforcement = field(default_factory=Reinforcement)
    # The facilitator's gas: per item, as benchmarks/gas.py measured on the contracts (batches of
    # 100), priced at an assumed 0.02 tokens per million gas (a permissioned or layer-2 chain).
    gas_per_order: int = 23_935
    gas_per_fill: int = 15_825 + 14_415  # committed and settled
    gas_per_meter_reading: int = 28_491
    gas_price_per_million: int = 20_000

    def __post_init__(self) -> None:
        if not 1 <= self.first_day <= DAYS_IN_PROFILE_YEAR:
            raise ConfigurationError(f"first day must be 1 to {DAYS_IN_PROFILE_YEAR}, got {self.first_day}")
        if not 1 <= self.days <= DAYS_IN_PROFILE_YEAR - self.first_day + 1:
            raise ConfigurationError(
                f"days must be 1 to {DAYS_IN_PROFILE_YEAR - self.first_day + 1} from day {self.first_day} "
                f"(SimBench's profile year has {DAYS_IN_PROFILE_YEAR} days), got {self.days}"
            )
        if not 0 <= self.feed_in_per_kwh < self.retail_per_kwh:
            raise ConfigurationError(
                f"the feed-in tariff ({self.feed_in_per_kwh}) must be 0 or more and below the retail tariff "
                f"({self.retail_per_kwh})"
            )

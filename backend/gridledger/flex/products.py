"""Flexibility products as the ledger records them (after USEF/Shapeshifter UFTP and UK Open
Networks): the DSO's request and a provider's signed offer.

Units as on-chain: power in W, energy in Wh, money in token base units; an availability price is
per kW of contracted power per hour of the window, a utilisation price per kWh delivered.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from eth_utils.address import to_checksum_address

from gridledger.errors import OrderError
from gridledger.units import SLOT_SECONDS, SLOTS_PER_DAY

DOMAIN_NAME = "GridLedger FlexibilityMarket"
DOMAIN_VERSION = "1"
W_SLOTS_PER_KWH = 4_000  # W × slots × price / 4000 = kW × h × price
ZERO_ADDRESS = "0x" + "00" * 20

OFFER_TYPES: dict[str, list[dict[str, str]]] = {
    "Offer": [
        {"name": "provider", "type": "address"},
        {"name": "requestId", "type": "uint64"},
        {"name": "windowStart", "type": "uint40"},
        {"name": "powerW", "type": "uint32"},
        {"name": "availabilityPricePerKWh", "type": "uint64"},
        {"name": "utilisationPricePerKWh", "type": "uint64"},
        {"name": "bus", "type": "uint32"},
        {"name": "nonce", "type": "uint64"},
    ]
}


class ServiceType(IntEnum):
    SUSTAIN = 0
    SECURE = 1
    DYNAMIC = 2
    RESTORE = 3


class Direction(IntEnum):
    UP = 0  # relieve demand-driven congestion: consume less (or generate more)
    DOWN = 1  # relieve generation-driven congestion: consume more (or generate less)


class BaselineMethod(IntEnum):
    HISTORICAL = 0
    NOMINATED = 1
    METER_BEFORE_AFTER = 2


@dataclass(frozen=True)
class FlexRequest:
    """What the DSO asks for at a congestion point (a bus of the published model)."""

    service: ServiceType
    direction: Direction
    baseline: BaselineMethod
    congestion_bus: int
    power_w: int
    window_start: int
    window_slots: int
    bid_deadline: int
    max_availability_price_per_kwh: int
    max_utilisation_price_per_kwh: int
    min_performance_bps: int = 5_000

    def __post_init__(self) -> None:
        if self.window_start % SLOT_SECONDS:
            raise OrderError(
                f"window_start {self.window_start} is not a slot boundary (a multiple of {SLOT_SECONDS} s)"
            )
        if not 1 <= self.window_slots <= SLOTS_PER_DAY:
            raise OrderError(f"window_slots must be 1 to {SLOTS_PER_DAY}, got {self.window_slots}")
        if self.power_w <= 0:
            raise OrderError(f"power_w must be above 0 W, got {self.power_w}")
        if self.bid_deadline >= self.window_start:
            raise OrderError(f"bid_deadline {self.bid_deadline} must be before the window starts ({self.window_start})")
        if not 1 <= self.min_performance_bps <= 10_000:
            raise OrderError(f"min_performance_bps must be 1 to 10000, got {self.min_performance_bps}")

    @property
    def window_end(self) -> int:
        return self.window_start + self.window_slots * SLOT_SECONDS

    @property
    def slots(self) -> list[int]:
        return [self.window_start + k * SLOT_SECONDS for k in range(self.window_slots)]

    @property
    def max_spend(self) -> int:
        """The escrow: full availability and full utilisation at the caps, rounded up."""
        prices = self.max_availability_price_per_kwh + self.max_utilisation_price_per_kwh
        return -(-self.power_w * self.window_slots * prices // W_SLOTS_PER_KWH)

    def as_abi(self) -> tuple[Any, ...]:
        return (
            ZERO_ADDRESS,
            int(self.service),
            int(self.direction),
            int(self.baseline),
            0,
            self.congestion_bus,
            self.power_w,
            self.window_start,
            self.window_slots,
            self.bid_deadline,
            self.min_performance_bps,
            self.max_availability_price_per_kwh,
            self.max_utilisation_price_per_kwh,
            0,
        )


@dataclass(frozen=True)
class FlexOffer:
    """A provider's offer for a request's whole window, at its own connection point."""

    provider: str
    request_id: int
    window_start: int
    power_w: int
    availability_price_per_kwh: int
    utilisation_price_per_kwh: int
    bus: int
    nonce: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "provider", to_checksum_address(self.provider))

    def availability_payment(self, window_slots: int) -> int:
        return self.power_w * window_slots * self.availability_price_per_kwh // W_SLOTS_PER_KWH

    def as_abi(self) -> tuple[Any, ...]:
        return (
            self.provider,
            self.request_id,
            self.window_start,
            self.power_w,
            self.availability_price_per_kwh,
            self.utilisation_price_per_kwh,
            self.bus,
            self.nonce,
        )

    def as_message(self) -> dict[str, Any]:
        return dict(zip([f["name"] for f in OFFER_TYPES["Offer"]], self.as_abi(), strict=True))


@dataclass(frozen=True)
class SignedOffer:
    offer: FlexOffer
    offer_id: bytes
    r: bytes
    vs: bytes

    def as_abi(self) -> tuple[Any, ...]:
        return (self.offer.as_abi(), self.r, self.vs)


def flex_domain(chain_id: int, address: str) -> dict[str, Any]:
    return {
        "name": DOMAIN_NAME,
        "version": DOMAIN_VERSION,
        "chainId": chain_id,
        "verifyingContract": to_checksum_address(address),
    }

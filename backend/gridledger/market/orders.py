"""Energy orders as the prosumer signs them, and their EIP-712 typed data.

Quantities are integers end to end: energy in Wh, prices in token base units per kWh (the
token has six decimals, so 250_000 is 0.25 per kWh), times in unix seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache
from typing import Any

from eth_utils.address import is_checksum_address, to_checksum_address

from gridledger.encoding import from_hex
from gridledger.errors import OrderError
from gridledger.units import SLOT_SECONDS, UINT32_MAX, UINT40_MAX, UINT64_MAX, WH_PER_KWH

DOMAIN_NAME = "GridLedger EnergyMarket"
DOMAIN_VERSION = "1"

ORDER_TYPES: dict[str, list[dict[str, str]]] = {
    "Order": [
        {"name": "prosumer", "type": "address"},
        {"name": "side", "type": "uint8"},
        {"name": "deliveryStart", "type": "uint40"},
        {"name": "energyWh", "type": "uint32"},
        {"name": "pricePerKWh", "type": "uint64"},
        {"name": "nonce", "type": "uint64"},
        {"name": "expiry", "type": "uint40"},
    ]
}


# A prosumer's cancellation names its order by the order's EIP-712 hash (prosumer and nonce included).
CANCELLATION_TYPES: dict[str, list[dict[str, str]]] = {"Cancellation": [{"name": "orderHash", "type": "bytes32"}]}


class Side(IntEnum):
    BUY = 0
    SELL = 1


@dataclass(frozen=True, slots=True)
class Order:
    """An order to buy or sell ``energy_wh`` in the slot starting at ``delivery_start``."""

    prosumer: str
    side: Side
    delivery_start: int
    energy_wh: int
    price_per_kwh: int
    nonce: int
    expiry: int

    def __post_init__(self) -> None:
        if not _is_checksum_address(self.prosumer):
            try:
                object.__setattr__(self, "prosumer", to_checksum_address(self.prosumer))
            except ValueError:
                raise OrderError(f"prosumer {self.prosumer!r} is not an Ethereum address") from None
        object.__setattr__(self, "side", Side(self.side))
        _check_range("delivery_start", self.delivery_start, 1, UINT40_MAX)
        if self.delivery_start % SLOT_SECONDS:
            raise OrderError(
                f"delivery_start {self.delivery_start} is not a slot boundary: it must be a multiple of "
                f"{SLOT_SECONDS} s"
            )
        _check_range("energy_wh", self.energy_wh, 1, UINT32_MAX)
        _check_range("price_per_kwh", self.price_per_kwh, 0, UINT64_MAX)
        _check_range("nonce", self.nonce, 0, UINT64_MAX)
        _check_range("expiry", self.expiry, 0, UINT40_MAX)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Order:
        """The order from a row of the facilitator's SQLite file (snake_case columns)."""
        return cls(
            prosumer=row["prosumer"],
            side=Side(row["side"]),
            delivery_start=row["delivery_start"],
            energy_wh=row["energy_wh"],
            price_per_kwh=row["price_per_kwh"],
            nonce=row["nonce"],
            expiry=row["expiry"],
        )

    @classmethod
    def from_event(cls, args: Mapping[str, Any]) -> Order:
        """The order from the arguments of an ``OrderRecorded`` event (the contract's names)."""
        return cls(
            prosumer=args["prosumer"],
            side=Side(args["side"]),
            delivery_start=args["deliveryStart"],
            energy_wh=args["energyWh"],
            price_per_kwh=args["pricePerKWh"],
            nonce=args["nonce"],
            expiry=args["expiry"],
        )

    @property
    def max_cost(self) -> int:
        """The escrow a buy order locks: energy at its limit price, rounded up."""
        return -(-self.energy_wh * self.price_per_kwh // WH_PER_KWH)

    def as_row(self) -> dict[str, Any]:
        """The order's columns in the facilitator's SQLite file (``from_row`` reads them back)."""
        return {
            "prosumer": self.prosumer,
            "side": int(self.side),
            "delivery_start": self.delivery_start,
            "energy_wh": self.energy_wh,
            "price_per_kwh": self.price_per_kwh,
            "nonce": self.nonce,
            "expiry": self.expiry,
        }

    def as_abi(self) -> tuple[Any, ...]:
        """The order as the contract's ``Order`` tuple."""
        return (
            self.prosumer,
            int(self.side),
            self.delivery_start,
            self.energy_wh,
            self.price_per_kwh,
            self.nonce,
            self.expiry,
        )

    def as_message(self) -> dict[str, Any]:
        """The order as EIP-712 message data."""
        return {
            "prosumer": self.prosumer,
            "side": int(self.side),
            "deliveryStart": self.delivery_start,
            "energyWh": self.energy_wh,
            "pricePerKWh": self.price_per_kwh,
            "nonce": self.nonce,
            "expiry": self.expiry,
        }


@dataclass(frozen=True, slots=True)
class SignedOrder:
    """An order, its EIP-712 digest (the order hash) and its compact EIP-2098 signature."""

    order: Order
    order_hash: bytes
    r: bytes
    vs: bytes

    def as_abi(self) -> tuple[Any, ...]:
        return (self.order.as_abi(), self.r, self.vs)


@dataclass(frozen=True, slots=True)
class RecordedOrder:
    """An order as the ledger recorded it; ``arrival`` orders orders by (block, log index)."""

    order: Order
    order_hash: bytes
    arrival: tuple[int, int]

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> RecordedOrder:
        """From the index's ``orders`` table (``order_hash`` as hex, ``block``, ``log_index``)."""
        return cls(Order.from_row(row), from_hex(row["order_hash"]), (row["block"], row["log_index"]))

    @classmethod
    def from_log(cls, log: Mapping[str, Any]) -> RecordedOrder:
        """From a decoded ``OrderRecorded`` log."""
        args = log["args"]
        return cls(Order.from_event(args), bytes(args["orderHash"]), (log["blockNumber"], log["logIndex"]))


def market_domain(chain_id: int, market_address: str) -> dict[str, Any]:
    """The EIP-712 domain of an EnergyMarket deployment."""
    return {
        "name": DOMAIN_NAME,
        "version": DOMAIN_VERSION,
        "chainId": chain_id,
        "verifyingContract": to_checksum_address(market_address),
    }


@lru_cache(maxsize=1 << 16)
def _is_checksum_address(address: str) -> bool:
    # Checking a checksum hashes the address (~150 µs); a feeder's prosumers sign ~100k orders a day.
    return bool(is_checksum_address(address))


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise OrderError(f"{name} must be an integer from {low} to {high}, got {value!r}")

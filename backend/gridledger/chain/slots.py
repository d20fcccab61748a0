"""A slot's orders as the EnergyMarket keeps them: the order chain, clearing and settlement
chunks, and packed meter readings.

The contract keeps, per slot, a hash chain over its recorded orders in arrival order (cancelled
ones included) and a checkpoint of it every 256 orders. Clearing gives every recorded order its
fill, in that order, in chunks; settlement re-supplies the same chunks. This module builds those
sequences and the hashes the contract compares them with, so that the ledger can check a whole
clearing before it sends anything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from gridledger.errors import ClearingRejected, SettlementRejected
from gridledger.market.orders import Order, RecordedOrder, Side, SignedOrder

CHECKPOINT_ORDERS = 256  # the contract's CHECKPOINT_ORDERS
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
ZERO_HASH = b"\0" * 32


def pack_order(signed: SignedOrder) -> tuple[int, int, bytes, bytes]:
    """A signed order as ``relayOrders`` takes it (the contract's ``PackedOrder``)."""
    o = signed.order
    head = int(o.prosumer, 16) | int(o.side) << 160 | o.delivery_start << 168 | o.energy_wh << 208
    terms = o.expiry | o.nonce << 40 | o.price_per_kwh << 104
    return head, terms, signed.r, signed.vs


def order_args(args: Mapping[str, Any]) -> dict[str, Any]:
    """An ``OrderRecorded`` event's packed ``head`` and ``terms`` (the ``PackedOrder`` layout)
    unpacked into the order's fields, with the names ``Order.from_event`` reads."""
    head, terms = int(args["head"]), int(args["terms"])
    return {
        "prosumer": to_checksum_address(f"0x{head & (2**160 - 1):040x}"),
        "side": (head >> 160) & 0xFF,
        "deliveryStart": (head >> 168) & (2**40 - 1),
        "energyWh": (head >> 208) & (2**32 - 1),
        "expiry": terms & (2**40 - 1),
        "nonce": (terms >> 40) & (2**64 - 1),
        "pricePerKWh": (terms >> 104) & (2**64 - 1),
    }


_CHECKSUMS: dict[int, str] = {}  # prosumer address (as an integer) → its EIP-55 checksum form

# keccak256 of the events' signatures: the first topic of their logs.
ORDER_RECORDED_TOPIC = keccak(b"OrderRecorded(uint40,uint256,uint256)")
ORDER_CANCELLED_TOPIC = keccak(b"OrderCancelled(bytes32,address,uint64,uint256)")


def raw_recorded_orders(logs: Iterable[Mapping[str, Any]], hasher: Callable[[Order], bytes]) -> list[RecordedOrder]:
    """The orders of raw (undecoded) ``OrderRecorded`` logs, as ``recorded_order`` gives them:
    the data is two words (``head``, ``terms``), unpacked here without web3's per-event ABI
    machinery (about 1.4 ms a log on a devnet), and each prosumer's checksum computed once
    (eth-utils takes ~0.2–0.4 ms for one: a third of reading a slot)."""
    checksums = _CHECKSUMS
    if len(checksums) > 100_000:
        checksums.clear()
    found = []
    for log in logs:
        data = bytes(log["data"])
        head, terms = int.from_bytes(data[:32], "big"), int.from_bytes(data[32:64], "big")
        key = head & (2**160 - 1)
        prosumer = checksums.get(key)
        if prosumer is None:
            prosumer = checksums[key] = to_checksum_address(f"0x{key:040x}")
        order = Order(
            prosumer=prosumer,
            side=Side((head >> 160) & 0xFF),
            delivery_start=(head >> 168) & (2**40 - 1),
            energy_wh=(head >> 208) & (2**32 - 1),
            price_per_kwh=(terms >> 104) & (2**64 - 1),
            nonce=(terms >> 40) & (2**64 - 1),
            expiry=terms & (2**40 - 1),
        )
        found.append(RecordedOrder(order, hasher(order), (int(log["blockNumber"]), int(log["logIndex"]))))
    return found


def recorded_order(log: Mapping[str, Any], hasher: Callable[[Order], bytes]) -> RecordedOrder:
    """The order of a decoded ``OrderRecorded`` log, with its hash (``hasher``: the market's
    EIP-712 digest) and its arrival (block, log index)."""
    order = Order.from_event(order_args(log["args"]))
    return RecordedOrder(order, hasher(order), (log["blockNumber"], log["logIndex"]))


def order_link(order_hash: bytes, order: Order) -> bytes:
    """An order's link in its slot's order chain (the contract's ``orderLink``): keccak256 of
    the ABI encoding of (hash, prosumer, side, energyWh, pricePerKWh), five static words, packed
    here directly (eth-abi's encoder took most of a slot's chain check)."""
    words = (
        order_hash
        + int(order.prosumer, 16).to_bytes(32, "big")
        + int(order.side).to_bytes(32, "big")
        + order.energy_wh.to_bytes(32, "big")
        + order.price_per_kwh.to_bytes(32, "big")
    )
    return bytes(keccak(words))


def chain(links: Iterable[bytes], start: bytes = ZERO_HASH) -> bytes:
    """The order chain over ``links`` from ``start``: each value is the first 28 bytes of
    keccak256(previous ‖ link), padded with zeros (the contract keeps the chain and the slot's
    order count in one word)."""
    value = start
    for link in links:
        value = bytes(keccak(value + link))[:28] + b"\0" * 4
    return value


@dataclass(frozen=True, slots=True)
class SlotOrder:
    """A recorded order of a slot: its place in arrival order and whether it was cancelled."""

    recorded: RecordedOrder
    position: int
    cancelled: bool

    @property
    def link(self) -> bytes:
        return order_link(self.recorded.order_hash, self.recorded.order)


@dataclass(frozen=True, slots=True)
class ClearingItem:
    """One recorded order with its fill, as a clearing chunk commits it."""

    order_hash: bytes
    order: Order
    filled_wh: int
    cancelled: bool = False

    @property
    def packed(self) -> int:
        """prosumer | energyWh << 160 | filledWh << 192 | side << 224 | cancelled << 225."""
        o = self.order
        return (
            int(o.prosumer, 16)
            | o.energy_wh << 160
            | self.filled_wh << 192
            | int(o.side) << 224
            | int(self.cancelled) << 225
        )

    def as_fill(self) -> tuple[Any, ...]:
        """The contract's ``Fill`` tuple (clearing)."""
        return (self.order_hash, self.packed, self.order.price_per_kwh)

    def as_settlement_fill(self) -> tuple[Any, ...]:
        """The contract's ``SettlementFill`` tuple."""
        return (self.packed, self.order.price_per_kwh)


def clearing_items(
    slot_orders: Sequence[SlotOrder], fills: Sequence[tuple[Order, int]], hashes: Sequence[bytes]
) -> list[ClearingItem]:
    """The whole sequence a clearing commits: ``fills`` (the fill of every open order, in arrival
    order, with their hashes) with each cancelled order put back at its place with a fill of 0.
    Nothing is reordered or repaired: what the caller gives is what the contract checks."""
    given = iter(zip(fills, hashes, strict=True))
    items: list[ClearingItem] = []
    for slot_order in slot_orders:
        if slot_order.cancelled:
            items.append(ClearingItem(slot_order.recorded.order_hash, slot_order.recorded.order, 0, True))
            continue
        nxt = next(given, None)
        if nxt is None:
            break
        (order, filled), order_hash = nxt
        items.append(ClearingItem(order_hash, order, filled))
    items.extend(ClearingItem(h, o, f) for (o, f), h in given)
    return items


def split(items: Sequence[ClearingItem], size: int) -> list[list[ClearingItem]]:
    """``items`` in chunks of at most ``size`` (one empty chunk for an empty slot)."""
    if size < 1:
        raise ClearingRejected(f"a clearing chunk holds at least 1 order, not {size}", error="InvalidChunkCount")
    return [list(items[i : i + size]) for i in range(0, len(items), size)] or [[]]


def chunks_by_boundaries(items: Sequence[ClearingItem], counts: Sequence[int]) -> list[list[ClearingItem]]:
    """``items`` cut into chunks of the given sizes (the clearing's, for settlement)."""
    chunks, start = [], 0
    for count in counts:
        chunks.append(list(items[start : start + count]))
        start += count
    return chunks


def cancellation_proof(slot_orders: Sequence[SlotOrder], order_hash: bytes) -> tuple[int, list[bytes]] | None:
    """The (position, segment) ``cancelOrder`` needs for a recorded order: the order chain's
    links from the checkpoint at or before it to the next one (or the last order); None if the
    order is not among ``slot_orders``."""
    position = next((s.position for s in slot_orders if s.recorded.order_hash == order_hash), None)
    if position is None:
        return None
    first = position - position % CHECKPOINT_ORDERS
    end = min(first + CHECKPOINT_ORDERS, len(slot_orders))
    return position, [s.link for s in slot_orders[first:end]]


def pack_readings(indexes: Mapping[str, int], readings: Mapping[str, int]) -> bytes:
    """Readings as ``postMeterReadings`` takes them: per meter the participant number (uint32)
    and the net Wh (int32), big-endian, sorted by participant (eight share a storage word)."""
    records = []
    for account, net_wh in readings.items():
        if not INT32_MIN < net_wh <= INT32_MAX:
            raise SettlementRejected(
                f"meter reading {net_wh} Wh of {account} is out of range: allowed is {INT32_MIN + 1} to {INT32_MAX} Wh",
                error="MalformedReadings",
            )
        records.append((indexes[account], net_wh))
    return b"".join(i.to_bytes(4, "big") + wh.to_bytes(4, "big", signed=True) for i, wh in sorted(records))


def unpack_readings(data: bytes) -> list[tuple[int, int]]:
    """(participant number, net Wh) of each 8-byte record of ``MeterReadingsPosted``."""
    return [
        (int.from_bytes(data[k : k + 4], "big"), int.from_bytes(data[k + 4 : k + 8], "big", signed=True))
        for k in range(0, len(data), 8)
    ]


@dataclass(frozen=True, slots=True)
class SettlementOutcome:
    """One order's settlement, as ``FillsSettled`` packs it (32 bytes)."""

    deviation_wh: int
    payment: int
    imbalance_charge: int
    network_charge: int


def unpack_outcomes(data: bytes) -> list[SettlementOutcome]:
    """The per-order outcomes of a ``FillsSettled`` event, in order."""
    outcomes = []
    for k in range(0, len(data), 32):
        word = int.from_bytes(data[k : k + 32], "big")
        outcomes.append(
            SettlementOutcome(
                deviation_wh=word >> 224,
                payment=(word >> 160) & (2**64 - 1),
                imbalance_charge=(word >> 64) & (2**96 - 1),
                network_charge=word & (2**64 - 1),
            )
        )
    return outcomes

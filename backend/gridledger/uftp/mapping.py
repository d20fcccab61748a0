"""UFTP messages ↔ the flexibility market's on-chain records (README, "UFTP field mapping").

- ISP: UFTP's ISP is GridLedger's slot (``PT15M``); an ISP is numbered from 1 at local midnight of
  the message's Period in the DSO's TimeZone, so a window maps to one Period and never spans midnight.
- Congestion point: UFTP names it by EAN; the register maps each EAN to a bus of the network model.
- Power: UFTP power is W, positive for consumption. A request in direction Up (consume less) asks
  for −P … 0 W in each ISP of its window, Down for 0 … +P W; an offer's ISP power is −P (Up) or
  +P (Down) and must be the same in every ISP of the window.
- Price: a FlexOffer option's Price is the total asked in the currency (EUR: one GLEUR token is one
  euro, 10^6 base units). GridLedger pays it as a utilisation price per delivered kWh,
  floor(Price × 10^6 × 4000 / (P × slots)) base units, with no availability price; the on-chain
  price is what counts, and the FlexOrder states the price it implies.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from shapeshifter_uftp.uftp import (
    AvailableRequested,
    ContractSettlement,
    ContractSettlementISP,
    ContractSettlementPeriod,
    FlexOffer,
    FlexOrder,
    FlexOrderISP,
    FlexOrderSettlement,
    FlexOrderSettlementISP,
    FlexRequest,
    FlexRequestISP,
    FlexSettlement,
)
from xsdata.models.datatype import XmlDate, XmlDuration

from gridledger.flex.products import BaselineMethod, Direction, ServiceType
from gridledger.flex.products import FlexOffer as LedgerOffer
from gridledger.flex.products import FlexRequest as LedgerRequest
from gridledger.uftp.codec import UftpRejection
from gridledger.units import SLOT_SECONDS, SLOTS_PER_HOUR, TOKEN_UNIT, WH_PER_KWH

ISP_DURATION = "PT15M"
W_SLOTS_PER_KWH = WH_PER_KWH * SLOTS_PER_HOUR  # as the contract: W × slots / 4000 = kWh


def isp_of(slot: int, tz: str) -> tuple[date, int]:
    """The local Period (date) of ``slot`` and its ISP number (1 = the ISP from local midnight)."""
    zone = ZoneInfo(tz)
    local = datetime.fromtimestamp(slot, zone)
    midnight = datetime(local.year, local.month, local.day, tzinfo=zone)
    return local.date(), int(local.timestamp() - midnight.timestamp()) // SLOT_SECONDS + 1


def slot_of(period: date, isp: int, tz: str) -> int:
    """The unix start of ISP ``isp`` (from 1) of local ``period``."""
    midnight = datetime(period.year, period.month, period.day, tzinfo=ZoneInfo(tz))
    return int(midnight.timestamp()) + (isp - 1) * SLOT_SECONDS


def window_isps(request: LedgerRequest, tz: str) -> tuple[date, list[int]]:
    """The Period and ISP numbers of a request's window; it must lie in one local day."""
    days = {isp_of(s, tz)[0] for s in request.slots}
    if len(days) != 1:
        raise ValueError(
            f"the window {request.window_start}…{request.window_end} spans {len(days)} local days in {tz}; "
            "a UFTP message covers one Period (day): post one request per day"
        )
    return days.pop(), [isp_of(s, tz)[1] for s in request.slots]


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def _xml_date(d: date) -> XmlDate:
    return XmlDate(d.year, d.month, d.day)


def to_date(value: Any) -> date:
    if isinstance(value, XmlDate):
        return value.to_date()
    return date.fromisoformat(str(value))


def flex_request(request_id: int, request: LedgerRequest, *, ean: str, tz: str, recipient: str) -> FlexRequest:
    """The FlexRequest that announces on-chain request ``request_id`` to one aggregator."""
    period, isps = window_isps(request, tz)
    low, high = (-request.power_w, 0) if request.direction is Direction.UP else (0, request.power_w)
    return FlexRequest(
        recipient_domain=recipient,
        isp_duration=XmlDuration(ISP_DURATION),
        time_zone=tz,
        period=_xml_date(period),
        congestion_point=ean,
        isps=[
            FlexRequestISP(disposition=AvailableRequested.REQUESTED, min_power=low, max_power=high, start=n, duration=1)
            for n in isps
        ],
        revision=1,
        expiration_date_time=_iso(request.bid_deadline),
        contract_id=f"gridledger-request-{request_id}",
    )


def utilisation_price_per_kwh(price: Decimal, *, power_w: int, slots: int) -> int:
    """An option's total Price (currency units) as base units per kWh over ``power_w`` × ``slots``."""
    return int(price * TOKEN_UNIT * W_SLOTS_PER_KWH / (power_w * slots))


def offer_from_uftp(
    message: FlexOffer,
    *,
    request_id: int,
    request: LedgerRequest,
    ean: str,
    tz: str,
    currency: str,
    provider: str,
    bus: int,
    nonce: int,
) -> LedgerOffer:
    """The on-chain offer a FlexOffer stands for, or the UFTP rejection that says why it cannot."""
    if str(message.isp_duration) != ISP_DURATION:
        raise UftpRejection(f"ISP Duration Rejected: GridLedger's ISP is {ISP_DURATION}, got {message.isp_duration}")
    if message.time_zone != tz:
        raise UftpRejection(f"TimeZone Rejected: the DSO's TimeZone is {tz}, got {message.time_zone}")
    if message.congestion_point != ean:
        raise UftpRejection(
            f"Invalid Congestion Point: the FlexRequest was for {ean}, the offer names {message.congestion_point}"
        )
    if message.currency != currency:
        raise UftpRejection(f"Invalid Message: prices are in {currency}, got {message.currency}")
    period, isps = window_isps(request, tz)
    if to_date(message.period) != period:
        raise UftpRejection(f"Reference Period Mismatch: the FlexRequest's Period is {period}, got {message.period}")
    if len(message.offer_options) != 1:
        raise UftpRejection(
            f"Invalid Message: GridLedger takes one OfferOption per FlexOffer (one on-chain offer), got "
            f"{len(message.offer_options)}; send each option as its own FlexOffer"
        )
    option = message.offer_options[0]
    powers: dict[int, int] = {}
    for isp in option.isps:
        for n in range(isp.start, isp.start + (isp.duration or 1)):
            if n in powers:
                raise UftpRejection(f"ISP Conflict: ISP {n} is given twice")
            powers[n] = isp.power
    if sorted(powers) != isps:
        raise UftpRejection(
            f"ISPs Out Of Bounds: an offer covers exactly the requested ISPs {isps[0]}…{isps[-1]} of {period}, got "
            f"{sorted(powers)}"
        )
    values = set(powers.values())
    sign = -1 if request.direction is Direction.UP else 1
    if len(values) != 1 or (power := values.pop()) * sign <= 0:
        want = "negative power (less consumption)" if sign < 0 else "positive power (more consumption)"
        raise UftpRejection(
            f"Invalid Message: every ISP must offer the same {want} in W; got {sorted(set(powers.values()))}"
        )
    power_w = abs(power)
    try:
        price = Decimal(option.price)
    except (InvalidOperation, TypeError):
        raise UftpRejection(f"Invalid Message: Price {option.price!r} is not a decimal number") from None
    if price < 0:
        raise UftpRejection(f"Invalid Message: Price must not be negative, got {price}")
    return LedgerOffer(
        provider,
        request_id,
        request.window_start,
        power_w,
        0,
        utilisation_price_per_kwh(price, power_w=power_w, slots=request.window_slots),
        bus,
        nonce,
    )


def to_currency(base_units: int) -> Decimal:
    return (Decimal(base_units) / TOKEN_UNIT).quantize(Decimal("0.000001"), rounding=ROUND_DOWN)


def flex_order(
    *,
    offer: FlexOffer,
    offer_id: bytes,
    request: LedgerRequest,
    utilisation_price_per_kwh: int,
    power_w: int,
    tz: str,
    currency: str,
) -> FlexOrder:
    """The FlexOrder for an awarded offer, activated at ``power_w`` in every slot of its window."""
    period, isps = window_isps(request, tz)
    sign = -1 if request.direction is Direction.UP else 1
    price = utilisation_price_per_kwh * power_w * request.window_slots // W_SLOTS_PER_KWH
    option = offer.offer_options[0]
    return FlexOrder(
        recipient_domain=offer.sender_domain,
        conversation_id=offer.conversation_id,
        isp_duration=XmlDuration(ISP_DURATION),
        time_zone=tz,
        period=_xml_date(period),
        congestion_point=offer.congestion_point,
        isps=[FlexOrderISP(power=sign * power_w, start=n, duration=1) for n in isps],
        flex_offer_message_id=offer.message_id,
        price=to_currency(price),
        currency=currency,
        order_reference="0x" + offer_id.hex(),
        option_reference=option.option_reference,
        activation_factor=Decimal("1.00"),
    )


def flex_settlement(
    *,
    recipient: str,
    orders: list[dict[str, Any]],
    tz: str,
    currency: str,
) -> FlexSettlement:
    """A FlexSettlement of one request's orders to one aggregator. Each order: ``offer_id``,
    ``request_id``, ``request`` (LedgerRequest), ``power_w`` (awarded), ``ean``, ``deliveries``
    ({slot: delivery dict}), ``paid`` and ``ordered_price`` (base units)."""
    settlements = []
    contracts = []
    periods = []
    for o in orders:
        request: LedgerRequest = o["request"]
        period, isps = window_isps(request, tz)
        periods.append(period)
        sign = -1 if request.direction is Direction.UP else 1
        rows = []
        for slot, n in zip(request.slots, isps, strict=True):
            d = o["deliveries"][slot]
            rows.append(
                FlexOrderSettlementISP(
                    start=n,
                    duration=1,
                    baseline_power=int(d["baseline_wh"]) * SLOTS_PER_HOUR,
                    ordered_flex_power=sign * int(d["ordered_wh"]) * SLOTS_PER_HOUR,
                    actual_power=int(d["actual_wh"]) * SLOTS_PER_HOUR,
                    delivered_flex_power=sign * int(d["delivered_wh"]) * SLOTS_PER_HOUR,
                    power_deficiency=sign * max(0, int(d["ordered_wh"]) - int(d["delivered_wh"])) * SLOTS_PER_HOUR,
                )
            )
        # The award is the contract: reserved = the awarded power, ordered = what was activated.
        contracts.append(
            ContractSettlement(
                contract_id=f"gridledger-request-{o['request_id']}",
                periods=[
                    ContractSettlementPeriod(
                        period=_xml_date(period),
                        isps=[
                            ContractSettlementISP(
                                start=n,
                                duration=1,
                                reserved_power=sign * o["power_w"],
                                requested_power=sign * request.power_w,
                                offered_power=sign * o["power_w"],
                                ordered_power=sign * int(o["deliveries"][slot]["ordered_wh"]) * SLOTS_PER_HOUR,
                            )
                            for slot, n in zip(request.slots, isps, strict=True)
                        ],
                    )
                ],
            )
        )
        settlements.append(
            FlexOrderSettlement(
                isps=rows,
                order_reference="0x" + o["offer_id"].hex(),
                period=_xml_date(period),
                congestion_point=o["ean"],
                price=to_currency(o["ordered_price"]),
                penalty=to_currency(max(0, o["ordered_price"] - o["paid"])),
                net_settlement=to_currency(o["paid"]),
            )
        )
    return FlexSettlement(
        recipient_domain=recipient,
        flex_order_settlements=settlements,
        contract_settlements=contracts,
        period_start=_xml_date(min(periods)),
        period_end=_xml_date(max(periods)),
        currency=currency,
    )


def request_from_chain(r: Any) -> LedgerRequest:
    """``FlexibilityMarket.request(id)``'s tuple as a request (its dso, status and escrow dropped)."""
    return LedgerRequest(
        ServiceType(r[1]), Direction(r[2]), BaselineMethod(r[3]), r[5], r[6], r[7], r[8], r[9], r[11], r[12], r[10]
    )


def nonce_of(message_hash: bytes) -> int:
    """The on-chain offer nonce of a UFTP offer: the message hash's first 8 bytes, so one signed
    message can make one offer only."""
    return int.from_bytes(message_hash[:8], "big")
